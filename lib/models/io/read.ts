/**
 * Read any supported weight file into a flat `name -> RawTensor` map:
 * PaddleSeg `.pdparams` (pickle of numpy arrays), PyTorch `.pth` (zip or legacy), `.safetensors`
 * (ours or foreign); gzip-compressed variants of these are decompressed first.
 * Nothing is downloaded: `path` must be a local file.
 */
import { NUMPY_GLOBALS, NumpyArray } from "./numpy.ts";
import { unpickle } from "./pickle.ts";
import { isSafetensors, readSafetensors } from "./safetensors.ts";
import type { RawTensor } from "./tensor.ts";
import { readTorchCheckpoint } from "./torch.ts";
import { isZip } from "./zip.ts";

export type WeightFormat = "paddle" | "torch" | "safetensors";
/** Conv weight layout in the file: OIHW (Paddle, PyTorch) or HWIO (our own safetensors). */
export type ConvLayout = "OIHW" | "HWIO";

export interface WeightFile {
  source: string;
  format: WeightFormat;
  tensors: Map<string, RawTensor>;
  layout: ConvLayout;
  /** safetensors `__metadata__` (empty for other formats). */
  metadata: Record<string, string>;
}

/** Our safetensors files say `"layout": "HWIO"` in their metadata. */
export const LAYOUT_KEY = "layout";

function isRawTensor(v: unknown): v is RawTensor {
  return typeof v === "object" && v !== null && "dtype" in v && "shape" in v &&
    (v as RawTensor).data instanceof Uint8Array;
}

/**
 * Flatten nested dicts into dotted names, keeping only tensors. Paddle's tensor reducer (`(name, ndarray)`
 * tuples) and numpy arrays are unwrapped; other leaves (numbers, strings, name tables) are dropped.
 */
export function flattenTensors(
  v: unknown,
  prefix = "",
  out = new Map<string, RawTensor>(),
): Map<string, RawTensor> {
  if (v instanceof NumpyArray) {
    if (v.tensor) out.set(prefix, v.tensor);
  } else if (isRawTensor(v)) {
    out.set(prefix, v);
  } else if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && v[1] instanceof NumpyArray) {
    flattenTensors(v[1], prefix, out);
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      if (typeof k !== "string") continue;
      flattenTensors(x, prefix ? `${prefix}.${k}` : k, out);
    }
  }
  return out;
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Parse weight-file bytes; `source` names the file in messages. */
export async function parseWeightFile(input: Uint8Array, source: string): Promise<WeightFile> {
  let bytes = input;
  if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzip(bytes);
  if (isSafetensors(bytes)) {
    const { tensors, metadata } = readSafetensors(bytes, source);
    return {
      source,
      format: "safetensors",
      tensors,
      metadata,
      layout: metadata[LAYOUT_KEY] === "HWIO" ? "HWIO" : "OIHW",
    };
  }
  if (isZip(bytes) || (bytes[0] === 0x80 && bytes[2] === 0x8a)) {
    // zip archive, or legacy torch.save whose first pickle is the LONG1 magic number
    const obj = await readTorchCheckpoint(bytes, source);
    return { source, format: "torch", tensors: flattenTensors(obj), metadata: {}, layout: "OIHW" };
  }
  // protocol >= 2 starts with PROTO (0x80); protocol 0/1 pickles start with an opcode character
  if (bytes[0] === 0x80 || "(c}]iNISVdlLFP".includes(String.fromCharCode(bytes[0]))) {
    const { value } = unpickle(bytes, { source, globals: NUMPY_GLOBALS });
    return { source, format: "paddle", tensors: flattenTensors(value), metadata: {}, layout: "OIHW" };
  }
  throw new Error(
    `${source}: unrecognised weight file (expected .pdparams, .pth, .safetensors or gzip of these)`,
  );
}

export async function readWeightFile(path: string): Promise<WeightFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read weight file '${path}': ${(e as Error).message}`);
  }
  return parseWeightFile(bytes, path);
}
