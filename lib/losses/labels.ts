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
 * labels: host [N,H,W] int32 → [N,h,w] by the same nearest picks as `downsampleLabels` (no device work).
 */
export function downsampleLabelsHost(
  labels: Int32Array,
  shape: readonly [number, number, number],
  size: readonly [number, number],
): Int32Array {
  const [n, H, W] = shape;
  if (labels.length !== n * H * W) {
    throw new Error(`losses/labels: host labels have ${labels.length} values, expected ${n}x${H}x${W}`);
  }
  return pickRowsColsHost(labels, shape, nearestSourceIndices(H, size[0]), nearestSourceIndices(W, size[1]));
}

/** labels[:, ::s, ::s] of host labels [N,H,W] (the host twin of `strideLabels`); [N, ceil(H/s), ceil(W/s)]. */
export function strideLabelsHost(
  labels: Int32Array,
  shape: readonly [number, number, number],
  s: number,
): Int32Array {
  const [, H, W] = shape;
  const idx = (n: number) => Int32Array.from({ length: Math.ceil(n / s) }, (_, i) => i * s);
  return pickRowsColsHost(labels, shape, idx(H), idx(W));
}

function pickRowsColsHost(
  labels: Int32Array,
  [n, H, W]: readonly [number, number, number],
  rows: Int32Array,
  cols: Int32Array,
): Int32Array {
  const h = rows.length, w = cols.length;
  const out = new Int32Array(n * h * w);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      const src = (b * H + rows[i]) * W, dst = (b * h + i) * w;
      for (let j = 0; j < w; j++) out[dst + j] = labels[src + cols[j]];
    }
  }
  return out;
}

/**
 * Labels (downsampled to the embedding grid) and predictions as host typed arrays. labels: [N,H,W] int32,
 * logits4: [N,h,w,C]. With `labelsHost` (the caller's host copy of `labels`) only the predictions are read
 * back (N·h·w int32); otherwise both, in one read of 2·N·h·w int32.
 */
export async function labelsAndPredictions(
  labels: Tensor3D,
  logits4: Tensor4D,
  labelsHost?: Int32Array,
): Promise<{ labels: Int32Array; preds: Int32Array; n: number; h: number; w: number }> {
  const [n, h, w] = logits4.shape;
  if (labels.shape[0] !== n) {
    throw new Error(`losses/labels: batch ${labels.shape[0]} (labels) != ${n} (logits)`);
  }
  const size = n * h * w;
  if (labelsHost) {
    const down = downsampleLabelsHost(labelsHost, labels.shape, [h, w]);
    const p = predictFromLogits(logits4);
    try {
      return { labels: down, preds: (await p.data()) as Int32Array, n, h, w };
    } finally {
      p.dispose();
    }
  }
  const both = tf.tidy(() => {
    const y = downsampleLabels(labels, [h, w]);
    const p = predictFromLogits(logits4);
    return tf.stack([y, p]) as unknown as Tensor2D;
  });
  try {
    const data = (await both.data()) as Int32Array;
    return { labels: data.slice(0, size), preds: data.slice(size, 2 * size), n, h, w };
  } finally {
    both.dispose();
  }
}
