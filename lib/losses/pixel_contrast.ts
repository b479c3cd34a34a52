/**
 * PixelContrastLoss (docs/method.md §4): hard/easy anchor sampling on the stride-4 embeddings and the
 * supervised pixel-to-pixel InfoNCE, per contrast group of images, optionally against a memory bank.
 *
 *   inputs: logits4 [N,h,w,C] (stride-4 logits → predictions), embed [N,h,w,D] (unit vectors),
 *           labels [N,H,W] int32 (full resolution; picked at label[r·i, r·j], r = H/h)
 *
 * Groups: images [g·G, (g+1)·G) form one contrast group (G = contrast_group_size, 0 = whole batch; the
 * reference's per-GPU batch is G = 2). Sampling caps (max_samples, max_views) apply per group and the
 * term is the mean over groups, each group's term being the reference's per-GPU loss (gradients of
 * data-parallel GPUs are averaged). An empty group (no class with more than max_views pixels, or more
 * (image, class) pairs than max_samples) contributes 0 — both references crash there (docs/method.md §4.3).
 *
 * Host/device split: the predictions at embedding resolution are read back once, asynchronously (N·h·w
 * int32; the labels too unless the caller has them on the host); the anchor selection runs on the host;
 * the embeddings of all groups' anchors are gathered with one gather whose gradient is one ScatterNd.
 * Nothing is read back synchronously: the differentiable part is recorded on the caller's `Tape`
 * (lib/backend/tape.ts) and the diagnostics come as one small tensor the caller reads with its others.
 */
import { type Tensor1D, type Tensor2D, type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";
import type { Tape } from "../backend/tape.ts";
import type { Rng } from "../util/rng.ts";
import { gatherRows } from "./contrastive.ts";
import {
  type ContrastPlan,
  disposePlan,
  inBatchPlan,
  memoryPlan,
  planLoss,
  planSimilaritySums,
} from "./contrast_plan.ts";
import { labelsAndPredictions } from "./labels.ts";
import type { MemoryBank, MemoryUpdateInfo } from "./memory_bank.ts";
import type { PixelContrastOptions } from "./options.ts";
import { type AnchorSample, sampleHardAnchors } from "./sampler.ts";

type Scalar = tf.Scalar;

export interface PixelContrastInputs {
  /** [N,h,w,C] stride-4 logits (predictions = argmax; no gradient). */
  logits4: Tensor4D;
  /** [N,h,w,D] embeddings (L2-normalised by the projection head). */
  embed: Tensor4D;
  /** [N,H,W] int32 labels at input resolution. */
  labels: Tensor3D;
}

export interface PixelContrastContext {
  /** Required unless options.draw is "identity" (and no semi-hard mining / memory update runs). */
  rng?: Rng;
  /** Memory bank (used when options.memory.enabled). */
  memory?: MemoryBank | null;
  /** Enqueue this batch into the memory after the loss (default true when a memory is used). */
  updateMemory?: boolean;
  /** Compute mean positive/negative cosine similarity (into `stats`). Default true. */
  similarityStats?: boolean;
  /** Compute ‖∂contrast/∂embed‖ (re-evaluates the plans on a copy of the anchors; into `stats`). Default false. */
  gradNorm?: boolean;
  /**
   * Records the differentiable part on this tape, so that gradients can be taken:
   * `tf.variableGrads(() => tape.replay(result.loss))`. Without one, `loss` is a plain value.
   */
  tape?: Tape;
  /** Host copy of `labels` ([N·H·W] int32): the labels are then not read back. */
  labelsHost?: Int32Array;
}

export interface ContrastGroupInfo {
  firstImage: number;
  numImages: number;
  /** (image, class) pairs that passed the count rule. */
  totalClasses: number;
  nView: number;
  anchors: number;
  validRows: number;
  /** No anchors: the group's term is 0. */
  empty: boolean;
}

export interface ContrastDiagnostics {
  /** Plain-text statement of the grouping and caps, for logs. */
  note: string;
  groupSize: number;
  groups: ContrastGroupInfo[];
  emptyGroups: number;
  maxSamplesPerGroup: number;
  maxViews: number;
  anchors: number;
  /** [numClasses] anchors per class (summed over groups). */
  anchorsPerClass: number[];
  hardAnchors: number;
  easyAnchors: number;
  /** How many (image, class) pairs used each keep rule of docs/method.md §4.3. */
  keepRules: { a: number; b: number; c: number };
  /** Anchor rows left out of the mean because they had no positive. */
  rowsWithoutPositive: number;
  /** Mean cosine similarity over positive / negative pairs (null when not computed or no pair). */
  meanPosSim: number | null;
  meanNegSim: number | null;
  /** ‖∂contrast/∂embed‖ (unweighted term), when asked. */
  gradNorm: number | null;
  memory: null | {
    reproducePublicCode: boolean;
    mining: string;
    contrastSetSize: number;
    enqueuedSegments: number;
    enqueuedPixels: number;
  };
}

export interface PixelContrastResult {
  /** The term; differentiable w.r.t. `embed` when recorded on `ctx.tape`. Owned by the caller. */
  loss: Scalar;
  /**
   * [3] float32: Σ cos over positive pairs, Σ cos over negative pairs, ‖∂contrast/∂embed‖ (0 when not asked);
   * null when neither was asked or there is no anchor. Owned by the caller, who reads it (with whatever else
   * it reads) and passes the values to `diagnose`.
   */
  stats: Tensor1D | null;
  /** The diagnostics, given the values of `stats` (null when `stats` is null). */
  diagnose(stats: ArrayLike<number> | null): ContrastDiagnostics;
  /** Host copy of the labels at embedding resolution (reusable by the caller). */
  labelsDown: Int32Array;
}

/** Reads `r.stats` (and disposes it) and returns the diagnostics; for callers with nothing else to read. */
export async function readContrastDiagnostics(r: PixelContrastResult): Promise<ContrastDiagnostics> {
  if (!r.stats) return r.diagnose(null);
  try {
    return r.diagnose(await r.stats.data());
  } finally {
    r.stats.dispose();
  }
}

/** Image ranges of the contrast groups for a batch of n images. */
export function contrastGroups(n: number, groupSize: number): Array<[number, number]> {
  const G = groupSize <= 0 ? n : groupSize;
  const out: Array<[number, number]> = [];
  for (let s = 0; s < n; s += G) out.push([s, Math.min(n, s + G)]);
  return out;
}

/**
 * The contrast term, in stages: (1) sample the anchors of each contrast group on the host, from the labels
 * and the predictions read back once; (2) plan what each anchor row is contrasted with (the group's anchors,
 * or the memory with its mining); (3) the loss over the plans, the only piece recorded on `ctx.tape` (so it
 * can be differentiated w.r.t. `embed`); (4) when asked, statistics (similarities, the term's gradient norm);
 * (5) with a memory bank, enqueue the batch (one more read of the enqueued vectors). Asynchronous, never a
 * synchronous read.
 */
export async function pixelContrastLoss(
  inputs: PixelContrastInputs,
  o: PixelContrastOptions,
  ctx: PixelContrastContext = {},
): Promise<PixelContrastResult> {
  const { logits4, embed, labels } = inputs;
  checkInputs(logits4, embed, labels);
  const useMemory = o.memory.enabled;
  if (useMemory && !ctx.memory) {
    throw new Error("losses/pixel_contrast: memory.enabled but no MemoryBank was passed");
  }
  if (o.draw === "random" && !ctx.rng) {
    throw new Error("losses/pixel_contrast: a seeded Rng is required (ctx.rng)");
  }
  const wantSimilarity = ctx.similarityStats !== false, wantGradNorm = ctx.gradNorm === true;

  // (1) sample
  const host = await labelsAndPredictions(labels, logits4, ctx.labelsHost);
  const sample = sampleAnchors(host.labels, host.preds, logits4.shape[0], host.h * host.w, o, ctx.rng);
  let loss: Scalar | null = null, stats: Tensor1D | null = null;
  let pairs = { pos: 0, neg: 0 };
  if (sample.rowIndex.length > 0) {
    // (2) plan
    const plans = await planContrast(embed, sample, o, useMemory ? ctx.memory! : null, ctx.rng);
    let rows: Tensor2D | null = null;
    try {
      // (3) loss: the only piece on the tape
      [loss, rows] = record(ctx, () => {
        const r = gatherRows(tf.reshape(embed, [-1, embed.shape[3]]) as Tensor2D, sample.rowIndex);
        return [contrastTerm(r, sample, plans.plans, o), r] as [Scalar, Tensor2D];
      });
      plans.plans.forEach((plan, g) => {
        if (!plan) return;
        sample.groups[g].validRows = plan.validRows;
        pairs = { pos: pairs.pos + plan.posPairs, neg: pairs.neg + plan.negPairs };
      });
      // (4) statistics, when asked
      if (wantSimilarity || wantGradNorm) {
        stats = contrastStatistics(rows, sample, plans.plans, o, {
          similarity: wantSimilarity,
          gradNorm: wantGradNorm,
        });
      }
    } catch (e) {
      loss?.dispose();
      throw e;
    } finally {
      rows?.dispose();
      plans.release();
    }
  } else {
    // no anchors: the term is 0 (documented choice), kept connected to embed so gradients are zeros
    loss = record(ctx, () => tf.mul(tf.sum(tf.slice(embed, [0, 0, 0, 0], [1, 1, 1, 1])), 0) as Scalar);
  }

  // (5) the memory bank learns this batch
  let mem: MemoryUpdateInfo = { segments: 0, pixels: 0 };
  if (useMemory && ctx.updateMemory !== false) {
    try {
      if (!ctx.rng) throw new Error("losses/pixel_contrast: the memory update needs ctx.rng");
      mem = await ctx.memory!.updateFromBatch(embed, labels, ctx.rng, {
        labelsDown: host.labels,
        labels: ctx.labelsHost,
      });
    } catch (e) {
      loss.dispose();
      stats?.dispose();
      throw e;
    }
  }
  // (6) diagnostics, once the caller has read `stats`
  const memory = useMemory
    ? {
      reproducePublicCode: o.memory.reproducePublicCode,
      mining: o.memory.mining,
      contrastSetSize: ctx.memory!.contrastLabels().length,
      enqueuedSegments: mem.segments,
      enqueuedPixels: mem.pixels,
    }
    : null;
  const hasStats = stats !== null;
  const diagnose = (v: ArrayLike<number> | null): ContrastDiagnostics => {
    if (hasStats && (!v || v.length < 3)) {
      throw new Error("losses/pixel_contrast: diagnose() needs the 3 values of `stats`");
    }
    return summarise(sample, o, logits4.shape[3], {
      posPairs: pairs.pos,
      negPairs: pairs.neg,
      simPos: hasStats && wantSimilarity ? v![0] : 0,
      simNeg: hasStats && wantSimilarity ? v![1] : 0,
      wantStats: wantSimilarity,
      gradNorm: hasStats && wantGradNorm ? v![2] : null,
      memory,
    });
  };
  return { loss, stats, diagnose, labelsDown: host.labels };
}

/** On the caller's tape when it gave one (differentiable later), else as a plain value. */
function record<T extends tf.TensorContainer>(ctx: PixelContrastContext, f: () => T): T {
  return ctx.tape ? ctx.tape.record(f) : tf.tidy(f);
}

// ---------------------------------------------------------------------------------------------------
// (1) sample

/** The anchors of every contrast group of a batch, as view-major rows over the batch's pixels. */
export interface ContrastSample {
  /** The sampler's result per group (pairs kept, hard and easy counts: the diagnostics). */
  samples: AnchorSample[];
  groups: ContrastGroupInfo[];
  /** Row r's anchor pixel (image·P + pixel of the N·P embedding grid cells) and its class. */
  rowIndex: Int32Array;
  rowLabel: Int32Array;
  /** Group g's rows are [rowStart[g], rowStart[g+1]). */
  rowStart: number[];
}

/**
 * Hard and easy anchors per (image, class) of each contrast group (lib/losses/sampler.ts), from the labels and
 * predictions at embedding resolution ([N·P] int32, P = h·w); the caps apply per group.
 */
export function sampleAnchors(
  labels: Int32Array,
  preds: Int32Array,
  N: number,
  P: number,
  o: PixelContrastOptions,
  rng?: Rng,
): ContrastSample {
  const sOpts = { maxSamples: o.maxSamples, maxViews: o.maxViews, ignoreIndex: o.ignoreIndex, draw: o.draw };
  const samples: AnchorSample[] = [], groups: ContrastGroupInfo[] = [];
  const rowIdx: number[] = [], rowLab: number[] = [], rowStart: number[] = [0];
  for (const [g0, g1] of contrastGroups(N, o.contrastGroupSize)) {
    const s = sampleHardAnchors(
      labels.subarray(g0 * P, g1 * P),
      preds.subarray(g0 * P, g1 * P),
      g1 - g0,
      P,
      sOpts,
      rng,
    );
    samples.push(s);
    const A = s.totalClasses, V = s.nView;
    for (let v = 0; v < V; v++) {
      for (let a = 0; a < A; a++) {
        rowIdx.push(g0 * P + s.indices[a * V + v]);
        rowLab.push(s.classIds[a]);
      }
    }
    rowStart.push(rowIdx.length);
    groups.push({
      firstImage: g0,
      numImages: g1 - g0,
      totalClasses: A,
      nView: V,
      anchors: A * V,
      validRows: 0,
      empty: A * V === 0,
    });
  }
  return { samples, groups, rowIndex: Int32Array.from(rowIdx), rowLabel: Int32Array.from(rowLab), rowStart };
}

// ---------------------------------------------------------------------------------------------------
// (2) plan

/** The plan of each group (null for an empty group); `release` frees them and what they refer to. */
interface ContrastPlans {
  plans: Array<ContrastPlan | null>;
  release(): void;
}

/**
 * What each group's anchor rows are contrasted with: each other (the seed), or the memory bank's contrast set
 * with its mining. Memory mining ranks pairs and reads the ranks back: off the tape, on a detached copy of the
 * anchors.
 */
async function planContrast(
  embed: Tensor4D,
  sample: ContrastSample,
  o: PixelContrastOptions,
  memory: MemoryBank | null,
  rng?: Rng,
): Promise<ContrastPlans> {
  const plans: Array<ContrastPlan | null> = [];
  const memSet = memory ? { features: memory.contrastFeatures(), labels: memory.contrastLabels() } : null;
  const ownsMemFeatures = memSet !== null && o.memory.reproducePublicCode; // public mode returns a new tensor
  const release = () => {
    for (const p of plans) if (p) disposePlan(p);
    if (ownsMemFeatures) memSet!.features.dispose();
  };
  const D = embed.shape[3];
  const anchorsAll = memSet
    ? tf.tidy(() => tf.gather(tf.reshape(embed, [-1, D]), tf.tensor1d(sample.rowIndex, "int32")) as Tensor2D)
    : null;
  try {
    for (let g = 0; g < sample.groups.length; g++) {
      const r0 = sample.rowStart[g], r1 = sample.rowStart[g + 1];
      if (r1 === r0) {
        plans.push(null);
        continue;
      }
      const labs = sample.rowLabel.slice(r0, r1);
      if (!memSet) {
        plans.push(inBatchPlan(labs, o));
        continue;
      }
      const anchors = tf.slice(anchorsAll!, [r0, 0], [r1 - r0, D]) as Tensor2D;
      try {
        plans.push(
          await memoryPlan(anchors, labs, memSet.features, memSet.labels, {
            ...o,
            ...o.memory,
            removeDiagonal: o.memory.reproducePublicCode,
          }, rng),
        );
      } finally {
        anchors.dispose();
      }
    }
  } catch (e) {
    release();
    throw e;
  } finally {
    anchorsAll?.dispose();
  }
  return { plans, release };
}

// ---------------------------------------------------------------------------------------------------
// (3) loss and (4) statistics

/** The term: the mean over groups of each group's InfoNCE over its plan (an empty group counts 0). */
function contrastTerm(
  rows: Tensor2D,
  sample: ContrastSample,
  plans: ReadonlyArray<ContrastPlan | null>,
  o: PixelContrastOptions,
): Scalar {
  return tf.tidy(() => {
    const D = rows.shape[1];
    const parts: Scalar[] = [];
    plans.forEach((plan, g) => {
      if (!plan) return;
      const r0 = sample.rowStart[g], r1 = sample.rowStart[g + 1];
      parts.push(planLoss(tf.slice(rows, [r0, 0], [r1 - r0, D]) as Tensor2D, plan, o.temperature));
    });
    return tf.div(tf.addN(parts), sample.groups.length) as Scalar;
  });
}

/**
 * [3]: Σ cos over positive pairs, Σ cos over negative pairs, ‖∂term/∂anchors‖ (0 where not asked); off the
 * tape (statistics are not differentiated), as one small tensor the caller reads with its others.
 */
function contrastStatistics(
  rows: Tensor2D,
  sample: ContrastSample,
  plans: ReadonlyArray<ContrastPlan | null>,
  o: PixelContrastOptions,
  want: { similarity: boolean; gradNorm: boolean },
): Tensor1D {
  return tf.tidy(() => {
    const D = rows.shape[1];
    let sums: tf.Tensor = tf.zeros([2]);
    if (want.similarity) {
      const parts: Tensor1D[] = [];
      plans.forEach((plan, g) => {
        if (!plan || plan.validRows === 0) return;
        const r0 = sample.rowStart[g], r1 = sample.rowStart[g + 1];
        parts.push(planSimilaritySums(tf.slice(rows, [r0, 0], [r1 - r0, D]) as Tensor2D, plan));
      });
      if (parts.length) sums = tf.addN(parts);
    }
    let gn: tf.Tensor = tf.zeros([1]);
    if (want.gradNorm) {
      // the term evaluated again on a fresh leaf, so that tf.grad sees only it
      const copy = tf.add(rows, 0) as Tensor2D;
      gn = tf.reshape(
        tf.norm(tf.grad((x: tf.Tensor) => contrastTerm(x as Tensor2D, sample, plans, o))(copy)),
        [1],
      );
    }
    return tf.concat([sums, gn]) as Tensor1D;
  });
}

// ---------------------------------------------------------------------------------------------------
// (6) diagnostics

function summarise(
  sample: ContrastSample,
  o: PixelContrastOptions,
  numClasses: number,
  x: {
    posPairs: number;
    negPairs: number;
    simPos: number;
    simNeg: number;
    wantStats: boolean;
    gradNorm: number | null;
    memory: ContrastDiagnostics["memory"];
  },
): ContrastDiagnostics {
  const { samples, groups: infos } = sample;
  const perClass = new Array<number>(numClasses).fill(0);
  let hard = 0, easy = 0;
  const rules = { a: 0, b: 0, c: 0 };
  for (const s of samples) {
    for (const k of s.keeps) {
      if (k.classId < numClasses) perClass[k.classId] += k.keepHard + k.keepEasy;
      hard += k.keepHard;
      easy += k.keepEasy;
      rules[k.rule]++;
    }
  }
  const anchors = infos.reduce((t, g) => t + g.anchors, 0);
  const valid = infos.reduce((t, g) => t + g.validRows, 0);
  const G = o.contrastGroupSize <= 0 ? "the whole batch" : `groups of ${o.contrastGroupSize} images`;
  return {
    note: `contrast per ${G} (${infos.length} group(s)); caps per group: max_samples ${o.maxSamples}, ` +
      `max_views ${o.maxViews}; empty groups count as 0 in the mean over groups` +
      (x.memory
        ? `; contrast set = memory (${x.memory.reproducePublicCode ? "public-code" : "intended"} semantics)`
        : ""),
    groupSize: o.contrastGroupSize,
    groups: infos,
    emptyGroups: infos.filter((g) => g.empty).length,
    maxSamplesPerGroup: o.maxSamples,
    maxViews: o.maxViews,
    anchors,
    anchorsPerClass: perClass,
    hardAnchors: hard,
    easyAnchors: easy,
    keepRules: rules,
    rowsWithoutPositive: anchors - valid,
    meanPosSim: x.wantStats && x.posPairs > 0 ? x.simPos / x.posPairs : null,
    meanNegSim: x.wantStats && x.negPairs > 0 ? x.simNeg / x.negPairs : null,
    gradNorm: x.gradNorm,
    memory: x.memory,
  };
}

function checkInputs(logits4: Tensor4D, embed: Tensor4D, labels: Tensor3D): void {
  if (logits4.rank !== 4) {
    throw new Error(`losses/pixel_contrast: logits4 must be [N,h,w,C], got ${logits4.shape}`);
  }
  if (embed.rank !== 4) throw new Error(`losses/pixel_contrast: embed must be [N,h,w,D], got ${embed.shape}`);
  if (labels.rank !== 3 || labels.dtype !== "int32") {
    throw new Error(
      `losses/pixel_contrast: labels must be [N,H,W] int32, got ${labels.shape} ${labels.dtype}`,
    );
  }
  const [n, h, w] = logits4.shape;
  if (embed.shape[0] !== n || embed.shape[1] !== h || embed.shape[2] !== w) {
    throw new Error(
      `losses/pixel_contrast: embed ${embed.shape} and logits4 ${logits4.shape} differ in N, h or w`,
    );
  }
  if (labels.shape[0] !== n) {
    throw new Error(`losses/pixel_contrast: labels batch ${labels.shape[0]} != ${n}`);
  }
  if (labels.shape[1] < h || labels.shape[2] < w) {
    throw new Error(
      `losses/pixel_contrast: labels ${labels.shape} smaller than the embedding grid ${h}x${w}`,
    );
  }
}
