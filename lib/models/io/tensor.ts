/**
 * Framework-neutral tensors read from checkpoint files: dtype, shape and raw little-endian C-order bytes.
 */

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

export function checkRawTensor(t: RawTensor, what: string): RawTensor {
  const expected = shapeSize(t.shape) * DTYPE_SIZE[t.dtype];
  if (t.data.byteLength !== expected) {
    throw new Error(
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
 * Used for Fortran-order numpy arrays and PyTorch tensors with non-default strides.
 */
export function gatherStrided(
  storage: Uint8Array,
  itemSize: number,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  what: string,
): Uint8Array {
  const n = shapeSize(shape);
  const out = new Uint8Array(n * itemSize);
  if (n === 0) return out;
  let maxIndex = offset;
  for (let d = 0; d < shape.length; d++) maxIndex += (shape[d] - 1) * strides[d];
  if (offset < 0 || (maxIndex + 1) * itemSize > storage.length) {
    throw new Error(`${what}: view [${shape}] / strides [${strides}] + offset ${offset} exceeds its storage`);
  }
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
