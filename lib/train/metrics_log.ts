/**
 * `save_dir/metrics.jsonl`: one JSON record per line (lib/viz/types.ts: TrainRecord, EvalRecord), appended
 * as training goes. On resume the records after the checkpoint's iteration are dropped (they belong to
 * the interrupted part that is about to be redone), so the log reads as one uninterrupted run.
 */
import type { EvalRecord, MetricsRecord, TrainRecord } from "../viz/types.ts";

export class MetricsLog {
  readonly path: string;
  readonly train: TrainRecord[] = [];
  readonly evals: EvalRecord[] = [];
  #enc = new TextEncoder();

  private constructor(path: string) {
    this.path = path;
  }

  /** Opens the log; `resumeIter` keeps records up to that iteration, `null` starts a new log. */
  static async open(path: string, resumeIter: number | null): Promise<MetricsLog> {
    const log = new MetricsLog(path);
    let kept = "";
    if (resumeIter !== null) {
      const text = await Deno.readTextFile(path).catch(() => "");
      for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        let r: MetricsRecord;
        try {
          r = JSON.parse(line);
        } catch {
          continue; // a line cut by the interruption
        }
        if (r.iter > resumeIter) continue;
        if (r.type === "train") log.train.push(r);
        else log.evals.push(r);
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
