/**
 * safetensors reader/writer (https://huggingface.co/docs/safetensors): 8-byte little-endian header size,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then
 * the raw little-endian tensor bytes. Writes go to a temporary file that is renamed into place, so a
 * crash never leaves a half-written checkpoint under the final name.
 */
import { type DType, DTYPE_SIZE, type RawTensor, shapeSize } from "./tensor.ts";
import { writeFileAtomic } from "../../util/fs.ts";

const TO_ST: Record<DType, string> = {
  float16: "F16",
  bfloat16: "BF16",
  float32: "F32",
  float64: "F64",
  int8: "I8",
  uint8: "U8",
  int16: "I16",
  uint16: "U16",
  int32: "I32",
  uint32: "U32",
  int64: "I64",
  uint64: "U64",
  bool: "BOOL",
};
const FROM_ST: Record<string, DType> = Object.fromEntries(
  Object.entries(TO_ST).map(([k, v]) => [v, k as DType]),
);

export interface SafetensorsFile {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return n > 1 && 8 + n <= bytes.length && bytes[8] === 0x7b; // '{'
}

export function readSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  if (bytes.length < 8) throw new Error(`${source}: too short for a safetensors file`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (!(n > 1) || 8 + n > bytes.length) throw new Error(`${source}: bad safetensors header size ${n}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${source}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (info ?? {}) as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = info as { dtype: string; shape: number[]; data_offsets: number[] };
    const dt = FROM_ST[dtype];
    if (!dt) throw new Error(`${source}: tensor '${name}' has unsupported dtype '${dtype}'`);
    const [b, e] = data_offsets ?? [];
    if (!Array.isArray(shape) || !(b >= 0 && e >= b && e <= data.length)) {
      throw new Error(`${source}: tensor '${name}' has a bad shape or data_offsets`);
    }
    if (e - b !== shapeSize(shape) * DTYPE_SIZE[dt]) {
      throw new Error(`${source}: tensor '${name}' ${dtype}[${shape}] has ${e - b} bytes`);
    }
    tensors.set(name, { dtype: dt, shape, data: data.subarray(b, e) });
  }
  return { tensors, metadata };
}

export function encodeSafetensors(
  tensors: Iterable<[string, RawTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name in header) throw new Error(`safetensors: duplicate tensor name '${name}'`);
    header[name] = {
      dtype: TO_ST[t.dtype],
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    parts.push(t.data);
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8); // align data to 8 bytes
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const d of parts) {
    out.set(d, p);
    p += d.byteLength;
  }
  return out;
}

export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, RawTensor]>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
