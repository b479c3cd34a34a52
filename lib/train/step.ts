/**
 * One optimizer step of the pixel-contrast model: forward, loss, backward and the momentum-SGD update,
 * with optional gradient accumulation over micro-batches. Shared by the trainer and the benchmarks so
 * that what is measured is what trains.
 *
 * Shapes: images [N,H,W,3] float32 (normalised, NHWC); labels [N,H,W] int32 (ignore index included).
 *
 * Asynchronous, with no synchronous read-back on any backend (TF.js' webgpu backend cannot read synchronously
 * under Deno): the forward and the loss are recorded on a `Tape` (lib/backend/tape.ts) in pieces, between
 * which the anchor sampler awaits the predictions (once per micro-batch, only while the contrast term is on);
 * the labels never go back, the sampler uses the host batch. The losses and the diagnostics' numbers of all
 * micro-batches are read once per step, after the backward passes were queued and before the update (which
 * a non-finite loss must prevent). `tf.tidy` cannot span an await, so tensors are disposed explicitly; the
 * tensor count is the same after every step (tests/train/step_test.ts).
 */
import { tf } from "../backend/tf.ts";
import { gradientsAllowingUnused, Tape } from "../backend/tape.ts";
import { type Precision, withComputePrecision } from "../backend/native_bf16.ts";
import type { SegModel, SegOutputs } from "../models/mod.ts";
import {
  type LossDiagnostics,
  type LossOptions,
  type MemoryBank,
  type SegLossResult,
  segmentationLoss,
} from "../losses/mod.ts";
import type { Rng } from "../util/rng.ts";
import type { MomentumSGD } from "./optimizer.ts";
import { type GraphSteps, OUTPUT_KEYS } from "./graph_step.ts";

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
  /** Collect loss values and contrast diagnostics (read with the loss, once per step). */
  diagnostics?: boolean;
  /** Also the contrast term's similarity statistics (default: as `diagnostics`). */
  statistics?: boolean;
  /** Also measure each term's gradient norm (an extra backward on the anchors). */
  gradientShare?: boolean;
  /** Gradient checkpointing of the backbone (less memory, more time). */
  recompute?: boolean;
  /**
   * Compute precision of convolutions and matmuls in the forward and backward pass (default fp32); bf16 needs
   * the native backend (see `resolvePrecision`). Weights, gradients, BN, loss and the update stay fp32.
   */
  precision?: Precision;
  /**
   * Run the model's forward and backward as recorded TensorFlow graphs (native backend; ./graph_step.ts); the
   * loss stays on the host side as in eager. Its `precision` is the graph's.
   */
  graph?: GraphSteps | null;
}

export interface StepResult {
  /** Mean total loss over the micro-batches. */
  loss: number;
  /** Diagnostics of each micro-batch (their numbers null when not requested). */
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
  const [n, h, w] = checkMicroBatch(b);
  return { x: tf.tensor4d(b.image, [n, h, w, 3]), y: tf.tensor3d(b.label, [n, h, w], "int32") };
}

/** The batch's [n, H, W], once its image and label sizes are checked against it. */
function checkMicroBatch(b: MicroBatch): [number, number, number] {
  const [n, h, w] = b.shape;
  if (b.image.length !== n * h * w * 3) {
    throw new Error(`batch image has ${b.image.length} values, expected ${n}x${h}x${w}x3`);
  }
  if (b.label.length !== n * h * w) {
    throw new Error(`batch label has ${b.label.length} values, expected ${n}x${h}x${w}`);
  }
  return [n, h, w];
}

/**
 * Runs the forward/backward of every micro-batch (loss scaled by 1/count so the update equals one
 * step on their union for the CE term), sums the gradients, then applies one optimizer update.
 * BN running statistics are committed after each micro-batch, as each forward saw only its own images.
 */
export async function trainStep(micro: MicroBatch[], ctx: StepContext): Promise<StepResult> {
  const { loss, diagnostics, grads } = await stepGradients(micro, ctx);
  try {
    ctx.optimizer.step(ctx.model.trainableWeights(), grads, ctx.lr);
  } finally {
    for (const g of Object.values(grads)) g.dispose();
  }
  return { loss, diagnostics };
}

/**
 * `trainStep` without the update: the summed gradients by parameter name (the caller disposes them), the
 * mean loss and the diagnostics. BN running statistics are committed. Throws `NonFiniteLossError` (holding
 * nothing) when the loss is not finite.
 */
export async function stepGradients(
  micro: MicroBatch[],
  ctx: StepContext,
): Promise<StepResult & { grads: Record<string, tf.Tensor> }> {
  if (micro.length === 0) throw new Error("trainStep: no micro-batch");
  const scale = 1 / micro.length;
  let summed: Record<string, tf.Tensor> | null = null;
  const values: tf.Scalar[] = [];
  const pending: SegLossResult[] = [];
  let ok = false;
  try {
    for (const mb of micro) {
      const { value, grads, loss } = ctx.graph
        ? await microBatchGradsGraph(mb, ctx, scale, ctx.graph)
        : await microBatchGrads(mb, ctx, scale);
      ctx.model.commitBnUpdates();
      values.push(value);
      pending.push(loss);
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
    // One read per step: every micro-batch's loss and diagnostic values.
    const all = tf.tidy(() =>
      tf.concat([
        ...values.map((v) => tf.reshape(v, [1])),
        ...pending.flatMap((r) => (r.values ? [r.values] : [])),
      ])
    );
    let host: Float32Array;
    try {
      host = (await all.data()) as Float32Array;
    } finally {
      all.dispose();
    }
    let lossSum = 0;
    for (let i = 0; i < values.length; i++) lossSum += host[i] / scale;
    const diagnostics: LossDiagnostics[] = [];
    let off = values.length;
    for (const r of pending) {
      const n = r.values?.size ?? 0;
      diagnostics.push(r.diagnose(n ? host.subarray(off, off + n) : null));
      off += n;
    }
    const loss = lossSum / micro.length;
    // stop before the update: the weights in memory stay those of the last good step
    if (!Number.isFinite(loss)) throw new NonFiniteLossError(ctx.iter + 1, loss, ctx.lr);
    ok = true;
    return { loss, diagnostics, grads: summed! };
  } finally {
    if (!ok) {
      for (const g of Object.values(summed ?? {})) g.dispose();
    }
    tf.dispose(values);
    for (const r of pending) r.values?.dispose();
  }
}

/** The loss of one micro-batch's outputs, its differentiable pieces recorded on `tape`. */
function microBatchLoss(
  out: SegOutputs,
  labels: tf.Tensor3D,
  mb: MicroBatch,
  ctx: StepContext,
  tape: Tape,
): Promise<SegLossResult> {
  return segmentationLoss(
    { logitsUp: out.logitsUp, logits4: out.logits4, embed: out.embed, labels },
    ctx.loss,
    {
      rng: ctx.rng,
      iter: ctx.iter,
      memory: ctx.memory,
      diagnostics: ctx.diagnostics ?? false,
      statistics: ctx.statistics ?? ctx.diagnostics ?? false,
      gradientShare: ctx.gradientShare ?? false,
      tape,
      labelsHost: mb.label,
    },
  );
}

/**
 * Forward, loss and backward of one micro-batch. The forward and the loss are recorded on a tape in
 * pieces; the loss awaits the sampler's read-back in between. Returns the (scaled) loss, the gradients by
 * parameter name and the loss result whose `values` the caller reads and disposes.
 */
async function microBatchGrads(
  mb: MicroBatch,
  ctx: StepContext,
  scale: number,
): Promise<{ value: tf.Scalar; grads: Record<string, tf.Tensor>; loss: SegLossResult }> {
  const { x, y } = batchTensors(mb);
  // every piece recorded on the tape (the forward, the loss's differentiable parts) and the backward run in
  // the step's precision; the read-backs in between do not need it
  const precision = ctx.precision ?? "fp32";
  const tape = new Tape({ precision });
  let out: SegOutputs | null = null;
  let r: SegLossResult | null = null;
  let total: tf.Scalar | null = null, scaled: tf.Scalar | null = null, value: tf.Scalar | null = null;
  try {
    out = tape.record(() =>
      ctx.model.forward(x, {
        training: true,
        rng: ctx.rng,
        recompute: ctx.recompute ?? false,
      }) as unknown as tf.TensorContainer
    ) as unknown as SegOutputs;
    r = await microBatchLoss(out, y, mb, ctx, tape);
    const t = total = r.total;
    if (scale !== 1) scaled = tape.record(() => tf.mul(t, scale) as tf.Scalar);
    const g = withComputePrecision(precision, () => ctx.model.variableGrads(() => tape.replay(scaled ?? t)));
    value = g.value;
    const loss = r;
    r = null; // the caller owns its values now
    return { value, grads: g.grads, loss };
  } catch (e) {
    r?.values?.dispose();
    throw e;
  } finally {
    tape.discard(); // no-op once replayed
    x.dispose();
    y.dispose();
    if (out) tf.dispose(Object.values(out));
    for (const t of [total, scaled]) if (t && t !== value) t.dispose();
  }
}

/**
 * `microBatchGrads` with the model's forward and backward run as a recorded graph (./graph_step.ts): the loss is
 * recorded on a tape over the graph's fetched outputs, and its gradient with respect to them goes back into
 * the graph's backward pass.
 */
async function microBatchGradsGraph(
  mb: MicroBatch,
  ctx: StepContext,
  scale: number,
  graph: GraphSteps,
): Promise<{ value: tf.Scalar; grads: Record<string, tf.Tensor>; loss: SegLossResult }> {
  const [n, h, w] = checkMicroBatch(mb);
  const y = tf.tensor3d(mb.label, [n, h, w], "int32");
  const precision = ctx.precision ?? "fp32";
  let r: SegLossResult | null = null;
  let value: tf.Scalar | null = null;
  try {
    const grads = await graph.gradients({ data: mb.image, shape: [n, h, w, 3] }, ctx.rng, async (out) => {
      const tape = new Tape({ precision });
      let total: tf.Scalar | null = null, scaled: tf.Scalar | null = null;
      try {
        r = await microBatchLoss(out, y, mb, ctx, tape);
        const t = total = r.total;
        if (scale !== 1) scaled = tape.record(() => tf.mul(t, scale) as tf.Scalar);
        const keys = OUTPUT_KEYS.filter((k) => out[k]);
        const g = withComputePrecision(
          precision,
          () => gradientsAllowingUnused(() => tape.replay(scaled ?? t), keys.map((k) => out[k]!)),
        );
        value = g.value as tf.Scalar;
        const dOutputs: Partial<Record<(typeof keys)[number], tf.Tensor>> = {};
        keys.forEach((k, i) => {
          if (g.grads[i]) dOutputs[k] = g.grads[i];
        });
        return { dOutputs };
      } finally {
        tape.discard();
        for (const x of [total, scaled]) if (x && x !== value) x.dispose();
      }
    });
    const loss = r!;
    r = null;
    return { value: value!, grads, loss };
  } catch (e) {
    (r as SegLossResult | null)?.values?.dispose();
    (value as tf.Scalar | null)?.dispose();
    throw e;
  } finally {
    y.dispose();
  }
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
