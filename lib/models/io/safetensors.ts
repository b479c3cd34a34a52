/**
 * safetensors reader/writer (https://huggingface.co/docs/safetensors): 8-byte little-endian header size,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then
 * the raw little-endian tensor bytes. Writes go to a temporary file that is renamed into place, so a
 * crash never leaves a half-written checkpoint under the final name.
 */
import {
  checkedNumel,
  type DType,
  DTYPE_SIZE,
  type RawTensor,
  showValue,
  WeightFileError,
} from "./tensor.ts";
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

/** The safetensors format's own bound on the JSON header (it is read whole before any tensor). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** A valid safetensors start: an 8-byte header length that fits the file, then a JSON object. */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return n > 1 && 8 + n <= bytes.length && bytes[8] === 0x7b; // '{'
}

/**
 * Looks like a safetensors file whose header length is wrong (e.g. longer than the file): a plausible
 * little-endian length (< 2^48) followed by '{'. Such files get safetensors' own messages, not
 * "unrecognised weight file".
 */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b && bytes[6] === 0 && bytes[7] === 0;
}

function fail(source: string, what: string): never {
  throw new WeightFileError(`${source}: ${what}`);
}

/**
 * Reads a safetensors file. Only views into `bytes` are made (no tensor is copied); every declared
 * size, shape and offset is checked against the file: the header must fit, tensors must lie inside
 * the data section, match their shape exactly, and not overlap (a file cannot make several tensors of
 * the same bytes).
 */
export function readSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  if (bytes.length < 8) fail(source, `too short for a safetensors file (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (!(n > 1)) fail(source, `bad safetensors header length ${n}`);
  if (8 + n > bytes.length) {
    fail(
      source,
      `safetensors header length ${n} exceeds the file size (${bytes.length} bytes): truncated or corrupt`,
    );
  }
  if (n > MAX_HEADER_BYTES) fail(source, `safetensors header of ${n} bytes, more than the format's 100 MB`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(source, `safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(source, "safetensors header is not a JSON object");
  }
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, RawTensor>();
  let metadata: Record<string, string> = {};
  const spans: { b: number; e: number; name: string }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    const shown = name.length > 120 ? `${name.slice(0, 80)}... [${name.length} characters]` : name;
    if (name === "__metadata__") {
      if (
        typeof info !== "object" || info === null || Object.values(info).some((v) => typeof v !== "string")
      ) {
        fail(source, "safetensors __metadata__ must map names to strings");
      }
      metadata = info as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = (info ?? {}) as {
      dtype: unknown;
      shape: unknown;
      data_offsets: unknown;
    };
    const dt = typeof dtype === "string" ? FROM_ST[dtype] : undefined;
    if (!dt) fail(source, `tensor '${shown}' has unsupported dtype '${String(dtype)}'`);
    const numel = checkedNumel(shape, `${source}: tensor '${shown}'`);
    const [b, e] = Array.isArray(data_offsets) ? data_offsets : [];
    if (!(Number.isSafeInteger(b) && Number.isSafeInteger(e) && b >= 0 && e >= b)) {
      fail(source, `tensor '${shown}' has bad data_offsets ${showValue(data_offsets)}`);
    }
    if (e > data.length) {
      fail(
        source,
        `tensor '${shown}' lies at bytes ${b}..${e}, past the end of the data (${data.length} bytes): ` +
          "truncated or corrupt",
      );
    }
    if (e - b !== numel * DTYPE_SIZE[dt]) {
      fail(
        source,
        `tensor '${shown}' ${dtype}[${shape}] needs ${numel * DTYPE_SIZE[dt]} bytes, has ${e - b}`,
      );
    }
    if (e > b) spans.push({ b, e, name: shown });
    tensors.set(name, { dtype: dt, shape: shape as number[], data: data.subarray(b, e) });
  }
  spans.sort((x, y) => x.b - y.b || x.e - y.e);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].b < spans[i - 1].e) {
      fail(source, `tensors '${spans[i - 1].name}' and '${spans[i].name}' overlap in the file`);
    }
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
