/**
 * Framework-neutral tensors read from checkpoint files: dtype, shape and raw little-endian C-order bytes;
 * the error class of every weight reader and the memory budget they reserve allocations from.
 */
import { formatBytes, raiseHint } from "../../util/limits.ts";

/** Any problem with a weight file; the message starts with the file's name and says what is wrong. */
export class WeightFileError extends Error {
  override name = "WeightFileError";
}

/**
 * The memory budget of reading one weight file (PC_MAX_WEIGHT_BYTES): decompressed bytes and decoded
 * tensors are reserved here BEFORE they are allocated, so a file cannot make us allocate more than the
 * budget whatever sizes, shapes or strides it declares.
 */
export class ReadBudget {
  used = 0;
  constructor(readonly source: string, readonly maxBytes: number) {}

  reserve(n: number, what: string): void {
    if (!(n >= 0 && this.used + n <= this.maxBytes)) {
      throw new WeightFileError(
        `${this.source}: ${what} needs ${formatBytes(n)}, beyond the memory budget of ` +
          `${formatBytes(this.maxBytes)} for one weight file` +
          (this.used ? ` (${formatBytes(this.used)} already used)` : "") + `; ${raiseHint("weightMaxBytes")}`,
      );
    }
    this.used += n;
  }
}

export type DType =
  | "float16"
  | "bfloat16"
  | "float32"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool";

export const DTYPE_SIZE: Record<DType, number> = {
  float16: 2,
  bfloat16: 2,
  float32: 4,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
};

export interface RawTensor {
  dtype: DType;
  shape: number[];
  /** Little-endian, C (row-major) order, exactly numel * DTYPE_SIZE[dtype] bytes. */
  data: Uint8Array;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A value from a file for an error message: short, and safe for bigints, bytes and cycles. */
export function showValue(x: unknown, max = 120): string {
  try {
    const s = JSON.stringify(
      x,
      (_k, v) =>
        typeof v === "bigint"
          ? `${v}`
          : v instanceof Uint8Array
          ? `<${v.length} bytes>`
          : v instanceof Map
          ? "<dict>"
          : v,
    );
    return (s ?? String(x)).slice(0, max);
  } catch {
    return "<unprintable value>";
  }
}

/** Elements of `shape`, after checking every dimension is a non-negative integer and the product is exact. */
export function checkedNumel(shape: unknown, what: string): number {
  if (!Array.isArray(shape) || shape.length > 64) {
    throw new WeightFileError(`${what}: bad shape ${showValue(shape)}`);
  }
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new WeightFileError(`${what}: bad dimension ${String(d)} in shape [${shape.slice(0, 8)}]`);
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new WeightFileError(`${what}: shape [${shape}] has too many elements`);
    }
  }
  return n;
}

export function checkRawTensor(t: RawTensor, what: string): RawTensor {
  const expected = checkedNumel(t.shape, what) * DTYPE_SIZE[t.dtype];
  if (t.data.byteLength !== expected) {
    throw new WeightFileError(
      `${what}: ${t.data.byteLength} bytes of data for ${t.dtype}[${t.shape}] (${expected} expected)`,
    );
  }
  return t;
}

function halfToFloat(h: number): number {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Convert to float32 values (float64 and integers are rounded to the nearest float32). */
export function toFloat32(t: RawTensor): Float32Array {
  const n = shapeSize(t.shape);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case "float32":
      if (t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, n).slice();
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case "float64":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case "float16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    case "bfloat16": {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case "int8":
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return out;
    case "uint8":
    case "bool":
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      return out;
    case "int16":
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    case "uint16":
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    case "int32":
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    case "uint32":
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
      return out;
    case "int64":
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    case "uint64":
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigUint64(8 * i, true));
      return out;
  }
}

/** Reverse the byte order of every element (big-endian -> little-endian), returning a new buffer. */
export function byteSwap(data: Uint8Array, itemSize: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += itemSize) {
    for (let k = 0; k < itemSize; k++) out[i + k] = data[i + itemSize - 1 - k];
  }
  return out;
}

/**
 * Copy a strided view (element strides, element offset) of `storage` into a C-contiguous buffer.
 * Used for Fortran-order numpy arrays and PyTorch tensors with non-default strides. Shape, strides and
 * offset are checked against the storage BEFORE the output is allocated: a view must lie inside its
 * storage and may not hold more elements than the storage span it reads (stride 0 and other
 * overlapping views would let a few bytes of file declare gigabytes of tensor); the output is reserved
 * from `budget` when given.
 */
export function gatherStrided(
  storage: Uint8Array,
  itemSize: number,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  what: string,
  budget?: ReadBudget,
): Uint8Array {
  const n = checkedNumel(shape, what);
  if (strides.length !== shape.length || !strides.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw new WeightFileError(`${what}: bad strides [${strides.slice(0, 8)}] for shape [${shape}]`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new WeightFileError(`${what}: bad storage offset ${offset}`);
  }
  if (n === 0) return new Uint8Array(0);
  let maxIndex = offset;
  for (let d = 0; d < shape.length; d++) maxIndex += (shape[d] - 1) * strides[d];
  if (!Number.isSafeInteger(maxIndex) || (maxIndex + 1) * itemSize > storage.length) {
    throw new WeightFileError(
      `${what}: view [${shape}] / strides [${strides}] + offset ${offset} exceeds its storage ` +
        `(${storage.length} bytes)`,
    );
  }
  if (n > maxIndex - offset + 1) {
    const zero = shape.findIndex((d, i) => d > 1 && strides[i] === 0);
    throw new WeightFileError(
      `${what}: view [${shape}] / strides [${strides}] holds ${n} elements but reads only ` +
        `${maxIndex - offset + 1} of its storage (` +
        (zero >= 0 ? `stride 0 on dimension ${zero} of size ${shape[zero]}` : "overlapping elements") +
        "): not a stored weight",
    );
  }
  budget?.reserve(n * itemSize, `tensor ${what.replace(/^.*?: /, "")} [${shape}]`);
  const out = new Uint8Array(n * itemSize);
  let contiguous = true;
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== s) contiguous = false;
    s *= shape[d];
  }
  if (contiguous) {
    out.set(storage.subarray(offset * itemSize, (offset + n) * itemSize));
    return out;
  }
  const idx = new Array(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = offset;
    for (let d = 0; d < shape.length; d++) src += idx[d] * strides[d];
    out.set(storage.subarray(src * itemSize, (src + 1) * itemSize), i * itemSize);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
