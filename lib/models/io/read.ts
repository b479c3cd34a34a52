/**
 * Read any supported weight file into a flat `name -> RawTensor` map:
 * PaddleSeg `.pdparams` (pickle of numpy arrays), PyTorch `.pth` (zip or legacy), `.safetensors`
 * (ours or foreign); gzip-compressed variants of these are decompressed first.
 * Nothing is downloaded: `path` must be a local file.
 *
 * Bounded (lib/util/limits.ts, PC_MAX_WEIGHT_BYTES): the file must be a regular file no larger than the
 * budget; gzip is inflated only after its first bytes are recognised as a weight format and only up to
 * the budget; every tensor a reader decodes is reserved from the same budget before it is allocated.
 * Every failure is a `WeightFileError` whose message starts with the file's name.
 */
import { FileCheckError, readFileBounded } from "../../util/fs.ts";
import { formatBytes, getLimits, raiseHint } from "../../util/limits.ts";
import { NUMPY_GLOBALS, NumpyArray } from "./numpy.ts";
import { unpickle } from "./pickle.ts";
import { isSafetensors, looksLikeSafetensors, readSafetensors } from "./safetensors.ts";
import { type RawTensor, ReadBudget, WeightFileError } from "./tensor.ts";
import { MAX_NESTING, readTorchCheckpoint } from "./torch.ts";
import { isZip } from "./zip.ts";
import { concatBytes } from "../../util/bytes.ts";

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

export interface ReadOptions {
  /** Memory budget in bytes (default: `getLimits().weightMaxBytes`, PC_MAX_WEIGHT_BYTES). */
  maxBytes?: number;
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
  depth = 0,
): Map<string, RawTensor> {
  if (depth > MAX_NESTING) {
    throw new WeightFileError(
      `dicts nested deeper than ${MAX_NESTING} levels at '${
        prefix.slice(0, 200)
      }' (or a dict that holds itself)`,
    );
  }
  if (v instanceof NumpyArray) {
    if (v.tensor) out.set(prefix, v.tensor);
  } else if (isRawTensor(v)) {
    out.set(prefix, v);
  } else if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && v[1] instanceof NumpyArray) {
    flattenTensors(v[1], prefix, out, depth + 1);
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      if (typeof k !== "string") continue;
      flattenTensors(x, prefix ? `${prefix}.${k}` : k, out, depth + 1);
    }
  }
  return out;
}

/** The format the first bytes announce, or null. */
function sniff(bytes: Uint8Array): "safetensors" | "torch" | "pickle" | null {
  if (bytes.length < 2) return null;
  if (isSafetensors(bytes)) return "safetensors";
  // zip archive, or legacy torch.save whose first pickle is the LONG1 magic number
  if (isZip(bytes) || (bytes[0] === 0x80 && bytes[2] === 0x8a)) return "torch";
  // protocol >= 2 starts with PROTO (0x80); protocol 0/1 pickles start with an opcode character
  if (bytes[0] === 0x80 || "(c}]iNISVdlLFP".includes(String.fromCharCode(bytes[0]))) return "pickle";
  if (looksLikeSafetensors(bytes)) return "safetensors";
  return null;
}

function unrecognised(source: string): WeightFileError {
  return new WeightFileError(
    `${source}: unrecognised weight file (expected .pdparams, .pth, .safetensors or gzip of these)`,
  );
}

/**
 * Inflates gzip into at most `budget` bytes. The first inflated bytes must look like a weight file
 * (else it stops there: a 1 MB gzip of something else is never inflated to 1 GB to find out).
 */
async function gunzipBounded(bytes: Uint8Array, budget: ReadBudget): Promise<Uint8Array> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip")).getReader();
  const chunks: Uint8Array[] = [];
  let n = 0, sniffed = false;
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw new WeightFileError(`${budget.source}: corrupt gzip data (${(e as Error).message})`);
      }
      if (r.done) break;
      if (n + r.value.length > budget.maxBytes) {
        throw new WeightFileError(
          `${budget.source}: gzip data inflates to more than the memory budget of ${
            formatBytes(budget.maxBytes)
          } ` +
            `for one weight file (a decompression bomb?); ${raiseHint("weightMaxBytes")}`,
        );
      }
      chunks.push(r.value);
      n += r.value.length;
      if (!sniffed && n >= 16) {
        sniffed = true;
        const head = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
        if (!sniff(head)) throw unrecognised(budget.source);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  budget.reserve(n, "the inflated gzip data");
  return chunks.length === 1 ? chunks[0] : concatBytes(chunks);
}

/** Parse weight-file bytes; `source` names the file in messages. */
export async function parseWeightFile(
  input: Uint8Array,
  source: string,
  opts: ReadOptions = {},
): Promise<WeightFile> {
  const budget = new ReadBudget(source, getLimits({ weightMaxBytes: opts.maxBytes }).weightMaxBytes);
  try {
    let bytes = input;
    if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
      bytes = await gunzipBounded(bytes, budget);
    }
    switch (sniff(bytes)) {
      case "safetensors": {
        const { tensors, metadata } = readSafetensors(bytes, source);
        return {
          source,
          format: "safetensors",
          tensors,
          metadata,
          layout: metadata[LAYOUT_KEY] === "HWIO" ? "HWIO" : "OIHW",
        };
      }
      case "torch": {
        const obj = await readTorchCheckpoint(bytes, source, budget);
        return { source, format: "torch", tensors: flattenTensors(obj), metadata: {}, layout: "OIHW" };
      }
      case "pickle": {
        const { value } = unpickle(bytes, { source, globals: NUMPY_GLOBALS });
        return { source, format: "paddle", tensors: flattenTensors(value), metadata: {}, layout: "OIHW" };
      }
      default:
        throw unrecognised(source);
    }
  } catch (e) {
    if (e instanceof WeightFileError) {
      if (!e.message.startsWith(source)) e.message = `${source}: ${e.message}`;
      throw e;
    }
    // not anticipated by the readers: still a named error, marked so the fuzz tests can find such paths
    const err = new WeightFileError(
      `${source}: corrupt or unsupported weight file (${(e as Error)?.message ?? e})`,
    );
    err.cause = e;
    throw err;
  }
}

/** Reads a whole weight file: a regular file no larger than the memory budget. */
export async function readWeightBytes(path: string, opts: ReadOptions = {}): Promise<Uint8Array> {
  const max = getLimits({ weightMaxBytes: opts.maxBytes }).weightMaxBytes;
  try {
    return await readFileBounded(path, max, raiseHint("weightMaxBytes"));
  } catch (e) {
    if (e instanceof FileCheckError) throw new WeightFileError(`weight file ${e.message}`);
    throw new WeightFileError(`cannot read weight file '${path}': ${(e as Error).message}`);
  }
}

export async function readWeightFile(path: string, opts: ReadOptions = {}): Promise<WeightFile> {
  return parseWeightFile(await readWeightBytes(path, opts), path, opts);
}
