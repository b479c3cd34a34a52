/**
 * libtensorflow's C graph and session API (tensorflow/c/c_api.h), reached through Deno's FFI: the library the
 * native backend's binding already loaded is opened a second time by path, so no binding change is needed.
 * Only what ./record.ts and ./session.ts use is declared. Pointers stay inside lib/backend/graph.
 */
import { join } from "node:path";
import { nativePackageDir } from "../native.ts";

const SYMBOLS = {
  TF_NewStatus: { parameters: [], result: "pointer" },
  TF_GetCode: { parameters: ["pointer"], result: "i32" },
  TF_Message: { parameters: ["pointer"], result: "pointer" },
  TF_NewGraph: { parameters: [], result: "pointer" },
  TF_DeleteGraph: { parameters: ["pointer"], result: "void" },
  TF_NewOperation: { parameters: ["pointer", "buffer", "buffer"], result: "pointer" },
  TF_AddInput: { parameters: ["pointer", { struct: ["pointer", "i32"] }], result: "void" },
  TF_AddInputList: { parameters: ["pointer", "buffer", "i32"], result: "void" },
  TF_SetAttrString: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "void" },
  TF_SetAttrInt: { parameters: ["pointer", "buffer", "i64"], result: "void" },
  TF_SetAttrIntList: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "void" },
  TF_SetAttrFloat: { parameters: ["pointer", "buffer", "f32"], result: "void" },
  TF_SetAttrFloatList: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "void" },
  TF_SetAttrBool: { parameters: ["pointer", "buffer", "u8"], result: "void" },
  TF_SetAttrBoolList: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "void" },
  TF_SetAttrType: { parameters: ["pointer", "buffer", "i32"], result: "void" },
  TF_SetAttrShape: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "void" },
  TF_SetAttrTensor: { parameters: ["pointer", "buffer", "pointer", "pointer"], result: "void" },
  TF_FinishOperation: { parameters: ["pointer", "pointer"], result: "pointer" },
  TF_OperationNumOutputs: { parameters: ["pointer"], result: "i32" },
  TF_GraphGetOpDef: { parameters: ["pointer", "buffer", "pointer", "pointer"], result: "void" },
  TF_NewBuffer: { parameters: [], result: "pointer" },
  TF_DeleteBuffer: { parameters: ["pointer"], result: "void" },
  TF_NewSessionOptions: { parameters: [], result: "pointer" },
  TF_DeleteSessionOptions: { parameters: ["pointer"], result: "void" },
  TF_SetConfig: { parameters: ["pointer", "buffer", "usize", "pointer"], result: "void" },
  TF_NewSession: { parameters: ["pointer", "pointer", "pointer"], result: "pointer" },
  TF_CloseSession: { parameters: ["pointer", "pointer"], result: "void" },
  TF_DeleteSession: { parameters: ["pointer", "pointer"], result: "void" },
  TF_SessionRun: {
    parameters: [
      "pointer", // session
      "pointer", // run options
      "buffer", // inputs (TF_Output[])
      "buffer", // input values (TF_Tensor*[])
      "i32",
      "buffer", // outputs
      "buffer", // output values
      "i32",
      "buffer", // targets
      "i32",
      "pointer", // run metadata
      "pointer", // status
    ],
    result: "void",
  },
  TF_SessionPRunSetup: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32", "buffer", "i32", "buffer", "pointer"],
    result: "void",
  },
  TF_SessionPRun: {
    parameters: [
      "pointer",
      "pointer", // handle (const char*)
      "buffer",
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "pointer",
    ],
    result: "void",
  },
  TF_DeletePRunHandle: { parameters: ["pointer"], result: "void" },
  TF_AllocateTensor: { parameters: ["i32", "buffer", "i32", "usize"], result: "pointer" },
  TF_TensorData: { parameters: ["pointer"], result: "pointer" },
  TF_TensorByteSize: { parameters: ["pointer"], result: "usize" },
  TF_DeleteTensor: { parameters: ["pointer"], result: "void" },
  TF_NumDims: { parameters: ["pointer"], result: "i32" },
  TF_Dim: { parameters: ["pointer", "i32"], result: "i64" },
  TF_TensorType: { parameters: ["pointer"], result: "i32" },
} as const;

export type TfC = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null = null;

/** The C API of the libtensorflow the native backend loaded (call after `initBackend("tensorflow")`). */
export function tfC(): TfC {
  lib ??= Deno.dlopen(join(nativePackageDir(), "deps", "lib", "libtensorflow_cc.so.2"), SYMBOLS);
  return lib.symbols;
}

const enc = new TextEncoder();
/** A NUL-terminated C string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return enc.encode(s + "\0");
}

/** A TF_Status that throws with `what` and TensorFlow's message when the last call failed. */
export class Status {
  readonly ptr: Deno.PointerValue;
  constructor() {
    this.ptr = tfC().TF_NewStatus();
  }
  check(what: string): void {
    const C = tfC();
    if (C.TF_GetCode(this.ptr) !== 0) {
      throw new Error(`${what}: ${Deno.UnsafePointerView.getCString(C.TF_Message(this.ptr)!)}`);
    }
  }
}

/** A `TF_Output {TF_Operation* oper; int index}` (16 bytes). */
export interface TfOutput {
  op: Deno.PointerValue;
  index: number;
}

export function outputStruct(o: TfOutput): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16);
  new BigUint64Array(b.buffer, 0, 1)[0] = BigInt(Deno.UnsafePointer.value(o.op));
  new Int32Array(b.buffer, 8, 1)[0] = o.index;
  return b;
}

export function outputArray(os: TfOutput[]): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(16 * Math.max(os.length, 1));
  os.forEach((o, i) => b.set(outputStruct(o), 16 * i));
  return b;
}

export function pointerArray(ps: Deno.PointerValue[]): BigUint64Array<ArrayBuffer> {
  return new BigUint64Array(Math.max(ps.length, 1)).map((_, i) =>
    i < ps.length ? BigInt(Deno.UnsafePointer.value(ps[i])) : 0n
  );
}

/** Bytes per element of the TF_DataTypes we exchange with TF.js (float, int32, bool, int64, bf16). */
export function dtypeBytes(dtype: number): number {
  switch (dtype) {
    case 1: // TF_FLOAT
    case 3: // TF_INT32
      return 4;
    case 10: // TF_BOOL
      return 1;
    case 9: // TF_INT64
      return 8;
    case 14: // TF_BFLOAT16
      return 2;
    default:
      throw new Error(`backend/graph: tensors of TF_DataType ${dtype} are not exchanged`);
  }
}

/** A new TF_Tensor holding a copy of `data` (the caller deletes it, or hands it to a run that does not). */
export function newTensor(dtype: number, dims: readonly number[], data: ArrayBufferView): Deno.PointerValue {
  const C = tfC();
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = n * dtypeBytes(dtype);
  if (data.byteLength !== bytes) {
    throw new Error(`backend/graph: ${data.byteLength} bytes for a [${dims}] tensor of ${bytes} bytes`);
  }
  const t = C.TF_AllocateTensor(dtype, new BigInt64Array(dims.map(BigInt)), dims.length, BigInt(bytes));
  if (bytes > 0) {
    const dst = C.TF_TensorData(t)!;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(dst, bytes)).set(
      new Uint8Array(data.buffer, data.byteOffset, bytes),
    );
  }
  return t;
}

/** Shape, dtype and a copy of the data of a TF_Tensor (which stays owned by the caller). */
export function readTensor(t: Deno.PointerValue): { dtype: number; shape: number[]; data: Uint8Array } {
  const C = tfC();
  const dtype = C.TF_TensorType(t);
  const shape = Array.from({ length: C.TF_NumDims(t) }, (_, i) => Number(C.TF_Dim(t, i)));
  const bytes = Number(C.TF_TensorByteSize(t));
  const data = new Uint8Array(bytes);
  if (bytes > 0) data.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(C.TF_TensorData(t)!, bytes)));
  return { dtype, shape, data };
}
