/**
 * Labels and predictions at embedding resolution (docs/method.md §4.2).
 *
 * Labels use the legacy nearest rule of both references, src = floor(dst · in / out), i.e. for the exact
 * factor 4 the strided picks `label[4i, 4j]` (top-left pixel of each 4×4 cell). Predictions are the
 * argmax over classes of the stride-4 logits. Neither carries a gradient.
 */
import { type Tensor2D, type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";

/** Source indices of the legacy nearest rule: floor(dst · in / out) for dst in [0, out). */
export function nearestSourceIndices(inSize: number, outSize: number): Int32Array {
  if (!(Number.isInteger(inSize) && Number.isInteger(outSize) && inSize >= 1 && outSize >= 1)) {
    throw new Error(`losses/labels: sizes must be positive integers, got in ${inSize}, out ${outSize}`);
  }
  const idx = new Int32Array(outSize);
  // Exact integer arithmetic (no float ratio): same picks as Paddle/PyTorch for integer ratios.
  for (let d = 0; d < outSize; d++) idx[d] = Math.floor((d * inSize) / outSize);
  return idx;
}

/**
 * labels: [N,H,W] int32 → [N,h,w] int32 by strided nearest picks. Works for any ratio; for an exact
 * integer ratio r it equals `labels[:, ::r, ::r]`.
 */
export function downsampleLabels(labels: Tensor3D, size: [number, number]): Tensor3D {
  if (labels.rank !== 3 || labels.dtype !== "int32") {
    throw new Error(`losses/labels: labels must be [N,H,W] int32, got ${labels.shape} ${labels.dtype}`);
  }
  const [, H, W] = labels.shape;
  const [h, w] = size;
  if (h === H && w === W) return labels.clone();
  return tf.tidy(() => {
    const n = labels.shape[0];
    if (H % h === 0 && W % w === 0) {
      // label[r·i, r·j] as a reshape + slice (tfjs-wasm's StridedSlice returns int32 data typed float32)
      const rh = H / h, rw = W / w;
      const cells = tf.reshape(labels, [n, h, rh, w, rw]);
      return tf.reshape(tf.slice(cells, [0, 0, 0, 0, 0], [n, h, 1, w, 1]), [n, h, w]) as Tensor3D;
    }
    return pickRowsCols(labels, nearestSourceIndices(H, h), nearestSourceIndices(W, w));
  });
}

/** labels[:, rows, :][:, :, cols] by two int32 gathers. labels: [N,H,W] int32. */
export function pickRowsCols(labels: Tensor3D, rows: Int32Array, cols: Int32Array): Tensor3D {
  return tf.tidy(() =>
    tf.gather(tf.gather(labels, tf.tensor1d(rows, "int32"), 1), tf.tensor1d(cols, "int32"), 2) as Tensor3D
  );
}

/** labels[:, ::s, ::s] (PyTorch slicing; the public memory code's `network.stride` picks). */
export function strideLabels(labels: Tensor3D, s: number): Tensor3D {
  const [, H, W] = labels.shape;
  const idx = (n: number) => Int32Array.from({ length: Math.ceil(n / s) }, (_, i) => i * s);
  return pickRowsCols(labels, idx(H), idx(W));
}

/** logits: [N,h,w,C] → argmax over C, [N,h,w] int32 (no gradient; first maximum on ties). */
export function predictFromLogits(logits: Tensor4D): Tensor3D {
  if (logits.rank !== 4) throw new Error(`losses/labels: logits must be [N,h,w,C], got ${logits.shape}`);
  return tf.argMax(logits, -1) as Tensor3D;
}

/**
 * Downloads labels (downsampled to the embedding grid) and predictions as host typed arrays, one
 * synchronous read of 2·N·h·w int32 values. labels: [N,H,W] int32, logits4: [N,h,w,C].
 */
export function labelsAndPredictions(
  labels: Tensor3D,
  logits4: Tensor4D,
): { labels: Int32Array; preds: Int32Array; n: number; h: number; w: number } {
  const [n, h, w] = logits4.shape;
  if (labels.shape[0] !== n) {
    throw new Error(`losses/labels: batch ${labels.shape[0]} (labels) != ${n} (logits)`);
  }
  const both = tf.tidy(() => {
    const y = downsampleLabels(labels, [h, w]);
    const p = predictFromLogits(logits4);
    return tf.stack([y, p]) as unknown as Tensor2D;
  });
  const data = both.dataSync() as Int32Array;
  both.dispose();
  const size = n * h * w;
  return { labels: data.slice(0, size), preds: data.slice(size, 2 * size), n, h, w };
}
