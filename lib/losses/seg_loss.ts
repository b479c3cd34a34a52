/**
 * The training loss (docs/method.md §4.6): total = coef[0]·CE(logits_up, label) + coef[1]·Contrast(...),
 * coef [1, 0.1] in REPRO. With warmup_iters > 0 (TORCH 5000) the contrast part is 0 for iter <
 * warmup_iters: it is then not computed at all (its value would be multiplied by 0), but a memory bank
 * is still updated, as in TORCH where the queues are filled from the first iteration.
 *
 * Asynchronous (the contrast sampler reads the predictions back; nothing is read synchronously). To
 * differentiate `total`, record it on a `Tape` (lib/backend/tape.ts) and replay that in the gradient call:
 *
 *   const r = await segmentationLoss(inputs, options, { ...ctx, tape });
 *   const { value, grads } = tf.variableGrads(() => tape.replay(r.total), vars);
 *   const diagnostics = r.diagnose(r.values ? await r.values.data() : null);  // or readLossDiagnostics(r)
 *
 * The diagnostics' numbers come as one small tensor (`values`), so that a caller reads them together with
 * whatever else it reads, once.
 */
import { type Tensor1D, type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";
import type { Tape } from "../backend/tape.ts";
import type { Rng } from "../util/rng.ts";
import { crossEntropyGradNorm, crossEntropyLoss } from "./cross_entropy.ts";
import type { MemoryBank } from "./memory_bank.ts";
import type { LossOptions } from "./options.ts";
import { type ContrastDiagnostics, pixelContrastLoss, type PixelContrastResult } from "./pixel_contrast.ts";

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
  /** Loss values and the sampler's counts (into `values`). Default true. */
  diagnostics?: boolean;
  /**
   * Mean similarities over the contrast term's positive and negative pairs (into `values`; an extra product
   * of the anchors with the contrast set). Default: as `diagnostics`; the trainer asks on logging iterations.
   */
  statistics?: boolean;
  /** Gradient norms of each term at its input (extra backward of the contrast on the anchors). Default false. */
  gradientShare?: boolean;
  /** Records the differentiable part on this tape (see the module comment); without one, `total` is a value. */
  tape?: Tape;
  /** Host copy of `labels` ([N·H·W] int32): the labels are then never read back. */
  labelsHost?: Int32Array;
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
  /** The loss; on `ctx.tape` when given. Owned by the caller. */
  total: Scalar;
  /**
   * The numbers the diagnostics need, as one float32 tensor (null when none are); owned by the caller, who
   * reads it (with whatever else it reads) and passes the values to `diagnose`.
   */
  values: Tensor1D | null;
  /** The diagnostics, given the values of `values` (null when `values` is null). */
  diagnose(values: ArrayLike<number> | null): LossDiagnostics;
}

/** Reads `r.values` (and disposes it) and returns the diagnostics; for callers with nothing else to read. */
export async function readLossDiagnostics(r: SegLossResult): Promise<LossDiagnostics> {
  if (!r.values) return r.diagnose(null);
  try {
    return r.diagnose(await r.values.data());
  } finally {
    r.values.dispose();
  }
}

export async function segmentationLoss(
  inputs: SegLossInputs,
  options: LossOptions,
  ctx: SegLossContext,
): Promise<SegLossResult> {
  const { logitsUp, labels } = inputs;
  const [c0, c1] = options.coef;
  const diag = ctx.diagnostics !== false;
  const contrastOn = options.contrast !== null && c1 !== 0;
  const warmup = contrastOn && ctx.iter < options.contrast!.warmupIters;
  const needMemory = contrastOn && options.contrast!.memory.enabled;
  const record = <T extends tf.TensorContainer>(f: () => T): T => ctx.tape ? ctx.tape.record(f) : tf.tidy(f);

  let contrast: PixelContrastResult | null = null;
  if (contrastOn && (!warmup || needMemory)) {
    if (!inputs.logits4 || !inputs.embed) {
      throw new Error("losses/seg_loss: the contrast term needs logits4 and embed (model outputs)");
    }
    if (warmup) {
      // warm-up with a memory bank: no term, but the queues still learn from this batch
      await ctx.memory!.updateFromBatch(inputs.embed, labels, requireRng(ctx), { labels: ctx.labelsHost });
    } else {
      contrast = await pixelContrastLoss(
        { logits4: inputs.logits4, embed: inputs.embed, labels },
        options.contrast!,
        {
          rng: ctx.rng,
          memory: ctx.memory,
          similarityStats: ctx.statistics ?? diag,
          gradNorm: ctx.gradientShare === true,
          tape: ctx.tape,
          labelsHost: ctx.labelsHost,
        },
      );
    }
  }

  let total: Scalar, values: Tensor1D | null = null;
  const parts: tf.Tensor[] = [];
  try {
    let ce: Scalar;
    [total, ce] = record(() => {
      const ce = crossEntropyLoss(logitsUp, labels, options.ce);
      let t = tf.mul(ce, c0) as Scalar;
      if (contrast) t = tf.add(t, tf.mul(contrast.loss, c1)) as Scalar;
      return [t, ce] as [Scalar, Scalar];
    });
    // what the diagnostics need, off the tape: [ce, contrast, total] [Σcos+, Σcos−, ‖∂contrast‖] [‖∂CE‖]
    if (diag) parts.push(tf.tidy(() => tf.stack([ce, contrast ? contrast.loss : tf.scalar(0), total])));
    ce.dispose();
    if (contrast?.stats) parts.push(contrast.stats);
    if (ctx.gradientShare) {
      parts.push(tf.tidy(() => tf.reshape(crossEntropyGradNorm(logitsUp, labels, options.ce), [1])));
    }
    if (parts.length) values = tf.concat(parts) as Tensor1D;
  } catch (e) {
    contrast?.stats?.dispose();
    throw e;
  } finally {
    contrast?.loss.dispose();
    for (const p of parts) if (p !== contrast?.stats) p.dispose();
    contrast?.stats?.dispose();
  }
  const hasHead = diag, hasStats = contrast?.stats != null, hasCeNorm = ctx.gradientShare === true;
  const count = (hasHead ? 3 : 0) + (hasStats ? 3 : 0) + (hasCeNorm ? 1 : 0);

  const diagnose = (v: ArrayLike<number> | null): LossDiagnostics => {
    if (count > 0 && (!v || v.length !== count)) {
      throw new Error(`losses/seg_loss: diagnose() needs the ${count} values of \`values\``);
    }
    let off = 0;
    let ce: number | null = null, contrastValue: number | null = null, tot: number | null = null;
    if (hasHead) {
      ce = v![0];
      contrastValue = contrastOn && !warmup ? v![1] : 0;
      tot = v![2];
      off = 3;
    }
    const contrastDetail = contrast
      ? contrast.diagnose(hasStats ? Array.from({ length: 3 }, (_, i) => v![off + i]) : null)
      : null;
    if (hasStats) off += 3;
    let grad: LossDiagnostics["grad"] = null;
    if (hasCeNorm) {
      const ceLogits = Math.abs(c0) * v![off];
      const contrastEmbed = contrastDetail?.gradNorm != null ? Math.abs(c1) * contrastDetail.gradNorm : 0;
      const sum = ceLogits + contrastEmbed;
      grad = { ceLogits, contrastEmbed, contrastShare: sum > 0 ? contrastEmbed / sum : 0 };
    }
    const weight = contrastOn && !warmup ? c1 : 0;
    return {
      ce,
      contrast: contrastValue,
      total: tot,
      coef: [c0, c1],
      contrastWeight: weight,
      warmup,
      contrastShareOfLoss: tot !== null && contrastValue !== null && tot !== 0
        ? (weight * contrastValue) / tot
        : null,
      grad,
      contrastDetail,
    };
  };
  return { total, values, diagnose };
}

function requireRng(ctx: SegLossContext): Rng {
  if (!ctx.rng) throw new Error("losses/seg_loss: ctx.rng is required for the contrast term / memory update");
  return ctx.rng;
}
