/**
 * The run record: `<save_dir>/metrics.jsonl`, one JSON object per line, appended as training goes — a
 * {@link TrainRecord} every `log_iters` iterations and an {@link EvalRecord} after every evaluation.
 * This module owns it: the record types, the writer ({@link MetricsLog}) and the one reader
 * ({@link parseMetricsJsonl}, {@link readMetricsJsonl}). lib/viz draws these records and imports only their
 * types from here.
 *
 * Two ways to read, for two readers:
 *   - strict (default; reports, notebooks): a cut last line (a run still writing) is skipped, any other bad
 *     line is an error naming the source and line number;
 *   - lenient (resume): every line that is not a valid record is dropped, wherever it is — a run killed
 *     mid-write leaves a cut line, and the resumed run rewrites the log without it.
 * On resume the records after the checkpoint's iteration are dropped too (they belong to the interrupted
 * part that is about to be redone), so the log reads as one uninterrupted run.
 */
import { FileCheckError, readFileBounded } from "../util/fs.ts";
import { getLimits, raiseHint } from "../util/limits.ts";

/**
 * The pixel contrast term's diagnostics as the train record stores them: lib/losses' per-step
 * `ContrastDiagnostics` averaged over the iterations since the previous log line (the trainer maps
 * `hardAnchors` -> `hard`, `meanPosSim` -> `posSim`, ...); the similarity and gradient statistics are
 * measured on logging iterations only. All fields are optional numbers so a CE-only run can omit the block.
 */
export interface ContrastSummary {
  /**
   * Anchors sampled per class (index = trainId, length = number of classes; 0 for a class absent from
   * the batch). The sampler picks `n_view` pixels per (image, class) present (docs/method.md §4.3).
   */
  anchorsPerClass?: number[];
  /** Number of hard anchors (label c, predicted ≠ c) in the contrast set. */
  hard?: number;
  /** Number of easy anchors (label c, predicted = c) in the contrast set. */
  easy?: number;
  /**
   * Mean cosine similarity z_i·z_p over positive pairs (same class, i ≠ p), on the logging iteration. In
   * [-1, 1].
   */
  posSim?: number;
  /** Mean cosine similarity z_i·z_n over negative pairs (different class), on the logging iteration. */
  negSim?: number;
  /** Share of the optimised loss that comes from the weighted contrast term: w·contrast / loss, in [0, 1]. */
  contrastShare?: number;
  /**
   * Share of the contrast term in the gradient norms at the heads' inputs (lib/losses `grad.contrastShare`),
   * measured on logging iterations only.
   */
  gradShare?: number;
}

/** One training log line (`type: "train"`). Losses are the values the optimiser saw (after averaging). */
export interface TrainRecord {
  type: "train";
  /** Iteration number just completed (1-based, as PaddleSeg prints it). */
  iter: number;
  /** Learning rate used for this iteration (backbone group). */
  lr: number;
  /** Total optimised loss = ce + contrast_weight · contrast. */
  loss: number;
  /** Cross-entropy part (sum over the heads the config weights in, already weighted). */
  ce: number;
  /** Unweighted pixel-contrast loss; null (or absent) for a CE-only run or before the contrast warm-up. */
  contrast?: number | null;
  /** Contrast diagnostics; null/absent for CE-only runs. */
  diagnostics?: ContrastSummary | null;
  /** Wall-clock seconds since the start of training (not counting a resumed run's earlier part). */
  time: number;
  /** Optional: seconds per iteration over the last log interval. */
  iterTime?: number;
}

/** One evaluation record (`type: "eval"`). Metric values are fractions in [0, 1], as PaddleSeg prints them. */
export interface EvalRecord {
  type: "eval";
  /** Iteration of the evaluated weights. */
  iter: number;
  /** Mean IoU over classes (classes absent from both prediction and ground truth count as lib/eval says). */
  mIoU: number;
  /** Pixel accuracy. */
  acc: number;
  /** Cohen's kappa. */
  kappa: number;
  /** IoU per class, index = trainId. */
  classIoU: number[];
  /** Optional: accuracy (precision, as PaddleSeg's `class_acc`) per class, index = trainId. */
  classAcc?: number[];
  /** Optional confusion matrix of pixel counts: rows = ground truth class, columns = predicted class. */
  confusion?: number[][];
  /**
   * The evaluation mode, printed beside every number: e.g. `"whole"`,
   * `"slide 1024x512/768x512, scales [0.75,1,1.25], flip"`. Records with different modes are drawn as
   * separate series.
   */
  mode: string;
  /** Mean validation loss (CE) if the evaluator computed it; null/absent otherwise. */
  valLoss?: number | null;
}

/** A line of `metrics.jsonl`. */
export type MetricsRecord = TrainRecord | EvalRecord;

/** What a report says about the run in its header. */
export interface RunSummary {
  /** Config file name or path, e.g. `configs/cityscapes/hrnetw48_contrast_1024x512_60k.yml`. */
  configName: string;
  /** TensorFlow.js backend name (`tensorflow`, `wasm`, `webgpu`, `cpu`). */
  backend: string;
  /** Optional extra key/value lines (model, dataset, iterations, batch size, seed, start time, ...). */
  details?: Record<string, string | number | boolean>;
}

/**
 * The run as its HTML report shows it. The trainer hands it to the report writer it was given (the composition
 * root, lib/run, gives lib/viz's `writeReport`), so lib/train draws nothing itself.
 */
export interface RunReport {
  summary: RunSummary;
  train: readonly TrainRecord[];
  evals: readonly EvalRecord[];
  /** Class names (index = trainId) when the dataset names its classes. */
  classNames?: readonly string[];
}

/** Writes the report of `run` to `path` (atomically: a reader never sees half a report). */
export type ReportWriter = (path: string, run: RunReport) => void;

/** The records of a log, by kind, in file order. */
export interface RunRecords {
  train: TrainRecord[];
  evals: EvalRecord[];
}

// ---------------------------------------------------------------------------------------------------
// reading

/** What is wrong with a parsed line as a record, or null when it is one. */
function recordProblem(rec: unknown): string | null {
  if (typeof rec !== "object" || rec === null) return "not a record object";
  const r = rec as Record<string, unknown>;
  if (r.type === "train") {
    for (const k of ["iter", "lr", "loss", "ce", "time"]) {
      if (typeof r[k] !== "number") return `train record needs a number '${k}'`;
    }
    return null;
  }
  if (r.type === "eval") {
    for (const k of ["iter", "mIoU", "acc", "kappa"]) {
      if (typeof r[k] !== "number") return `eval record needs a number '${k}'`;
    }
    if (!Array.isArray(r.classIoU)) return "eval record needs 'classIoU'";
    if (typeof r.mode !== "string") return "eval record needs a string 'mode'";
    return null;
  }
  return `unknown record type '${r.type}'`;
}

export interface ParseOptions {
  /** Drop every line that is not a valid record instead of failing (resume). Default false. */
  lenient?: boolean;
}

/** The valid records of a metrics JSONL text with their source lines (see the module comment). */
function parseLines(
  text: string,
  source: string,
  opts: ParseOptions,
): Array<{ rec: MetricsRecord; line: string }> {
  const out: Array<{ rec: MetricsRecord; line: string }> = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      // a line cut by an interruption; in strict mode only the last one (no trailing newline yet)
      if (opts.lenient || i === lines.length - 1) return;
      throw new Error(`${source}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const problem = recordProblem(rec);
    if (problem) {
      if (opts.lenient) return;
      throw new Error(`${source}:${i + 1}: ${problem}`);
    }
    out.push({ rec: rec as MetricsRecord, line });
  });
  return out;
}

/**
 * Parses a metrics JSONL text into training and evaluation records. Strict by default: a truncated last
 * line (a run still writing) is skipped; any other bad line is an error naming the source and line number.
 * `lenient` drops every bad line instead.
 */
export function parseMetricsJsonl(text: string, source = "<metrics>", opts: ParseOptions = {}): RunRecords {
  const records: RunRecords = { train: [], evals: [] };
  for (const { rec } of parseLines(text, source, opts)) {
    if (rec.type === "train") records.train.push(rec);
    else records.evals.push(rec);
  }
  return records;
}

/**
 * Reads `metrics.jsonl` (see {@link parseMetricsJsonl}): a regular file within the text bound
 * (`PC_MAX_TEXT_BYTES`); a missing, unreadable, special or oversized file is an error naming it.
 */
export async function readMetricsJsonl(path: string, opts: ParseOptions = {}): Promise<RunRecords> {
  return parseMetricsJsonl(await readLog(path), path, opts);
}

async function readLog(path: string): Promise<string> {
  try {
    return new TextDecoder().decode(
      await readFileBounded(path, getLimits().textMaxBytes, raiseHint("textMaxBytes")),
    );
  } catch (e) {
    const why = e instanceof FileCheckError ? e.reason : (e as Error).message;
    throw new Error(`cannot read metrics log '${path}': ${why}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------
// writing

/** The trainer's log: the records so far in memory (for the report) and appended to the file. */
export class MetricsLog {
  readonly path: string;
  readonly train: TrainRecord[] = [];
  readonly evals: EvalRecord[] = [];
  #enc = new TextEncoder();

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Opens the log; `resumeIter` keeps the valid records up to that iteration (read leniently, lines kept
   * as written), `null` starts a new log.
   */
  static async open(path: string, resumeIter: number | null): Promise<MetricsLog> {
    const log = new MetricsLog(path);
    let kept = "";
    if (resumeIter !== null) {
      // no log yet is fine; one that cannot be read is an error, never silently emptied
      const text = await readLog(path).catch((e) => {
        if ((e as Error).cause instanceof Deno.errors.NotFound) return "";
        throw e;
      });
      for (const { rec, line } of parseLines(text, path, { lenient: true })) {
        if (rec.iter > resumeIter) continue;
        if (rec.type === "train") log.train.push(rec);
        else log.evals.push(rec);
        kept += line + "\n";
      }
    }
    await Deno.writeTextFile(path, kept);
    return log;
  }

  async append(r: MetricsRecord): Promise<void> {
    if (r.type === "train") this.train.push(r);
    else this.evals.push(r);
    await Deno.writeFile(this.path, this.#enc.encode(JSON.stringify(r) + "\n"), { append: true });
  }
}
