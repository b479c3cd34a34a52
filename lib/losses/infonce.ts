/**
 * InfoNCE core shared by the in-batch and memory contrast (docs/method.md §4.4), in the log domain:
 * −log[e^s / (e^s + Σ_n e^{s_n})] = softplus(lse_n − s), lse_n = log-sum-exp over the negatives.
 */
import { type Tensor1D, type Tensor2D, tf } from "../backend/tf.ts";

type Scalar = tf.Scalar;

/** Additive bias that removes a column from the negatives' log-sum-exp (exp(−1e9) = 0 in float32). */
export const NEG_BIG = 1e9;

export interface ContrastiveOptions {
  temperature: number;
  baseTemperature: number;
}

/**
 * Core InfoNCE with masks. s: [R,Q] similarities/τ; pos: [R,Q] {0,1}; negBias: [R,Q] 0 on negatives,
 * −NEG_BIG elsewhere; rowWeight: [R] = (τ/τ_b) / (|P_r| · #valid rows), 0 for rows left out.
 */
export function infoNce(s: Tensor2D, pos: Tensor2D, negBias: Tensor2D, rowWeight: Float32Array): Scalar {
  return tf.tidy(() => tf.sum(tf.mul(infoNceRowSums(s, pos, negBias), tf.tensor1d(rowWeight))) as Scalar);
}

/** Σ_{q∈P_r} −log p_rq per row, [R] (unscaled). */
export function infoNceRowSums(s: Tensor2D, pos: Tensor2D, negBias: Tensor2D): Tensor1D {
  return tf.tidy(() => {
    const lseNeg = tf.logSumExp(tf.add(s, negBias), 1, true); // [R,1]
    const nlogp = tf.softplus(tf.sub(lseNeg, s)); // −log p for every pair; only positives are kept
    return tf.sum(tf.mul(pos, nlogp), 1) as Tensor1D;
  });
}

/** Row weights from the positive count of each row (host side). */
export function rowWeights(
  posCount: Int32Array | Float64Array,
  scale: number,
): { w: Float32Array; valid: number } {
  let valid = 0;
  for (let r = 0; r < posCount.length; r++) if (posCount[r] > 0) valid++;
  const w = new Float32Array(posCount.length);
  if (valid === 0) return { w, valid };
  for (let r = 0; r < posCount.length; r++) if (posCount[r] > 0) w[r] = scale / (posCount[r] * valid);
  return { w, valid };
}

/**
 * Similarity matrices as plain (non-transposed) matmuls with an explicit transpose: tfjs-wasm runs
 * matMul with transposeA/transposeB 7-14x slower than without. `gram(x)` = x·xᵀ with gradient
 * (g + gᵀ)·x; `crossSimilarity(a, b)` = a·bᵀ with gradients g·b and gᵀ·a.
 */
export function gram(x: Tensor2D): Tensor2D {
  const f = tf.customGrad((xi, save) => {
    (save as tf.GradSaveFunc)([xi as Tensor2D]);
    return {
      value: tf.matMul(xi as Tensor2D, tf.transpose(xi as Tensor2D)),
      gradFunc: (g, saved) =>
        tf.matMul(tf.add(g as Tensor2D, tf.transpose(g as Tensor2D)), saved[0] as Tensor2D),
    };
  });
  return f(x) as Tensor2D;
}

export function crossSimilarity(a: Tensor2D, b: Tensor2D): Tensor2D {
  const f = tf.customGrad((ai, bi, save) => {
    (save as tf.GradSaveFunc)([ai as Tensor2D, bi as Tensor2D]);
    return {
      value: tf.matMul(ai as Tensor2D, tf.transpose(bi as Tensor2D)),
      gradFunc: (g, saved) => [
        tf.matMul(g as Tensor2D, saved[1] as Tensor2D),
        tf.matMul(tf.transpose(g as Tensor2D), saved[0] as Tensor2D),
      ],
    };
  });
  return f(a, b) as Tensor2D;
}
