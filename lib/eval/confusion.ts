/**
 * Confusion matrix accumulation (docs/method.md §8): rows = ground-truth class, columns = predicted class, pixels
 * whose label equals the ignore index dropped. Counting runs on the backend (one `tf.bincount` over
 * `label·C + pred`, a kernel that the cpu, wasm, webgl/webgpu and native TensorFlow backends all have; on
 * webgpu in float32, see `countBins`);
 * only C·C + 2 integers come back to the host, where they are summed in float64 across the dataset.
 */
import { tf } from "../backend/tf.ts";

/**
 * Per-call counts as an int32 tensor of length C·C + 2: entry `l·C + p` counts pixels with label l and
 * prediction p; entry C·C counts labels that are neither in [0, C) nor the ignore index; entry C·C + 1
 * counts predictions outside [0, C) on valid labels. Ignored pixels are mapped past the end and dropped.
 *
 * @param pred  int32, any shape (e.g. [N,H,W]) — predicted class ids
 * @param label int32, same shape — ground-truth class ids, `ignoreIndex` for unlabelled pixels
 */
export function confusionCounts(
  pred: tf.Tensor,
  label: tf.Tensor,
  numClasses: number,
  ignoreIndex = 255,
): tf.Tensor1D {
  if (pred.shape.join(",") !== label.shape.join(",")) {
    throw new Error(`confusionCounts: prediction shape [${pred.shape}] != label shape [${label.shape}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`confusionCounts: numClasses must be a positive integer (got ${numClasses})`);
  }
  const C = numClasses;
  return tf.tidy(() => {
    const l = (label.dtype === "int32" ? label : label.toInt()).reshape([-1]) as tf.Tensor1D;
    const p = (pred.dtype === "int32" ? pred : pred.toInt()).reshape([-1]) as tf.Tensor1D;
    // int32 scalars: a plain number would make tf.mul/add promote the result to float32.
    const int = (v: number) => tf.scalar(v, "int32");
    const labelOk = tf.logicalAnd(l.greaterEqual(int(0)), l.less(int(C)));
    const predOk = tf.logicalAnd(p.greaterEqual(int(0)), p.less(int(C)));
    const bin = (v: number) => tf.fill([l.size], v, "int32");
    // The ignore index wins (dropped: its bin lies past `size`), then bad labels, then bad predictions.
    const code = tf.where(
      l.equal(int(ignoreIndex)),
      bin(C * C + 2),
      tf.where(labelOk, tf.where(predOk, l.mul(int(C)).add(p), bin(C * C + 1)), bin(C * C)),
    ) as tf.Tensor1D;
    return countBins(code, C * C + 2);
  });
}

/** Pixels per float32 count on webgpu: exact below 2^24. */
const WEBGPU_CHUNK = 1 << 24;

/**
 * `tf.bincount(code, [], size)` as int32. tfjs-backend-webgpu 4.22's Bincount accumulates with a float32
 * atomic add whatever the output dtype, so int32 counts come back as float bit patterns there: on webgpu we
 * count in float32 (exact below 2^24 per bin), in chunks of fewer pixels than that, and cast.
 */
function countBins(code: tf.Tensor1D, size: number): tf.Tensor1D {
  if (tf.getBackend() !== "webgpu") return tf.bincount(code, tf.tensor1d([], "int32"), size);
  const none = tf.tensor1d([], "float32");
  const parts: tf.Tensor1D[] = [];
  for (let off = 0; off < code.size; off += WEBGPU_CHUNK) {
    const part = code.size <= WEBGPU_CHUNK
      ? code
      : tf.slice(code, off, Math.min(WEBGPU_CHUNK, code.size - off));
    parts.push(tf.cast(tf.bincount(part, none, size), "int32"));
  }
  return parts.length === 1 ? parts[0] : tf.addN(parts);
}

/** Where the per-pixel counting runs: `device` = `confusionCounts` on the backend, `host` = a JS loop. */
export type CountingStrategy = "device" | "host";

/**
 * The faster strategy for the current backend: on `cpu` and `wasm` the tensors already live in (or next to)
 * JS memory and TF.js's generic elementwise kernels are slow there (2M pixels: ~2.4 s on cpu via tensors,
 * milliseconds as a loop); on native TensorFlow and GPUs only C·C + 2 numbers should leave the device.
 */
export function defaultCountingStrategy(): CountingStrategy {
  const b = tf.getBackend();
  return b === "cpu" || b === "wasm" ? "host" : "device";
}

/** A C×C confusion matrix accumulated in float64 on the host (exact up to 2^53 pixels). */
export class ConfusionMatrix {
  readonly numClasses: number;
  readonly ignoreIndex: number;
  /** Row-major [label][pred] counts. */
  readonly counts: Float64Array;
  /** Counting strategy; `undefined` = `defaultCountingStrategy()` at each call. */
  strategy?: CountingStrategy;

  constructor(numClasses: number, ignoreIndex = 255, strategy?: CountingStrategy) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new Error(`ConfusionMatrix: numClasses must be a positive integer (got ${numClasses})`);
    }
    this.numClasses = numClasses;
    this.ignoreIndex = ignoreIndex;
    this.counts = new Float64Array(numClasses * numClasses);
    this.strategy = strategy;
  }

  /**
   * Adds a batch of predictions against labels (both int32 tensors of the same shape, e.g. [N,H,W]).
   * Labels outside [0, C) other than the ignore index are an error (they would silently vanish otherwise);
   * on error nothing is counted. `what` names the data in error messages (e.g. an image path).
   */
  async add(pred: tf.Tensor, label: tf.Tensor, what = "label"): Promise<void> {
    if ((this.strategy ?? defaultCountingStrategy()) === "host") {
      if (pred.shape.join(",") !== label.shape.join(",")) {
        throw new Error(`${what}: prediction shape [${pred.shape}] != label shape [${label.shape}]`);
      }
      const [p, l] = await Promise.all([pred.data(), label.data()]);
      this.addArrays(p, l, what);
      return;
    }
    const t = confusionCounts(pred, label, this.numClasses, this.ignoreIndex);
    let raw: Int32Array;
    try {
      raw = (await t.data()) as Int32Array;
    } finally {
      t.dispose();
    }
    this.addRaw(raw, what);
  }

  /** Host counting of class-id arrays (same rules and errors as `add`). */
  addArrays(pred: ArrayLike<number>, label: ArrayLike<number>, what = "label"): void {
    if (pred.length !== label.length) {
      throw new Error(`${what}: ${pred.length} predictions for ${label.length} labels`);
    }
    const C = this.numClasses, ignore = this.ignoreIndex;
    const raw = new Int32Array(C * C + 2);
    for (let i = 0; i < label.length; i++) {
      const l = label[i];
      if (l === ignore) continue;
      const p = pred[i];
      if (!(l >= 0 && l < C && Number.isInteger(l))) raw[C * C]++;
      else if (!(p >= 0 && p < C && Number.isInteger(p))) raw[C * C + 1]++;
      else raw[l * C + p]++;
    }
    this.addRaw(raw, what);
  }

  private addRaw(raw: Int32Array, what: string): void {
    const CC = this.numClasses * this.numClasses;
    if (raw[CC] > 0) {
      throw new Error(
        `${what}: ${raw[CC]} pixels have labels outside [0, ${this.numClasses}) that are not the ignore ` +
          `index ${this.ignoreIndex} (wrong label encoding, e.g. labelIds instead of trainIds?)`,
      );
    }
    if (raw[CC + 1] > 0) {
      throw new Error(`${what}: ${raw[CC + 1]} predicted class ids lie outside [0, ${this.numClasses})`);
    }
    for (let i = 0; i < CC; i++) this.counts[i] += raw[i];
  }

  /** Adds another matrix (e.g. from another worker or shard). */
  merge(other: ConfusionMatrix): this {
    if (other.numClasses !== this.numClasses) {
      throw new Error(`ConfusionMatrix.merge: ${other.numClasses} classes vs ${this.numClasses}`);
    }
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    return this;
  }

  get(label: number, pred: number): number {
    return this.counts[label * this.numClasses + pred];
  }

  /** Number of non-ignored pixels counted so far. */
  get total(): number {
    let s = 0;
    for (const v of this.counts) s += v;
    return s;
  }

  reset(): void {
    this.counts.fill(0);
  }

  /** Rows as plain arrays (JSON-friendly: for logs and the HTML report). */
  toRows(): number[][] {
    const C = this.numClasses;
    return Array.from({ length: C }, (_, r) => Array.from(this.counts.subarray(r * C, (r + 1) * C)));
  }

  static fromRows(rows: number[][], ignoreIndex = 255): ConfusionMatrix {
    const cm = new ConfusionMatrix(rows.length, ignoreIndex);
    rows.forEach((row, r) => {
      if (row.length !== rows.length) throw new Error(`ConfusionMatrix.fromRows: row ${r} is not square`);
      row.forEach((v, c) => (cm.counts[r * rows.length + c] = v));
    });
    return cm;
  }
}
