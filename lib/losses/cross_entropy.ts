/**
 * Pixel cross-entropy with an ignore label, reduced as PaddleSeg's `CrossEntropyLoss` (docs/method.md §3):
 *
 *   loss_p = w_{y_p} · (−log softmax(x_p)[y_p])          (w ≡ 1 when unweighted)
 *   CE     = mean_p(loss_p · m_p) / (mean_p(w_{y_p} · m_p) + 1e-8),   m_p = [y_p ≠ ignore]
 *
 * Unweighted this is the mean over non-ignored pixels (up to the 1e-8); weighted it is PaddleSeg's
 * (and TORCH's `elementwise_mean`) Σ w·nll / Σ w. All pixels ignored → exactly 0 (numerator is 0).
 */
import { type Tensor, type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";
import { resizeBilinear } from "../backend/resize.ts";

type Scalar = tf.Scalar;
import { type CrossEntropyOptions, resolveClassWeights } from "./options.ts";

export const CE_EPS = 1e-8;

/**
 * logits: [N,h,w,C] float32 (upsampled to the label size when smaller), labels: [N,H,W] int32.
 * Returns a scalar. Labels outside [0, C) other than the ignore index contribute 0 to the numerator
 * (they are the data pipeline's responsibility; PaddleSeg would fail on them).
 */
export function crossEntropyLoss(
  logits: Tensor4D,
  labels: Tensor3D,
  o: CrossEntropyOptions,
): Scalar {
  checkShapes(logits, labels);
  const numClasses = logits.shape[3];
  const weights = resolveClassWeights(o.weight, numClasses);
  return tf.tidy(() => {
    const [, H, W] = labels.shape;
    const x = resizeBilinear(logits, [H, W], o.alignCorners);
    const logp = tf.logSoftmax(x, -1);
    const mask = tf.cast(tf.notEqual(labels, tf.scalar(o.ignoreIndex, "int32")), "float32");
    // oneHot gives an all-zero row for indices outside [0, C) (255, -1): those pixels add nothing.
    const oneHot = oneHotFloat(labels, numClasses);
    const nll = tf.neg(tf.sum(tf.mul(oneHot, logp), -1));
    const n = mask.size;
    if (weights === null) {
      const num = tf.div(sumRows(tf.mul(nll, mask)), n);
      return tf.div(num, tf.add(tf.div(sumRows(mask), n), CE_EPS)) as Scalar;
    }
    const w = tf.sum(tf.mul(oneHot, tf.tensor1d(weights)), -1); // w_{y_p}, 0 where out of range
    const wm = tf.mul(w, mask);
    const num = tf.div(sumRows(tf.mul(nll, wm)), n);
    return tf.div(num, tf.add(tf.div(sumRows(wm), n), CE_EPS)) as Scalar;
  });
}

/**
 * ∂CE/∂logits in closed form at the CE input size (after upsampling), for gradient-share diagnostics:
 * w_y·m·(softmax − onehot) / (N_pix · (mean(w_y·m) + 1e-8)). Returns its L2 norm as a scalar tensor (the
 * caller reads it with its other values; no read-back here).
 */
export function crossEntropyGradNorm(
  logits: Tensor4D,
  labels: Tensor3D,
  o: CrossEntropyOptions,
): Scalar {
  checkShapes(logits, labels);
  const numClasses = logits.shape[3];
  const weights = resolveClassWeights(o.weight, numClasses);
  return tf.tidy(() => {
    const [, H, W] = labels.shape;
    const x = resizeBilinear(logits, [H, W], o.alignCorners);
    const p = tf.softmax(x, -1);
    const mask = tf.cast(tf.notEqual(labels, tf.scalar(o.ignoreIndex, "int32")), "float32");
    const oneHot = oneHotFloat(labels, numClasses);
    let wm: Tensor = mask;
    if (weights !== null) wm = tf.mul(mask, tf.sum(tf.mul(oneHot, tf.tensor1d(weights)), -1));
    const denom = tf.mul(tf.add(tf.div(tf.sum(wm), mask.size), CE_EPS), mask.size);
    const g = tf.div(tf.mul(tf.sub(p, oneHot), tf.expandDims(wm, -1)), denom);
    return tf.sqrt(tf.sum(tf.square(g))) as Scalar;
  });
}

/**
 * Sum of x: [N,H,W] as per-row sums, then their sum. Some backends (wasm) accumulate a whole-tensor
 * float32 sum sequentially, off by ~5e-5 relative over a 512x1024 crop; two stages keep it near 1e-7.
 */
function sumRows(x: Tensor): Scalar {
  return tf.sum(tf.sum(x, -1)) as Scalar;
}

/** float32 one-hot; built as int32 + cast because tfjs-wasm's OneHot ignores dtype float32. */
function oneHotFloat(labels: Tensor, depth: number): Tensor {
  return tf.cast(tf.oneHot(labels, depth), "float32");
}

function checkShapes(logits: Tensor4D, labels: Tensor3D): void {
  if (logits.rank !== 4) {
    throw new Error(`losses/cross_entropy: logits must be [N,H,W,C], got ${logits.shape}`);
  }
  if (labels.rank !== 3) throw new Error(`losses/cross_entropy: labels must be [N,H,W], got ${labels.shape}`);
  if (labels.dtype !== "int32") {
    throw new Error(`losses/cross_entropy: labels must be int32, got ${labels.dtype}`);
  }
  if (logits.shape[0] !== labels.shape[0]) {
    throw new Error(`losses/cross_entropy: batch ${logits.shape[0]} (logits) != ${labels.shape[0]} (labels)`);
  }
}
