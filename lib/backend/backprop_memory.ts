/**
 * Frees memory during TF.js' backward pass as it goes, the way PyTorch's autograd does.
 *
 * tfjs-core 4.22's `engine.gradients` keeps, until the whole backward pass has finished, (a) the gradient of
 * every intermediate tensor and (b) every tensor that a forward op saved for its gradient. For a segmentation
 * network both are about as large as all the activations together, so the peak is roughly three times the
 * activations (measured: HRNet-W48 at 512x256, 1.7 GB saved at the start of the backward, 5.9 GB peak).
 * Each of these is needed by exactly one tape node, so once that node's gradient has been computed they can go:
 *
 * - the gradients of the node's outputs (never the caller's seed `dy`, nor a tensor whose gradient is returned,
 *   nor one that a gradient function passed through unchanged as an input gradient);
 * - the tensors the node saved (its own kept clones: the data lives on while anything else references it).
 *
 * Only outermost gradient computations are changed (`gradientDepth` 0, i.e. not while recording a forward
 * pass for higher-order gradients). Nested calls made by gradient checkpointing (lib/models/ops.ts) run on
 * their own tape and are changed the same way. Results are identical; only the lifetime of tensors changes.
 */
import { tf } from "./tf.ts";

/** The tfjs-core engine internals this module relies on (4.22). */
interface TapeNodeLike {
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineLike {
  state: { gradientDepth: number; activeTape: TapeNodeLike[] | null };
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: tf.Tensor[] };
}

let installed = false;
let enabled = true;

/** Turns the early freeing on or off once installed (tests compare both); returns the previous setting. */
export function setBackpropMemoryRelease(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}
/** Nesting of our wrapper (gradient checkpointing runs a gradient computation inside a backward pass). */
let active = 0;
/** How often each tensor (by id) was returned as an input gradient during the current outermost pass. */
const returned = new Map<number, number>();

/** Installs the early freeing on the engine (idempotent). Returns false when the engine looks different. */
export function installBackpropMemoryRelease(): boolean {
  if (installed) return true;
  const engine = tf.engine() as unknown as EngineLike;
  if (typeof engine.gradients !== "function" || !("gradientDepth" in engine.state)) return false;
  const original = engine.gradients.bind(engine);
  engine.gradients = (f, xs, dy, allowNoGradients) => {
    if (!enabled || engine.state.gradientDepth !== 0) return original(f, xs, dy, allowNoGradients);
    const keepIds = new Set(xs.map((x) => x.id));
    if (dy) keepIds.add(dy.id);
    const wrapTape = () => {
      const y = f();
      keepIds.add(y.id);
      for (const node of engine.state.activeTape ?? []) wrapNode(node, keepIds);
      return y;
    };
    if (active === 0) returned.clear();
    active++;
    try {
      return original(wrapTape, xs, dy, allowNoGradients);
    } finally {
      active--;
      pending = null;
      if (active === 0) returned.clear();
    }
  };
  installed = true;
  return true;
}

/**
 * Makes the node free its output gradients and saved tensors once all of its input gradients were taken.
 * tfjs calls `node.gradient(dys)` once, then each returned function once per input that needs a gradient
 * (a subset of the node's inputs, not known here); so freeing happens when the next node's gradient is
 * requested, or at the end of the pass (where tfjs' own clean-up takes over).
 */
function wrapNode(node: TapeNodeLike, keepIds: Set<number>): void {
  const grad = node.gradient;
  if (!grad || (grad as { __pcWrapped?: boolean }).__pcWrapped) return;
  const wrapped = (dys: (tf.Tensor | null)[]) => {
    releasePending();
    const fns = grad(dys);
    const produced = new Set<number>();
    const out: Record<string, () => tf.Tensor> = {};
    for (const [name, fn] of Object.entries(fns)) {
      out[name] = () => {
        const t = fn();
        produced.add(t.id);
        returned.set(t.id, (returned.get(t.id) ?? 0) + 1);
        return t;
      };
    }
    pending = { node, dys, produced, keepIds };
    return out;
  };
  (wrapped as { __pcWrapped?: boolean }).__pcWrapped = true;
  node.gradient = wrapped;
}

let pending: {
  node: TapeNodeLike;
  dys: (tf.Tensor | null)[];
  produced: Set<number>;
  keepIds: Set<number>;
} | null = null;

/**
 * Frees the previous node's output gradients and saved tensors. A gradient is freed only when nothing else
 * can hold the same tensor object: not passed on by this node, and returned by at most one gradient
 * function in this pass (an object returned for two inputs may sit in two places of tfjs' gradient map).
 */
function releasePending(): void {
  const p = pending;
  pending = null;
  if (!p) return;
  p.node.outputs.forEach((o, i) => {
    const g = p.dys[i];
    if (!g || g.isDisposed || p.keepIds.has(o.id) || p.keepIds.has(g.id) || p.produced.has(g.id)) return;
    if ((returned.get(g.id) ?? 0) > 1) return;
    g.dispose();
  });
  for (const s of p.node.saved ?? []) s.dispose();
}
