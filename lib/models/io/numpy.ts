/**
 * Allowlisted pickle globals that rebuild numpy arrays (what `paddle.save` writes for a state_dict):
 * `numpy.core.multiarray._reconstruct` + `numpy.ndarray` + `numpy.dtype` (+ BUILD state), numpy 2's
 * `numpy._core.*` spellings, protocol-5 `_frombuffer`, numpy scalars, and `_codecs.encode` (how protocol 2
 * stores bytes). Nothing else.
 */
import { type Buildable, PickleError, type PickleGlobals, PyGlobal } from "./pickle.ts";
import {
  byteSwap,
  checkedNumel,
  checkRawTensor,
  type DType,
  DTYPE_SIZE,
  gatherStrided,
  type RawTensor,
  showValue,
} from "./tensor.ts";

const NUMPY_CODES: Record<string, DType> = {
  f2: "float16",
  f4: "float32",
  f8: "float64",
  i1: "int8",
  u1: "uint8",
  i2: "int16",
  u2: "uint16",
  i4: "int32",
  u4: "uint32",
  i8: "int64",
  u8: "uint64",
  b1: "bool",
};

/** `numpy.dtype(code, align, copy)` followed by BUILD (byte order in state[1]). */
export class NumpyDtype implements Buildable {
  dtype: DType;
  byteOrder = "=";

  constructor(code: string, readonly source: string) {
    let c = code;
    if ("<>|=".includes(c[0])) {
      this.byteOrder = c[0];
      c = c.slice(1);
    }
    const d = NUMPY_CODES[c];
    if (!d) throw new PickleError(`${source}: unsupported numpy dtype '${code}'`);
    this.dtype = d;
  }

  setState(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === "string") this.byteOrder = state[1];
  }

  get bigEndian(): boolean {
    return this.byteOrder === ">";
  }
}

/** A numpy array being rebuilt (`_reconstruct` then BUILD), or already complete (`_frombuffer`). */
export class NumpyArray implements Buildable {
  tensor: RawTensor | null = null;
  constructor(readonly source: string) {}

  setState(state: unknown): void {
    if (!Array.isArray(state)) throw new PickleError(`${this.source}: bad ndarray state`);
    // (version, shape, dtype, is_fortran, rawdata) or the older 4-tuple without version.
    const s = state.length === 5 ? state.slice(1) : state;
    const [shape, dtype, fortran, raw] = s;
    if (!(dtype instanceof NumpyDtype)) {
      throw new PickleError(`${this.source}: ndarray without a numpy dtype`);
    }
    if (!(raw instanceof Uint8Array)) {
      throw new PickleError(
        `${this.source}: ndarray data is not raw bytes (object arrays are not supported)`,
      );
    }
    this.tensor = makeArray(raw, dtype, shapeOf(shape, this.source), fortran === true, this.source);
  }
}

function shapeOf(shape: unknown, source: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0)) {
    throw new PickleError(`${source}: bad array shape ${showValue(shape)}`);
  }
  return shape as number[];
}

function makeArray(
  raw: Uint8Array,
  dt: NumpyDtype,
  shape: number[],
  fortran: boolean,
  source: string,
): RawTensor {
  const size = DTYPE_SIZE[dt.dtype];
  // the declared shape must match the bytes present before anything is copied or reordered
  const expected = checkedNumel(shape, `${source}: numpy array`) * size;
  if (raw.length !== expected) {
    throw new PickleError(
      `${source}: numpy array ${dt.dtype}[${shape}] needs ${expected} bytes of data, the file holds ${raw.length}`,
    );
  }
  let data = dt.bigEndian && size > 1 ? byteSwap(raw, size) : raw;
  if (fortran && shape.length > 1) {
    const strides: number[] = [];
    let s = 1;
    for (const d of shape) {
      strides.push(s);
      s *= d;
    }
    data = gatherStrided(data, size, shape, strides, 0, source);
  }
  return checkRawTensor({ dtype: dt.dtype, shape, data }, `${source}: numpy array`);
}

function isNdarrayClass(x: unknown): boolean {
  return x instanceof PyGlobal && x.name === "ndarray" && (x.module === "numpy");
}

const reconstruct = {
  call: (args: unknown[], source: string) => {
    if (!isNdarrayClass(args[0])) {
      throw new PickleError(`${source}: _reconstruct of something other than ndarray`);
    }
    return new NumpyArray(source);
  },
};

const frombuffer = {
  call: (args: unknown[], source: string) => {
    const [buf, dtype, shape, order] = args;
    if (!(buf instanceof Uint8Array) || !(dtype instanceof NumpyDtype)) {
      throw new PickleError(`${source}: bad _frombuffer arguments`);
    }
    const a = new NumpyArray(source);
    a.tensor = makeArray(buf, dtype, shapeOf(shape, source), order === "F", source);
    return a;
  },
};

const scalar = {
  call: (args: unknown[], source: string) => {
    const [dtype, raw] = args;
    if (!(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array)) {
      throw new PickleError(`${source}: bad numpy scalar`);
    }
    const t = makeArray(raw, dtype, [], false, source);
    const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    switch (t.dtype) {
      case "float32":
        return dv.getFloat32(0, true);
      case "float64":
        return dv.getFloat64(0, true);
      case "int32":
        return dv.getInt32(0, true);
      case "int64":
        return Number(dv.getBigInt64(0, true));
      case "bool":
        return dv.getUint8(0) !== 0;
      default:
        return t; // rarely used dtypes stay a 0-d tensor
    }
  },
};

/** `_codecs.encode(text, 'latin1')`: how protocol-2 pickles written by Python 3 store bytes. */
const codecsEncode = {
  call: (args: unknown[], source: string) => {
    const [text, enc] = args;
    if (typeof text !== "string" || (enc !== "latin1" && enc !== "latin-1")) {
      throw new PickleError(`${source}: only _codecs.encode(str, 'latin1') is supported`);
    }
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 255) throw new PickleError(`${source}: non-latin1 character in encoded bytes`);
      out[i] = c;
    }
    return out;
  },
};

const dtypeCtor = {
  call: (args: unknown[], source: string) => {
    if (typeof args[0] !== "string") throw new PickleError(`${source}: numpy.dtype needs a type code`);
    return new NumpyDtype(args[0], source);
  },
};

export const NUMPY_GLOBALS: PickleGlobals = {
  "numpy.ndarray": {},
  "numpy.dtype": dtypeCtor,
  "numpy.core.multiarray._reconstruct": reconstruct,
  "numpy._core.multiarray._reconstruct": reconstruct,
  "numpy.core.multiarray.scalar": scalar,
  "numpy._core.multiarray.scalar": scalar,
  "numpy.core.numeric._frombuffer": frombuffer,
  "numpy._core.numeric._frombuffer": frombuffer,
  "_codecs.encode": codecsEncode,
  "collections.OrderedDict": {
    call: (args: unknown[]) => new Map(Array.isArray(args[0]) ? (args[0] as [unknown, unknown][]) : []),
  },
};
