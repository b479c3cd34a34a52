/**
 * Writes a PaddleSeg `.pdparams`: what `paddle.save(model.state_dict(), path)` produces in Paddle 2.x, a
 * pickle (protocol 4) of a dict `name -> numpy.ndarray`, each array rebuilt by
 * `numpy.core.multiarray._reconstruct` + BUILD with `(1, shape, dtype('<f4'), False, raw bytes)`.
 * `paddle.load` turns the arrays into tensors; `model.set_state_dict` matches them by name. (paddle.save
 * also adds a `StructuredToParameterName@@` table of Paddle's internal variable names; `paddle.load`
 * does not need it, and the internal names depend on construction order, so none is written.)
 *
 * Only the opcodes that layout needs are emitted (no memo, no frames; both optional in protocol 4), so
 * our own reader (lib/models/io/pickle.ts + numpy.ts) and Python's pickle read the result alike.
 */
import { type DType, DTYPE_SIZE, type RawTensor, shapeSize } from "./tensor.ts";

/** numpy type codes of the dtypes we write (little-endian). */
const NUMPY_CODE: Partial<Record<DType, string>> = {
  float32: "f4",
  float64: "f8",
  float16: "f2",
  int64: "i8",
  int32: "i4",
  uint8: "u1",
  bool: "b1",
};

const OP = {
  PROTO: 0x80,
  EMPTY_DICT: 0x7d, // }
  MARK: 0x28, // (
  SETITEM: 0x73, // s
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE: 0x58, // X
  STACK_GLOBAL: 0x93,
  BININT1: 0x4b, // K
  BININT: 0x4a, // J
  TUPLE: 0x74, // t
  TUPLE1: 0x85,
  TUPLE3: 0x87,
  EMPTY_TUPLE: 0x29, // )
  SHORT_BINBYTES: 0x43, // C
  BINBYTES: 0x42, // B
  BINBYTES8: 0x8e,
  REDUCE: 0x52, // R
  BUILD: 0x62, // b
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  NONE: 0x4e, // N
  STOP: 0x2e, // .
} as const;

/** Growable byte buffer; `reserve` lets the caller size it once for large tensors. */
class Out {
  #buf: Uint8Array;
  #view: DataView;
  length = 0;
  constructor(capacity: number) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
  }
  #grow(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  byte(...bs: number[]): void {
    this.#grow(bs.length);
    for (const b of bs) this.#buf[this.length++] = b;
  }
  u32(v: number): void {
    this.#grow(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.#grow(4);
    this.#view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.#grow(8);
    this.#view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.#grow(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  result(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }
}

function str(out: Out, s: string): void {
  const b = new TextEncoder().encode(s);
  if (b.length < 256) out.byte(OP.SHORT_BINUNICODE, b.length);
  else {
    out.byte(OP.BINUNICODE);
    out.u32(b.length);
  }
  out.bytes(b);
}

function int(out: Out, v: number): void {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
    throw new Error(`pdparams: integer ${v} out of range`);
  }
  if (v >= 0 && v < 256) out.byte(OP.BININT1, v);
  else {
    out.byte(OP.BININT);
    out.i32(v);
  }
}

function global(out: Out, module: string, name: string): void {
  str(out, module);
  str(out, name);
  out.byte(OP.STACK_GLOBAL);
}

function rawBytes(out: Out, b: Uint8Array): void {
  if (b.length < 256) out.byte(OP.SHORT_BINBYTES, b.length);
  else if (b.length < 2 ** 32) {
    out.byte(OP.BINBYTES);
    out.u32(b.length);
  } else {
    out.byte(OP.BINBYTES8);
    out.u64(b.length);
  }
  out.bytes(b);
}

/** One numpy array, exactly as numpy's `ndarray.__reduce__` pickles a C-contiguous array. */
function ndarray(out: Out, t: RawTensor, name: string): void {
  const code = NUMPY_CODE[t.dtype];
  if (!code) throw new Error(`pdparams: tensor '${name}' has dtype ${t.dtype}, which is not written`);
  const want = shapeSize(t.shape) * DTYPE_SIZE[t.dtype];
  if (t.data.byteLength !== want) {
    throw new Error(`pdparams: tensor '${name}' has ${t.data.byteLength} bytes for ${t.dtype}[${t.shape}]`);
  }
  // _reconstruct(ndarray, (0,), b'b')
  global(out, "numpy.core.multiarray", "_reconstruct");
  global(out, "numpy", "ndarray");
  int(out, 0);
  out.byte(OP.TUPLE1);
  rawBytes(out, new Uint8Array([0x62]));
  out.byte(OP.TUPLE3, OP.REDUCE);
  // BUILD state (1, shape, dtype, is_fortran, data)
  out.byte(OP.MARK);
  int(out, 1);
  if (t.shape.length === 0) out.byte(OP.EMPTY_TUPLE);
  else {
    out.byte(OP.MARK);
    for (const d of t.shape) int(out, d);
    out.byte(OP.TUPLE);
  }
  global(out, "numpy", "dtype");
  str(out, code);
  out.byte(OP.NEWFALSE, OP.NEWTRUE, OP.TUPLE3, OP.REDUCE);
  // dtype state (3, '<', None, None, None, -1, -1, 0); '|' for one-byte types, as numpy writes it
  out.byte(OP.MARK);
  int(out, 3);
  str(out, DTYPE_SIZE[t.dtype] === 1 ? "|" : "<");
  out.byte(OP.NONE, OP.NONE, OP.NONE);
  int(out, -1);
  int(out, -1);
  int(out, 0);
  out.byte(OP.TUPLE, OP.BUILD);
  out.byte(OP.NEWFALSE);
  rawBytes(out, t.data);
  out.byte(OP.TUPLE, OP.BUILD);
}

/** The bytes of a `.pdparams` holding `tensors` (little-endian, C order), keys in insertion order. */
export function encodePdparams(tensors: Map<string, RawTensor>): Uint8Array {
  let total = 64;
  for (const [k, t] of tensors) total += t.data.byteLength + k.length + 160;
  const out = new Out(total);
  out.byte(OP.PROTO, 4, OP.EMPTY_DICT);
  for (const [name, t] of tensors) {
    str(out, name);
    ndarray(out, t, name);
    out.byte(OP.SETITEM);
  }
  out.byte(OP.STOP);
  return out.result();
}
