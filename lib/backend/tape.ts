/**
 * Gradients of a loss whose computation awaits device read-backs (the anchor sampler needs the predictions
 * on the host), without running the forward pass twice.
 *
 * `tf.variableGrads(f)` records `f` on the engine's tape synchronously: `f` cannot await, and `tf.tidy` cannot
 * span an await either. A `Tape` records synchronous pieces instead, each like `tf.tidy` (intermediates freed,
 * returned tensors kept), with the tape switched off in between, where the caller may `await tensor.data()`;
 * the gradient is then taken over all pieces at once by handing the recorded nodes to the engine's own
 * `gradients` (so `tf.variableGrads`, `tf.grad`, ./backprop_memory.ts and the checkpointing of
 * lib/models/ops.ts work unchanged):
 *
 *   const tape = new Tape();
 *   const out = tape.record(() => model.forward(x));          // on the tape
 *   const preds = await tf.argMax(out.logits4, -1).data();     // off the tape: await is fine
 *   const loss = tape.record(() => lossOf(out, preds));        // on the tape
 *   const { value, grads } = tf.variableGrads(() => tape.replay(loss), vars);
 *
 * Nothing else may run tensor ops while a piece records (pieces are synchronous, so nothing can). Between
 * pieces the tape is off, so ops there are not differentiated (as for a read-back they should not be).
 * A tape that is not replayed must be `discard`ed: its nodes hold the tensors saved for the backward pass.
 *
 * Relies on tfjs-core 4.22 engine internals (`state.activeTape`, `state.gradientDepth`), as
 * ./backprop_memory.ts does; `Tape` checks them on first use.
 */
import { tf } from "./tf.ts";
import { type Precision, withComputePrecision } from "./native_bf16.ts";

/** The engine's `gradients` (tfjs-core 4.22), which tf.grads wraps without its `allowNoGradients`. */
export interface EngineGradients {
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
}

/**
 * The value of `f` and d f / d x for each of `xs`, undefined for an x that `f` does not depend on (where
 * tf.grads would throw): for a loss over several model outputs, some of which a configuration leaves unused.
 */
export function gradientsAllowingUnused(
  f: () => tf.Tensor,
  xs: tf.Tensor[],
): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] } {
  return (tf.engine() as unknown as EngineGradients).gradients(f, xs, undefined, true);
}

interface TapeNode {
  saved?: tf.Tensor[];
}

interface EngineState {
  activeTape: TapeNode[] | null;
  gradientDepth: number;
}

function engineState(): EngineState {
  const state = (tf.engine() as unknown as { state: EngineState }).state;
  if (typeof state?.gradientDepth !== "number") {
    throw new Error("backend/tape: this tfjs-core's engine has no gradientDepth (written for 4.22)");
  }
  return state;
}

export class Tape {
  #nodes: TapeNode[] = [];
  #closed = false;
  /** Compute precision of the convolutions and matmuls its pieces record (./native_bf16.ts). */
  readonly precision: Precision;

  constructor(opts: { precision?: Precision } = {}) {
    this.precision = opts.precision ?? "fp32";
  }

  /** Number of recorded operations (tests). */
  get size(): number {
    return this.#nodes.length;
  }

  /**
   * Runs `f` synchronously with the tape on, inside a `tf.tidy`: its intermediate tensors are freed, the
   * tensors it returns are kept (the caller disposes them). Must not be nested in a gradient computation.
   */
  record<T extends tf.TensorContainer>(f: () => T): T {
    if (this.#closed) throw new Error("backend/tape: record() after replay() or discard()");
    const state = engineState();
    if (state.gradientDepth !== 0) {
      throw new Error("backend/tape: record() inside another gradient computation is not supported");
    }
    state.activeTape = [];
    state.gradientDepth = 1;
    try {
      return withComputePrecision(this.precision, () => tf.tidy(f));
    } finally {
      state.gradientDepth = 0;
      const nodes = state.activeTape ?? [];
      state.activeTape = null;
      for (const n of nodes) this.#nodes.push(n);
    }
  }

  /**
   * To be called as (or inside) the function given to `tf.variableGrads` / `tf.grad`: puts the recorded
   * operations on the engine's fresh tape and returns `y`, a tensor produced by a `record` piece. The
   * engine then backpropagates through them and frees their saved tensors, as for a synchronous `f`.
   */
  replay<T extends tf.Tensor>(y: T): T {
    if (this.#closed) throw new Error("backend/tape: replay() twice, or after discard()");
    const state = engineState();
    if (state.gradientDepth !== 1 || !state.activeTape) {
      throw new Error("backend/tape: replay() must be called inside tf.variableGrads / tf.grad");
    }
    for (const n of this.#nodes) state.activeTape.push(n);
    this.#nodes = [];
    this.#closed = true;
    return y;
  }

  /** Frees the tensors the recorded operations saved for a backward pass that will not happen. */
  discard(): void {
    if (this.#closed) return;
    for (const n of this.#nodes) for (const t of n.saved ?? []) t.dispose();
    this.#nodes = [];
    this.#closed = true;
  }
}
