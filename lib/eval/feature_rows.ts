/**
 * Host feature rows for the feature-space measures and projections (feature_space.ts): shape checks,
 * unit-length rows, and the class-balanced pixel sample.
 *
 * Everything works on host arrays the caller already extracted from the model:
 *   embeddings: Float32Array [N, D] row-major (one row per pixel, e.g. the projection head's output at
 *               stride 4, D = 720 / 256); labels: ArrayLike<number> [N] trainIds at the same pixels
 *               (`ignoreIndex`, 255, = unlabelled). Aligning labels to the embedding grid (nearest
 *               downsampling) is features.ts' job.
 * Randomness comes only from an injected `Rng` (lib/util/rng.ts), so a seed reproduces a sample.
 */
import type { Rng } from "../util/rng.ts";

/** Throws unless `x` holds n×d values (n ≥ 0, d ≥ 1 integers); `name` says whose. */
export function checkMatrix(name: string, x: ArrayLike<number>, n: number, d: number): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(d) || d < 1) {
    throw new Error(`${name}: bad shape [${n}, ${d}]`);
  }
  if (x.length !== n * d) throw new Error(`${name}: expected ${n}×${d} = ${n * d} values, got ${x.length}`);
}

// ---------------------------------------------------------------------------------------------------
// Sampling

export interface BalancedSampleOptions {
  /** Pixels to keep per class (all of a class that has fewer). */
  perClass: number;
  rng: Rng;
  ignoreIndex?: number;
}

export interface PixelSample {
  /** Row indices into the input, grouped by class (ascending), ascending within a class. */
  indices: Int32Array;
  labels: Int32Array;
  /** The sampled rows, [indices.length, dim] (empty when no embeddings were given). */
  embeddings: Float32Array;
  /** Pixels available per class before sampling (index = class id). */
  available: number[];
}

/**
 * Class-balanced pixel sampling: up to `perClass` pixels of every class present, chosen uniformly
 * without replacement with the Rng (partial Fisher-Yates per class). Ignored pixels never count.
 */
export function sampleBalancedPixels(
  labels: ArrayLike<number>,
  embeddings: Float32Array | null,
  dim: number,
  opts: BalancedSampleOptions,
): PixelSample {
  const n = labels.length;
  if (embeddings) checkMatrix("sampleBalancedPixels: embeddings", embeddings, n, dim);
  if (!(Number.isInteger(opts.perClass) && opts.perClass >= 1)) {
    throw new Error(`sampleBalancedPixels: perClass must be a positive integer, got ${opts.perClass}`);
  }
  const ign = opts.ignoreIndex ?? 255;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (c === ign) continue;
    if (!Number.isInteger(c) || c < 0) {
      throw new Error(`sampleBalancedPixels: label ${c} at ${i} is not a class id`);
    }
    let list = byClass.get(c);
    if (!list) byClass.set(c, list = []);
    list.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const available: number[] = new Array(classes.length ? classes[classes.length - 1] + 1 : 0).fill(0);
  const picked: number[] = [];
  const pickedLabels: number[] = [];
  for (const c of classes) {
    const list = byClass.get(c)!;
    available[c] = list.length;
    const k = Math.min(opts.perClass, list.length);
    for (let i = 0; i < k; i++) {
      const j = i + opts.rng.int(list.length - i);
      const t = list[i];
      list[i] = list[j];
      list[j] = t;
    }
    const chosen = list.slice(0, k).sort((a, b) => a - b);
    for (const idx of chosen) {
      picked.push(idx);
      pickedLabels.push(c);
    }
  }
  const indices = Int32Array.from(picked);
  const out = new Float32Array(embeddings ? indices.length * dim : 0);
  if (embeddings) {
    for (let r = 0; r < indices.length; r++) {
      out.set(embeddings.subarray(indices[r] * dim, indices[r] * dim + dim), r * dim);
    }
  }
  return { indices, labels: Int32Array.from(pickedLabels), embeddings: out, available };
}

/** Rows scaled to unit L2 norm (zero rows stay zero). */
export function l2NormalizeRows(x: Float32Array, n: number, d: number): Float32Array {
  checkMatrix("l2NormalizeRows", x, n, d);
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j] * x[i * d + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j] * inv;
  }
  return out;
}
