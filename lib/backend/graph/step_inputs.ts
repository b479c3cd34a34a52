/**
 * Values a model draws afresh on every step from the trainer's generator (dropout masks). When a step is
 * recorded as a graph (lib/train/graph_step.ts) such a tensor must become a graph input, and the replayed step
 * must draw the same values from the same generator in the same order: so the code that makes one declares it
 * here with the function that draws it. Outside a recording this does nothing.
 */
import type { tf } from "../tf.ts";
import type { Rng } from "../../util/rng.ts";

/** Draws a step input's values (float32, in the tensor's layout) from the generator. */
export type DrawStepInput = (rng: Rng) => Float32Array;

type Sink = (t: tf.Tensor, draw: DrawStepInput) => void;
let sink: Sink | null = null;

/** Declares `t` (just made from JS values, not used yet) a per-step input; returns it. */
export function stepInput<T extends tf.Tensor>(t: T, draw: DrawStepInput): T {
  sink?.(t, draw);
  return t;
}

/** Runs `f` with `s` receiving the step inputs it declares (lib/train/graph_step.ts). */
export function collectStepInputs<T>(s: Sink, f: () => T): T {
  if (sink) throw new Error("backend/graph: step inputs are already being collected");
  sink = s;
  try {
    return f();
  } finally {
    sink = null;
  }
}
