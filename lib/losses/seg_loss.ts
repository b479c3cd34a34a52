/**
 * The training loss (docs/method.md §4.6): total = coef[0]·CE(logits_up, label) + coef[1]·Contrast(...),
 * coef [1, 0.1] in REPRO. With warmup_iters > 0 (TORCH 5000) the contrast part is 0 for iter <
 * warmup_iters: it is then not computed at all (its value would be multiplied by 0), but a memory bank
 * is still updated, as in TORCH where the queues are filled from the first iteration.
 *
 * Call it inside the trainer's gradient closure and return `total`; `diagnostics` holds plain numbers.
 */
import { type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";
import type { Rng } from "../util/rng.ts";
import { crossEntropyGradNorm, crossEntropyLoss } from "./cross_entropy.ts";
import type { MemoryBank } from "./memory_bank.ts";
import type { LossOptions } from "./options.ts";
import { type ContrastDiagnostics, pixelContrastLoss } from "./pixel_contrast.ts";

type Scalar = tf.Scalar;

export interface SegLossInputs {
  /** [N,H,W,C] logits upsampled to the label size (smaller logits are upsampled bilinearly here). */
  logitsUp: Tensor4D;
  /** [N,h,w,C] stride-4 logits (needed with the contrast term). */
  logits4?: Tensor4D;
  /** [N,h,w,D] unit embeddings (needed with the contrast term). */
  embed?: Tensor4D;
  /** [N,H,W] int32. */
  labels: Tensor3D;
}

export interface SegLossContext {
  /** The trainer's generator (anchor draws, memory picks). */
  rng?: Rng;
  /** Optimizer steps done so far (k in the schedule); drives the contrast warm-up. */
  iter: number;
  memory?: MemoryBank | null;
  /** Loss values, similarities (small synchronous downloads). Default true. */
  diagnostics?: boolean;
  /** Gradient norms of each term at its input (extra backward of the contrast on the anchors). Default false. */
  gradientShare?: boolean;
}

export interface LossDiagnostics {
  ce: number | null;
  contrast: number | null;
  total: number | null;
  coef: [number, number];
  /** coef[1], or 0 during the warm-up (or without contrast term). */
  contrastWeight: number;
  warmup: boolean;
  /** coef·contrast / total. */
  contrastShareOfLoss: number | null;
  /**
   * ‖∂(coef0·CE)/∂logits_up‖ and ‖∂(coef1·contrast)/∂embed‖, and the contrast's share
   * c/(c + ce). The two terms meet only inside the model (the 720-channel features), so the share is
   * indicative; measure at the shared feature in the trainer for an exact split.
   */
  grad: { ceLogits: number; contrastEmbed: number; contrastShare: number } | null;
  contrastDetail: ContrastDiagnostics | null;
}

export interface SegLossResult {
  total: Scalar;
  diagnostics: LossDiagnostics;
}

export function segmentationLoss(
  inputs: SegLossInputs,
  options: LossOptions,
  ctx: SegLossContext,
): SegLossResult {
  const { logitsUp, labels } = inputs;
  const [c0, c1] = options.coef;
  const diag = ctx.diagnostics !== false;
  const contrastOn = options.contrast !== null && c1 !== 0;
  const warmup = contrastOn && ctx.iter < options.contrast!.warmupIters;
  const needMemory = contrastOn && options.contrast!.memory.enabled;

  let contrastDetail: ContrastDiagnostics | null = null;
  let contrastValue: tf.Scalar | null = null;
  let ceValue: tf.Scalar | null = null;
  const total = tf.tidy(() => {
    const ce = crossEntropyLoss(logitsUp, labels, options.ce);
    let t = tf.mul(ce, c0) as Scalar;
    if (contrastOn && (!warmup || needMemory)) {
      if (!inputs.logits4 || !inputs.embed) {
        throw new Error("losses/seg_loss: the contrast term needs logits4 and embed (model outputs)");
      }
      if (warmup) {
        // warm-up with a memory bank: no term, but the queues still learn from this batch
        ctx.memory!.updateFromBatch(inputs.embed, labels, requireRng(ctx));
      } else {
        const r = pixelContrastLoss(
          { logits4: inputs.logits4, embed: inputs.embed, labels },
          options.contrast!,
          { rng: ctx.rng, memory: ctx.memory, similarityStats: diag, gradNorm: ctx.gradientShare === true },
        );
        contrastDetail = r.diagnostics;
        t = tf.add(t, tf.mul(r.loss, c1)) as Scalar;
        if (diag) contrastValue = tf.keep(r.loss);
      }
    }
    if (diag) ceValue = tf.keep(ce);
    return t;
  });

  let ce: number | null = null, contrast: number | null = null, tot: number | null = null;
  if (diag) {
    const v = tf.tidy(() => tf.stack([ceValue!, contrastValue ?? tf.scalar(0), total]).dataSync());
    ce = v[0];
    contrast = contrastOn && !warmup ? v[1] : 0;
    tot = v[2];
  }
  (ceValue as tf.Scalar | null)?.dispose();
  (contrastValue as tf.Scalar | null)?.dispose();

  let grad: LossDiagnostics["grad"] = null;
  if (ctx.gradientShare) {
    const ceLogits = Math.abs(c0) * crossEntropyGradNorm(logitsUp, labels, options.ce);
    const cd = contrastDetail as ContrastDiagnostics | null;
    const contrastEmbed = cd?.gradNorm != null ? Math.abs(c1) * cd.gradNorm : 0;
    const sum = ceLogits + contrastEmbed;
    grad = { ceLogits, contrastEmbed, contrastShare: sum > 0 ? contrastEmbed / sum : 0 };
  }
  const weight = contrastOn && !warmup ? c1 : 0;
  return {
    total,
    diagnostics: {
      ce,
      contrast,
      total: tot,
      coef: [c0, c1],
      contrastWeight: weight,
      warmup,
      contrastShareOfLoss: tot !== null && contrast !== null && tot !== 0 ? (weight * contrast) / tot : null,
      grad,
      contrastDetail,
    },
  };
}

function requireRng(ctx: SegLossContext): Rng {
  if (!ctx.rng) throw new Error("losses/seg_loss: ctx.rng is required for the contrast term / memory update");
  return ctx.rng;
}
