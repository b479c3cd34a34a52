/**
 * One optimizer step of the pixel-contrast model: forward, loss, backward and the momentum-SGD update,
 * with optional gradient accumulation over micro-batches. Shared by the trainer and the benchmarks so
 * that what is measured is what trains.
 *
 * Shapes: images [N,H,W,3] float32 (normalised, NHWC); labels [N,H,W] int32 (ignore index included).
 */
import { tf } from "../backend/tf.ts";
import type { SegModel } from "../models/mod.ts";
import { type LossDiagnostics, type LossOptions, type MemoryBank, segmentationLoss } from "../losses/mod.ts";
import type { Rng } from "../util/rng.ts";
import type { MomentumSGD } from "./optimizer.ts";

export interface MicroBatch {
  /** [n,H,W,3] float32 */
  image: Float32Array;
  /** [n,H,W] int32 */
  label: Int32Array;
  /** [n,H,W] */
  shape: [number, number, number];
}

export interface StepContext {
  model: SegModel;
  optimizer: MomentumSGD;
  loss: LossOptions;
  /** The trainer's generator: dropout masks and anchor draws come from it, in this order. */
  rng: Rng;
  memory?: MemoryBank | null;
  /** Optimizer steps done before this one (k of the schedule). */
  iter: number;
  lr: number;
  /** Collect loss values and contrast diagnostics (small synchronous downloads). */
  diagnostics?: boolean;
  /** Also measure each term's gradient norm (an extra backward on the anchors). */
  gradientShare?: boolean;
  /** Gradient checkpointing of the backbone (less memory, more time). */
  recompute?: boolean;
}

export interface StepResult {
  /** Mean total loss over the micro-batches. */
  loss: number;
  /** Diagnostics of each micro-batch (empty when not requested). */
  diagnostics: LossDiagnostics[];
}

/** The loss became NaN or Inf; thrown before the update, so the model keeps its last good weights. */
export class NonFiniteLossError extends Error {
  constructor(readonly iter: number, readonly loss: number, readonly lr: number) {
    super(
      `loss is ${loss} at iteration ${iter} (lr ${lr.toPrecision(4)}): training stopped before the update. ` +
        "Lower the learning rate, check the labels (deno task check-data), or resume from the last checkpoint.",
    );
    this.name = "NonFiniteLossError";
  }
}

/** Tensors from a host batch; the caller disposes them. */
export function batchTensors(b: MicroBatch): { x: tf.Tensor4D; y: tf.Tensor3D } {
  const [n, h, w] = b.shape;
  if (b.image.length !== n * h * w * 3) {
    throw new Error(`batch image has ${b.image.length} values, expected ${n}x${h}x${w}x3`);
  }
  if (b.label.length !== n * h * w) {
    throw new Error(`batch label has ${b.label.length} values, expected ${n}x${h}x${w}`);
  }
  return { x: tf.tensor4d(b.image, [n, h, w, 3]), y: tf.tensor3d(b.label, [n, h, w], "int32") };
}

/**
 * Runs the forward/backward of every micro-batch (loss scaled by 1/count so the update equals one
 * step on their union for the CE term), sums the gradients, then applies one optimizer update.
 * BN running statistics are committed after each micro-batch, as each forward saw only its own images.
 */
export function trainStep(micro: MicroBatch[], ctx: StepContext): StepResult {
  if (micro.length === 0) throw new Error("trainStep: no micro-batch");
  const scale = 1 / micro.length;
  let summed: Record<string, tf.Tensor> | null = null;
  let lossSum = 0;
  const diagnostics: LossDiagnostics[] = [];
  for (const mb of micro) {
    const { x, y } = batchTensors(mb);
    let diag: LossDiagnostics | null = null;
    const { value, grads } = ctx.model.variableGrads(() => {
      const out = ctx.model.forward(x, { training: true, rng: ctx.rng, recompute: ctx.recompute ?? false });
      const r = segmentationLoss(
        { logitsUp: out.logitsUp, logits4: out.logits4, embed: out.embed, labels: y },
        ctx.loss,
        {
          rng: ctx.rng,
          iter: ctx.iter,
          memory: ctx.memory,
          diagnostics: ctx.diagnostics ?? false,
          gradientShare: ctx.gradientShare ?? false,
        },
      );
      diag = r.diagnostics;
      return (scale === 1 ? r.total : tf.mul(r.total, scale)) as tf.Scalar;
    });
    x.dispose();
    y.dispose();
    ctx.model.commitBnUpdates();
    lossSum += value.dataSync()[0] / scale;
    value.dispose();
    if (diag) diagnostics.push(diag);
    if (summed === null) {
      summed = grads;
    } else {
      for (const [k, g] of Object.entries(grads)) {
        const s: tf.Tensor = summed[k];
        summed[k] = tf.add(s, g);
        s.dispose();
        g.dispose();
      }
    }
  }
  const loss = lossSum / micro.length;
  if (!Number.isFinite(loss)) {
    // stop before the update: the weights in memory stay those of the last good step
    for (const g of Object.values(summed!)) g.dispose();
    throw new NonFiniteLossError(ctx.iter + 1, loss, ctx.lr);
  }
  ctx.optimizer.step(ctx.model.trainableWeights(), summed!, ctx.lr);
  for (const g of Object.values(summed!)) g.dispose();
  return { loss, diagnostics };
}

/** Splits a host batch of N images into micro-batches of `size` images (for gradient accumulation). */
export function splitBatch(b: MicroBatch, size: number): MicroBatch[] {
  const [n, h, w] = b.shape;
  if (size <= 0 || n % size !== 0) {
    throw new Error(`cannot split a batch of ${n} into micro-batches of ${size}`);
  }
  const out: MicroBatch[] = [];
  for (let i = 0; i < n; i += size) {
    out.push({
      image: b.image.subarray(i * h * w * 3, (i + size) * h * w * 3),
      label: b.label.subarray(i * h * w, (i + size) * h * w),
      shape: [size, h, w],
    });
  }
  return out;
}
