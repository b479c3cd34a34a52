/**
 * `evaluate(predictor, samples, opts)`: the one evaluation loop, used by in-training validation and by
 * `deno task val`, so both give the same number for the same weights, data and mode.
 *
 * For each image: inference in the chosen mode (whole / slide / aug) → scores resized to the label's size if
 * it differs → argmax → confusion matrix on the backend (ignore index dropped), summed in float64 →
 * metrics (docs/method.md §8). Optional exports (trainId / labelId PNGs, colour masks, overlays).
 */
import { tf } from "../backend/tf.ts";
import { Progress } from "../util/progress.ts";
import { ConfusionMatrix } from "./confusion.ts";
import { denormalize, type ExportOptions, exportPrediction } from "./export.ts";
import {
  describeEvalMode,
  type EvalMode,
  type EvalModeOptions,
  predictClasses,
  resolveEvalMode,
  type SegPredictor,
} from "./inference.ts";
import { computeMetrics, formatMetrics, type SegMetrics } from "./metrics.ts";

/** One validation image. */
export interface EvalSample {
  /** Normalised image, [H,W,3] float32 row-major (the validation transforms already applied). */
  image: Float32Array;
  height: number;
  width: number;
  /** Class ids (trainIds), [labelHeight,labelWidth] row-major; `ignoreIndex` marks unlabelled pixels. */
  label: Int32Array | Uint8Array;
  /** Label size when it differs from the image size (scores are then resized bilinearly before argmax). */
  labelHeight?: number;
  labelWidth?: number;
  /** Image name or path (names exported files; Cityscapes names `<city>_<seq>_<frame>_leftImg8bit`). */
  name?: string;
  /**
   * Original RGB pixels uint8 [labelHeight,labelWidth,3] for overlays; when absent and the label has the
   * image's size, the normalised image is inverted with `mean`/`std`.
   */
  rgb?: Uint8Array;
}

export interface EvaluateOptions extends EvalModeOptions {
  numClasses: number;
  /** Default 255. */
  ignoreIndex?: number;
  /** For the per-class table (default `class i`). */
  classNames?: readonly string[];
  /** Images per forward pass; consecutive images of equal size are batched (default 1, as PaddleSeg). */
  batchSize?: number;
  /** Number of images, for the ETA (default: `samples.length` when there is one). */
  total?: number;
  /** Show progress (default true). */
  progress?: boolean;
  /** Progress writer (default stderr; see lib/util/progress.ts). */
  progressWrite?: (line: string, inPlace: boolean) => void;
  /** Exports of the predictions (none by default). */
  exports?: ExportOptions;
  /** Normalisation used by the dataset, to recover RGB for overlays when samples carry no `rgb`. */
  mean?: number[];
  std?: number[];
}

export interface EvalResult {
  metrics: SegMetrics;
  /** The evaluation mode, to print beside every number (e.g. `whole`, `slide(crop 1024x512, ...)`). */
  mode: string;
  evalMode: EvalMode;
  confusion: ConfusionMatrix;
  numImages: number;
  seconds: number;
  imagesPerSecond: number;
  /** `formatMetrics` output: headline and per-class table, mode included. */
  summary: string;
}

type Samples = Iterable<EvalSample> | AsyncIterable<EvalSample>;

function check(s: EvalSample, i: number): { name: string; lh: number; lw: number } {
  const name = s.name ?? `image ${i}`;
  if (!(s.image instanceof Float32Array) || s.image.length !== s.height * s.width * 3) {
    throw new Error(
      `${name}: image must be a Float32Array of ${s.height}x${s.width}x3 values (got ${s.image?.length})`,
    );
  }
  const lh = s.labelHeight ?? s.height, lw = s.labelWidth ?? s.width;
  if (s.label.length !== lh * lw) {
    throw new Error(`${name}: label has ${s.label.length} values, expected ${lh}x${lw}`);
  }
  return { name, lh, lw };
}

/** Evaluates `predictor` on `samples`; see the module comment. Leaves no tensors behind. */
export async function evaluate(
  predictor: SegPredictor,
  samples: Samples,
  opts: EvaluateOptions,
): Promise<EvalResult> {
  const evalMode = resolveEvalMode(opts);
  const mode = describeEvalMode(evalMode);
  const C = opts.numClasses;
  const cm = new ConfusionMatrix(C, opts.ignoreIndex ?? 255);
  const batchSize = opts.batchSize ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be ≥ 1 (got ${batchSize})`);
  }
  const total = opts.total ?? ((samples as { length?: number }).length ?? 0);
  const progress = opts.progress === false
    ? null
    : new Progress({ total, label: `eval ${mode}`, unit: "img", write: opts.progressWrite });
  const t0 = performance.now();
  let numImages = 0;
  let pending: Array<{ s: EvalSample; name: string; lh: number; lw: number }> = [];

  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const n = batch.length;
    const { height: h, width: w } = batch[0].s;
    const { lh, lw } = batch[0];
    const image = n === 1 ? batch[0].s.image : new Float32Array(n * h * w * 3);
    const label = new Int32Array(n * lh * lw);
    batch.forEach((b, i) => {
      if (n > 1) image.set(b.s.image, i * h * w * 3);
      label.set(b.s.label, i * lh * lw);
    });
    const what = n === 1 ? batch[0].name : `${batch[0].name} … ${batch[n - 1].name}`;
    const x = tf.tensor4d(image, [n, h, w, 3]);
    const y = tf.tensor3d(label, [n, lh, lw], "int32");
    let pred: tf.Tensor3D | null = null;
    try {
      pred = predictClasses(predictor, x, evalMode, lh !== h || lw !== w ? [lh, lw] : undefined, C);
      await cm.add(pred, y, what);
      if (opts.exports) {
        const data = (await pred.data()) as Int32Array;
        for (let i = 0; i < n; i++) {
          const { s, name } = batch[i];
          const rgb = opts.exports.overlay
            ? (s.rgb ?? (lh === h && lw === w ? denormalize(s.image, opts.mean, opts.std) : undefined))
            : undefined;
          await exportPrediction({
            name,
            pred: data.subarray(i * lh * lw, (i + 1) * lh * lw),
            height: lh,
            width: lw,
            numClasses: C,
            rgb,
          }, opts.exports);
        }
      }
    } finally {
      x.dispose();
      y.dispose();
      pred?.dispose();
    }
    numImages += n;
    progress?.tick(n);
  };

  for await (const s of samples) {
    const info = check(s, numImages + pending.length);
    const head = pending[0];
    if (
      head && (pending.length >= batchSize || head.s.height !== s.height || head.s.width !== s.width ||
        head.lh !== info.lh || head.lw !== info.lw)
    ) {
      await flush();
    }
    pending.push({ s, ...info });
  }
  await flush();
  progress?.finish();
  if (numImages === 0) throw new Error("evaluate: the dataset yielded no images");

  const seconds = (performance.now() - t0) / 1000;
  const metrics = computeMetrics(cm, opts.classNames);
  return {
    metrics,
    mode,
    evalMode,
    confusion: cm,
    numImages,
    seconds,
    imagesPerSecond: numImages / seconds,
    summary: formatMetrics(metrics, mode, { numImages }),
  };
}
