/**
 * Runs the same computation on two backends and compares the results: the tool behind the backend tests.
 * Inputs are plain arrays, so each backend builds its own tensors from identical data.
 */
import { tf } from "../../lib/backend/tf.ts";
import type { BackendName } from "../../lib/backend/mod.ts";
import { AssertionError } from "../_helpers/assert.ts";

export interface Arr {
  shape: number[];
  values: number[] | Float32Array | Int32Array;
  dtype?: "float32" | "int32" | "bool";
}

/** Deterministic test data (no Math.random): a smooth, sign-changing pattern in [-scale, scale]. */
export function pattern(shape: number[], seed = 1, scale = 1): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = scale * Math.sin(0.7 * i + seed * 1.3) * Math.cos(0.13 * i * seed + 0.5);
  return { shape, values: v };
}

export function ints(shape: number[], max: number, seed = 1): Arr {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) v[i] = (i * 7 + seed * 13 + ((i * i) >> 3)) % max;
  return { shape, values: v, dtype: "int32" };
}

/** Runs `f` on `backend`, restoring the previously active backend; returns every output's values. */
export async function runOn(
  backend: BackendName,
  inputs: Arr[],
  f: (...xs: tf.Tensor[]) => tf.Tensor[],
): Promise<{ shape: number[]; values: Float32Array }[]> {
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  try {
    const before = tf.memory().numTensors;
    const outs = tf.tidy(() => {
      const xs = inputs.map((a) => tf.tensor(a.values, a.shape, a.dtype ?? "float32"));
      return f(...xs);
    });
    const res = [];
    for (const o of outs) res.push({ shape: o.shape, values: Float32Array.from(await o.data()) });
    tf.dispose(outs);
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) throw new AssertionError(`${backend}: ${leaked} tensors leaked`);
    return res;
  } finally {
    if (prev) await tf.setBackend(prev);
  }
}

/** float32 -> the nearest bfloat16 (ties to even), as float32 (NaN-free data). */
export function roundBf16(v: Float32Array): Float32Array {
  const out = new Float32Array(v);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return out;
}

/** max|a-b| / max(|b|, floor): error relative to the reference tensor's magnitude. */
export function relError(a: Float32Array, b: Float32Array, floor = 1e-30): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= d)) d = e; // NaN propagates as a failure
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, floor);
}

/** Asserts each output of `got` matches `ref` in shape and to `tol` (relative to the output's max |value|). */
export function assertSameOutputs(
  got: { shape: number[]; values: Float32Array }[],
  ref: { shape: number[]; values: Float32Array }[],
  tol: number,
  what: string,
): number {
  if (got.length !== ref.length) throw new AssertionError(`${what}: ${got.length} outputs vs ${ref.length}`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (JSON.stringify(got[i].shape) !== JSON.stringify(ref[i].shape)) {
      throw new AssertionError(`${what}: output ${i} shape [${got[i].shape}] vs [${ref[i].shape}]`);
    }
    const e = relError(got[i].values, ref[i].values);
    if (!(e <= tol)) {
      throw new AssertionError(
        `${what}: output ${i} differs from the reference by ${e.toExponential(2)} > ${tol}`,
      );
    }
    worst = Math.max(worst, e);
  }
  return worst;
}
