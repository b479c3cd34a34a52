/**
 * Contrast plans: which (anchor, contrast) pairs are positives and negatives, as {0,1} masks on the
 * device plus host-known row weights. A plan is built once per group (it holds the only random or
 * data-dependent choices, e.g. the memory-bank mining) and then evaluated as a differentiable function
 * of the anchor rows by `planLoss`, so the same plan can be re-evaluated (gradient-share diagnostics).
 *
 * - in-batch (the seed): contrast set = the anchors themselves; positives = same class minus self.
 * - memory (TORCH `_contrastive(..., queue)`): contrast set = the memory's contrast features; positives =
 *   entries of the anchor's class (the public code's "diagonal" removal on columns r < R behind a flag);
 *   optional mining (paper §3.3; not in the public code):
 *     hardest:   the K_n most similar negatives and the K_p least similar positives per anchor;
 *     semi_hard: K_n drawn uniformly from the nearest ⌈f·|N_r|⌉ negatives, K_p from the farthest
 *                ⌈f·|P_r|⌉ positives (f = 0.1).
 */
import { type Tensor1D, type Tensor2D, tf } from "../backend/tf.ts";
import type { Rng } from "../util/rng.ts";
import {
  type ContrastiveOptions,
  crossSimilarity,
  gram,
  infoNceRowSums,
  NEG_BIG,
  rowWeights,
} from "./infonce.ts";
import type { MiningMode } from "./options.ts";

type Scalar = tf.Scalar;

export interface ContrastPlan {
  /** [R,Q] positives. */
  pos: Tensor2D;
  /** [R,Q] negatives. */
  neg: Tensor2D;
  /** [R] (τ/τ_b)/(|P_r|·#valid rows); 0 for rows without positives. */
  rowWeight: Float32Array;
  /** Contrast features [Q,D]; null = the anchor rows themselves. */
  contrast: Tensor2D | null;
  rows: number;
  validRows: number;
  posPairs: number;
  negPairs: number;
}

export interface MemoryPlanOptions extends ContrastiveOptions {
  mining: MiningMode;
  miningNegatives: number;
  miningPositives: number;
  semiHardFraction: number;
  /** The public code's `logits_mask`: column r removed from row r's positives for r < Q. */
  removeDiagonal: boolean;
}

/** In-batch plan for view-major rows with the given labels. Masks are new tensors owned by the caller. */
export function inBatchPlan(rowLabels: Int32Array, options: ContrastiveOptions): ContrastPlan {
  const R = rowLabels.length;
  const perClass = new Map<number, number>();
  for (const l of rowLabels) perClass.set(l, (perClass.get(l) ?? 0) + 1);
  const posCount = new Int32Array(R);
  let posPairs = 0, negPairs = 0;
  for (let r = 0; r < R; r++) {
    const n = perClass.get(rowLabels[r])!;
    posCount[r] = n - 1;
    posPairs += n - 1;
    negPairs += R - n;
  }
  const { w, valid } = rowWeights(posCount, options.temperature / options.baseTemperature);
  const [pos, neg] = tf.tidy(() => {
    const lab = tf.tensor1d(rowLabels, "int32");
    const same = tf.cast(tf.equal(tf.reshape(lab, [R, 1]), tf.reshape(lab, [1, R])), "float32");
    return [tf.sub(same, tf.eye(R)) as Tensor2D, tf.sub(1, same) as Tensor2D];
  });
  return { pos, neg, rowWeight: w, contrast: null, rows: R, validRows: valid, posPairs, negPairs };
}

/**
 * Memory plan. anchors: [R,D] (used only to rank pairs when mining; no gradient flows through the
 * choice), contrast: [Q,D] with host labels. `rng` is needed for semi_hard. Asynchronous because mining
 * reads the ranked indices back (call it outside a gradient recording).
 */
export async function memoryPlan(
  anchors: Tensor2D,
  anchorLabels: Int32Array,
  contrast: Tensor2D,
  contrastLabels: Int32Array,
  options: MemoryPlanOptions,
  rng?: Rng,
): Promise<ContrastPlan> {
  const R = anchorLabels.length, Q = contrastLabels.length;
  if (anchors.shape[0] !== R || contrast.shape[0] !== Q) {
    throw new Error(
      `losses/contrast_plan: ${R} anchor labels for ${anchors.shape[0]} rows, ${Q} for ${contrast.shape[0]}`,
    );
  }
  const perClass = new Map<number, number>();
  for (const l of contrastLabels) perClass.set(l, (perClass.get(l) ?? 0) + 1);
  const nPos = new Int32Array(R), nNeg = new Int32Array(R);
  for (let r = 0; r < R; r++) {
    const n = perClass.get(anchorLabels[r]) ?? 0;
    const diag = options.removeDiagonal && r < Q && contrastLabels[r] === anchorLabels[r] ? 1 : 0;
    nPos[r] = n - diag;
    nNeg[r] = Q - n;
  }
  const [same, posAll] = tf.tidy(() => {
    const a = tf.tensor1d(anchorLabels, "int32"), q = tf.tensor1d(contrastLabels, "int32");
    const sm = tf.cast(tf.equal(tf.reshape(a, [R, 1]), tf.reshape(q, [1, Q])), "float32") as Tensor2D;
    if (!options.removeDiagonal) return [sm, sm.clone()];
    const k = Math.min(R, Q);
    const eye = tf.pad(tf.eye(k), [[0, R - k], [0, Q - k]]);
    return [sm, tf.sub(sm, tf.mul(sm, eye)) as Tensor2D];
  });
  const scale = options.temperature / options.baseTemperature;
  if (options.mining === "none") {
    const neg = tf.sub(1, same) as Tensor2D;
    same.dispose();
    const { w, valid } = rowWeights(nPos, scale);
    return {
      pos: posAll,
      neg,
      rowWeight: w,
      contrast,
      rows: R,
      validRows: valid,
      posPairs: sum(nPos),
      negPairs: sum(nNeg),
    };
  }
  if (options.mining === "semi_hard" && !rng) {
    throw new Error("losses/contrast_plan: semi_hard mining needs an Rng");
  }
  // Rank pairs by cosine similarity (constants: the mining is a selection, not differentiated).
  const sim = tf.tidy(() => tf.matMul(anchors, tf.transpose(contrast)));
  const negScores = tf.tidy(() => tf.add(sim, tf.mul(same, -NEG_BIG))) as Tensor2D; // negatives: similarity
  const posScores = tf.tidy(() => tf.add(tf.neg(sim), tf.mul(tf.sub(1, posAll), -NEG_BIG))) as Tensor2D; // positives: −sim
  sim.dispose();
  same.dispose();
  posAll.dispose();
  const f = options.semiHardFraction;
  const pool = (n: Int32Array) => options.mining === "semi_hard" ? n.map((v) => Math.ceil(f * v)) : null;
  const kOf = (n: Int32Array, K: number, p: Int32Array | null) => n.map((v, r) => Math.min(K, p ? p[r] : v));
  const pNeg = pool(nNeg), pPos = pool(nPos);
  const kNeg = kOf(nNeg, options.miningNegatives, pNeg), kPos = kOf(nPos, options.miningPositives, pPos);
  let neg: Tensor2D, pos: Tensor2D;
  try {
    neg = await selectMask(negScores, kNeg, pNeg, rng);
    pos = await selectMask(posScores, kPos, pPos, rng);
  } finally {
    negScores.dispose();
    posScores.dispose();
  }
  const { w, valid } = rowWeights(kPos, scale);
  return {
    pos,
    neg,
    rowWeight: w,
    contrast,
    rows: R,
    validRows: valid,
    posPairs: sum(kPos),
    negPairs: sum(kNeg),
  };
}

/**
 * {0,1} mask [R,Q] with k[r] entries per row: the k[r] highest scores, or (pool given) k[r] drawn uniformly
 * without replacement among the pool[r] highest. Invalid entries score ≈ −NEG_BIG and are never reached
 * because k[r] and pool[r] never exceed the row's valid count.
 */
async function selectMask(
  scores: Tensor2D,
  k: Int32Array,
  pool: Int32Array | null,
  rng?: Rng,
): Promise<Tensor2D> {
  const [R, Q] = scores.shape;
  const depth = Math.max(0, ...(pool ?? k));
  if (depth === 0) return tf.zeros([R, Q]) as Tensor2D;
  const top = tf.topk(scores, Math.min(depth, Q), true);
  top.values.dispose();
  let idx: Int32Array;
  try {
    idx = (await top.indices.data()) as Int32Array;
  } finally {
    top.indices.dispose();
  }
  const kk = Math.min(depth, Q);
  let m = 0;
  for (const v of k) m += v;
  const pairs = new Int32Array(2 * m);
  let o = 0;
  const scratch = new Int32Array(kk);
  for (let r = 0; r < R; r++) {
    const row = idx.subarray(r * kk, (r + 1) * kk);
    let chosen: Int32Array = row;
    if (pool) {
      scratch.set(row);
      for (let i = 0; i < k[r]; i++) {
        const j = i + rng!.int(pool[r] - i);
        const t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
      }
      chosen = scratch;
    }
    for (let i = 0; i < k[r]; i++) {
      pairs[o++] = r;
      pairs[o++] = chosen[i];
    }
  }
  if (m === 0) return tf.zeros([R, Q]) as Tensor2D;
  return tf.tidy(() => tf.scatterND(tf.tensor2d(pairs, [m, 2], "int32"), tf.ones([m]), [R, Q])) as Tensor2D;
}

/** Σ_r w_r Σ_{q∈P_r} −log p_rq for one plan; rows: [R,D] anchors (view-major). */
export function planLoss(
  rows: Tensor2D,
  plan: ContrastPlan,
  temperature: number,
  subtractRowMax = false,
): Scalar {
  // no row with a positive: exactly 0, still connected to the rows so that gradients are defined (zeros)
  if (plan.validRows === 0) return tf.tidy(() => tf.mul(tf.sum(rows), 0) as Scalar);
  return tf.tidy(() => {
    const sim = plan.contrast ? crossSimilarity(rows, plan.contrast) : gram(rows);
    let s = tf.div(sim, temperature) as Tensor2D;
    // the references' stabilisation; the log-domain form does not need it (kept for the invariance test)
    if (subtractRowMax) s = tf.sub(s, tf.max(s, 1, true));
    const negBias = tf.mul(tf.sub(plan.neg, 1), NEG_BIG) as Tensor2D; // 0 on negatives, −1e9 elsewhere
    const perRow = infoNceRowSums(s, plan.pos, negBias);
    return tf.sum(tf.mul(perRow, tf.tensor1d(plan.rowWeight))) as Scalar;
  });
}

/** [2]: Σ cos over positive pairs and over negative pairs (diagnostics). */
export function planSimilaritySums(rows: Tensor2D, plan: ContrastPlan): Tensor1D {
  return tf.tidy(() => {
    const cos = tf.matMul(rows, tf.transpose(plan.contrast ?? rows));
    return tf.stack([tf.sum(tf.mul(plan.pos, cos)), tf.sum(tf.mul(plan.neg, cos))]) as Tensor1D;
  });
}

export function disposePlan(plan: ContrastPlan): void {
  plan.pos.dispose();
  plan.neg.dispose();
}

function sum(a: Int32Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}
