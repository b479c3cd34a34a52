/**
 * Tensor operations the model needs with exact Paddle semantics and correct gradients on every backend
 * (bilinear resizing and its gradient: lib/backend/resize.ts).
 *
 * - `batchNormTrain`: batch-statistics BatchNorm with the standard closed-form backward (one pass, no tiled
 *   intermediates) that also hands out the batch statistics for the running-average update.
 * - `dropout2d`: whole-channel dropout whose mask comes from an injected `Rng`.
 * - `l2Normalize`: x / max(||x||_2, 1e-12) along channels, as `F.normalize` in Paddle and PyTorch.
 * - `recomputeInBackward`: gradient checkpointing (activations of a block are recomputed in the backward
 *   pass instead of being kept).
 *
 * All tensors are NHWC.
 */
import { tf } from "../backend/tf.ts";
import { FUSED_BN_TRAIN, hasFusedBatchNorm } from "../backend/native_fused.ts";
import { stepInput } from "../backend/graph/step_inputs.ts";
import type { EngineGradients } from "../backend/tape.ts";
import type { Rng } from "../util/rng.ts";

/** Receives the batch statistics of a training-mode BatchNorm (kept tensors; the receiver disposes). */
export type BatchStatsSink = (mean: tf.Tensor1D, variance: tf.Tensor1D) => void;

/**
 * Training-mode BatchNorm over N, H, W of `x: [N,H,W,C]`, normalising with the batch mean and the biased
 * batch variance (as Paddle does, both for normalising and for the running update). `onStats` gets kept
 * copies of (mean, variance), never part of the gradient.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
  onStats?: BatchStatsSink,
): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const m = n * h * w;
  if (hasFusedBatchNorm()) {
    // one native kernel each way (lib/backend/native_fused.ts); TF reports the Bessel-corrected variance
    const outs = tf.engine().runKernel(FUSED_BN_TRAIN, { x, scale: gamma, offset: beta }, {
      epsilon,
    }) as tf.Tensor[];
    if (onStats) {
      const variance = m > 1 ? tf.mul(outs[2], (m - 1) / m) : outs[2].clone();
      onStats(tf.keep(outs[1].clone()) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D);
    }
    tf.dispose(outs.slice(1));
    return outs[0] as tf.Tensor4D;
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const mean = tf.mean(xi, [0, 1, 2]);
    const centered = tf.sub(xi, mean);
    const variance = tf.mean(tf.square(centered), [0, 1, 2]);
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(centered, invStd);
    if (onStats) onStats(tf.keep(mean.clone()) as tf.Tensor1D, tf.keep(variance.clone()) as tf.Tensor1D);
    save([xhat, invStd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sxhat, sinvStd, sg] = saved;
        const dbeta = tf.sum(dy, [0, 1, 2]);
        const dgamma = tf.sum(tf.mul(dy, sxhat), [0, 1, 2]);
        // dx = gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat))
        const dx = tf.mul(
          tf.mul(sg, sinvStd),
          tf.sub(tf.sub(dy, tf.div(dbeta, m)), tf.mul(sxhat, tf.div(dgamma, m))),
        );
        return [dx, dgamma, dbeta];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}

/**
 * Dropout2D (Paddle `nn.Dropout2D`, PyTorch `nn.Dropout2d`): in training, each (image, channel) is zeroed
 * with probability p and the survivors are scaled by 1/(1-p). The mask is drawn on the host from `rng`
 * (N*C uniforms in image-major, channel-minor order), so a run is reproducible from its seed.
 */
export function dropout2d(x: tf.Tensor4D, p: number, rng: Rng): tf.Tensor4D {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  if (p === 0) return x;
  const [n, , , c] = x.shape;
  const draw = (r: Rng) => dropoutMask(r, n * c, p);
  // a graph-recorded step (lib/train/graph_step.ts) feeds a fresh mask, drawn the same way, on each run
  return tf.tidy(() => tf.mul(x, stepInput(tf.tensor4d(draw(rng), [n, 1, 1, c]), draw)));
}

/** `size` dropout multipliers: 0 with probability p, else 1 / (1 - p). */
export function dropoutMask(rng: Rng, size: number, p: number): Float32Array {
  const mask = new Float32Array(size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < p ? 0 : keep;
  return mask;
}

/** x / max(||x||_2, 1e-12) along the last (channel) axis. */
export function l2Normalize(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
    return tf.div(x, tf.maximum(norm, 1e-12));
  });
}

/** TF.js engine internals used by `recomputeInBackward` (tfjs-core 4.22). */
interface EngineInternals extends EngineGradients {
  state: { activeTape: unknown };
}

/**
 * Gradient checkpointing. `fn(xs, recomputing)` runs once without recording its intermediate tensors for
 * the backward pass; when the gradient is needed, it runs again under its own tape and the gradient is
 * backpropagated through that second run. Peak memory then holds only block inputs plus one block's
 * activations, for the price of one more forward of the block.
 *
 * `vars` must list every trainable variable `fn` reads. `fn` must be deterministic (no dropout) and, when
 * `recomputing` is true, must not repeat side effects (e.g. queue BN running-statistics updates twice).
 */
export function recomputeInBackward(
  fn: (xs: tf.Tensor4D[], recomputing: boolean) => tf.Tensor4D[],
  xs: tf.Tensor4D[],
  vars: tf.Variable[],
): tf.Tensor4D[] {
  let shapes: number[][] = [];
  const flatten = (outs: tf.Tensor4D[]) => tf.concat(outs.map((o) => tf.reshape(o, [-1])));
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const ins = args.slice(0, xs.length) as tf.Tensor4D[];
    const outs = fn(ins, false);
    shapes = outs.map((o) => o.shape);
    save(ins);
    return {
      value: flatten(outs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // A nested engine.gradients() would replace the outer backward pass's tape (tfjs-core keeps one
        // active tape and clears it when a gradient computation ends), so keep it and put it back.
        const engine = tf.engine() as unknown as EngineInternals;
        const outerTape = engine.state.activeTape;
        const targets: tf.Tensor[] = [...saved, ...vars];
        try {
          const { value, grads } = engine.gradients(
            () => flatten(fn(saved as tf.Tensor4D[], true)),
            targets,
            dy,
            true,
          );
          value.dispose();
          return grads.map((g, i) => g ?? tf.zerosLike(targets[i]));
        } finally {
          engine.state.activeTape = outerTape;
        }
      },
    };
  });
  const y = op(...xs, ...vars);
  const toShape = (t: tf.Tensor, i: number) => tf.reshape(t, shapes[i] as [number, number, number, number]);
  // (a one-way split is avoided: tfjs' SplitV gradient mishandles a single output)
  if (shapes.length === 1) {
    const out = toShape(y, 0) as tf.Tensor4D;
    y.dispose();
    return [out];
  }
  const parts = tf.split(y, shapes.map((s) => s.reduce((a, b) => a * b, 1)));
  const outs = parts.map((p, i) => toShape(p, i) as tf.Tensor4D);
  tf.dispose([y, ...parts]);
  return outs;
}
