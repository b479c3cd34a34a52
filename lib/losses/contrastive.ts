/**
 * The contrastive term (`_contrastive`, docs/method.md §4.4) and its building blocks.
 *
 * For anchor r with positives P_r (same class, itself excluded) and negatives N_r:
 *   L_r = −(τ/τ_b) · (1/|P_r|) · Σ_{p∈P_r} log[ e^{s_rp} / (e^{s_rp} + Σ_{n∈N_r} e^{s_rn}) ],  s = z·z'/τ
 *   loss = mean_r L_r.
 *
 * Evaluated in the log domain: log(e^s + Σ_n e^{s_n}) − s = softplus(lse_n − s), with lse_n the
 * log-sum-exp over the negatives. This equals the reference's row-max-subtracted form (the loss is
 * invariant to a per-row shift) but has no log(0): a row without negatives gets lse_n ≈ −1e9 and
 * contributes exactly 0 with a zero gradient. Rows without any positive (only reachable with
 * max_views = 1) are left out of the mean instead of giving 0/0; both counts are host-known, so no
 * device branching is needed. An empty anchor set has no rows: the caller defines the term as 0.
 */
import { type Tensor1D, type Tensor2D, type Tensor3D, tf } from "../backend/tf.ts";
import { disposePlan, inBatchPlan, planLoss, planSimilaritySums } from "./contrast_plan.ts";
import { type ContrastiveOptions, gram, infoNceRowSums, NEG_BIG } from "./infonce.ts";

export { type ContrastiveOptions, infoNce, infoNceRowSums, NEG_BIG, rowWeights } from "./infonce.ts";

type Scalar = tf.Scalar;

export interface ContrastiveResult {
  loss: Scalar;
  /** Rows with at least one positive (those averaged). */
  validRows: number;
  rows: number;
  /** [2] float32 tensor: Σ cos over positive pairs, Σ cos over negative pairs (diagnostics); null if not asked. */
  simSums: Tensor1D | null;
  /** Number of positive and negative pairs (host-known), for turning simSums into means. */
  posPairs: number;
  negPairs: number;
}

/**
 * In-batch contrast: anchors = contrast set = rows. rows: [R,D] float32 (unit vectors in practice),
 * rowLabels: [R] class ids. With `subtractRowMax` the similarity rows are shifted by their max first
 * (the references' stabilisation; a no-op for the value, kept for the invariance test).
 */
export function contrastiveFromRows(
  rows: Tensor2D,
  rowLabels: Int32Array,
  options: ContrastiveOptions,
  withStats = false,
  subtractRowMax = false,
): ContrastiveResult {
  const R = rows.shape[0];
  if (rowLabels.length !== R) {
    throw new Error(`losses/contrastive: ${rowLabels.length} labels for ${R} rows`);
  }
  const plan = inBatchPlan(rowLabels, options);
  try {
    const loss = planLoss(rows, plan, options.temperature, subtractRowMax);
    const simSums = withStats && plan.validRows > 0 ? planSimilaritySums(rows, plan) : null;
    const { validRows, posPairs, negPairs } = plan;
    return { loss, simSums, validRows, rows: R, posPairs, negPairs };
  } finally {
    disposePlan(plan);
  }
}

/**
 * Per-row losses L_r (view-major rows, as the references' `loss` before `.mean()`), for tests and
 * diagnostics; rows without positives give 0. rows: [R,D], rowLabels: [R] → [R].
 */
export function contrastivePerRow(
  rows: Tensor2D,
  rowLabels: Int32Array,
  options: ContrastiveOptions,
): Tensor1D {
  const R = rows.shape[0];
  const counts = new Map<number, number>();
  for (const l of rowLabels) counts.set(l, (counts.get(l) ?? 0) + 1);
  const scale = new Float32Array(R);
  for (let r = 0; r < R; r++) {
    const p = counts.get(rowLabels[r])! - 1;
    scale[r] = p > 0 ? options.temperature / options.baseTemperature / p : 0;
  }
  return tf.tidy(() => {
    const lab = tf.tensor1d(rowLabels, "int32");
    const same = tf.cast(tf.equal(tf.reshape(lab, [R, 1]), tf.reshape(lab, [1, R])), "float32") as Tensor2D;
    const s = tf.div(gram(rows), options.temperature) as Tensor2D;
    const sums = infoNceRowSums(s, tf.sub(same, tf.eye(R)) as Tensor2D, tf.mul(same, -NEG_BIG) as Tensor2D);
    return tf.mul(sums, tf.tensor1d(scale)) as Tensor1D;
  });
}

/**
 * The reference's interface: feats [A,V,D] (A = (image, class) pairs, V views), labels [A]. Rows are
 * flattened view-major (row v·A + a holds feats[a, v]), as `cat(unbind(X, 1), 0)`.
 */
export function contrastiveTerm(
  feats: Tensor3D,
  labels: ArrayLike<number>,
  options: ContrastiveOptions,
  subtractRowMax = false,
): Scalar {
  const [A, V, D] = feats.shape;
  if (labels.length !== A) throw new Error(`losses/contrastive: ${labels.length} labels for ${A} groups`);
  const rowLabels = new Int32Array(A * V);
  for (let v = 0; v < V; v++) for (let a = 0; a < A; a++) rowLabels[v * A + a] = labels[a];
  return tf.tidy(() => {
    const rows = tf.reshape(tf.transpose(feats, [1, 0, 2]), [A * V, D]) as Tensor2D;
    const r = contrastiveFromRows(rows, rowLabels, options, false, subtractRowMax);
    return r.loss;
  });
}

/**
 * Row gather x[idx] whose gradient is a ScatterNd of the incoming rows (indices must be distinct, which
 * the sampler guarantees). ScatterNd exists on every backend, unlike UnsortedSegmentSum (tf.gather's
 * gradient), which the wasm backend lacks. x: [P,D], idx: [R] → [R,D].
 */
export function gatherRows(x: Tensor2D, idx: Int32Array): Tensor2D {
  const [P, D] = x.shape;
  const f = tf.customGrad((xx, save) => {
    const it = tf.tensor1d(idx, "int32");
    (save as tf.GradSaveFunc)([it]);
    return {
      value: tf.gather(xx as Tensor2D, it),
      gradFunc: (dy, saved) => {
        const [iSaved] = saved;
        return tf.scatterND(tf.reshape(iSaved, [idx.length, 1]), dy as Tensor2D, [P, D]);
      },
    };
  });
  return f(x) as Tensor2D;
}
