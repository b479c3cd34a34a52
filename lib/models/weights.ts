/**
 * Putting weights into a model and taking them out.
 *
 * - `loadPretrained(model, path, opts)`: PaddleSeg `.pdparams`, PyTorch `.pth`, `.safetensors`. Names are
 *   matched under PaddleSeg naming (identity) or PyTorch naming (official HRNet / ContrastiveSeg, generated
 *   per layer, see `ParamSpec.torchName`); a container prefix (`state_dict.`, `module.`, `backbone.`, ...)
 *   is found automatically. Missing, unexpected and shape-mismatched tensors are reported by name, the
 *   line "matched N/M tensors (P params)" is always printed, and the load FAILS when the matched share of
 *   the expected parameters is below `minMatchedShare` (default 1: everything).
 * - `scope: "backbone"` loads ImageNet-pretrained backbones (PaddleSeg `hrnet_w48_ssld`, the official
 *   `hrnetv2_w48_imagenet_pretrained.pth`): only backbone tensors are expected, heads keep their init.
 * - `saveWeights` / `loadWeights`: our own format, safetensors with HWIO conv weights, model options and
 *   caller metadata as JSON in the header, written atomically.
 * - `paddleStateDict` / `savePdparams`: the weights as PaddleSeg's `model.state_dict()` (same names, OIHW
 *   conv weights, BN running statistics, float32) and as a `.pdparams` that `paddle.load` reads.
 */
import { tf } from "../backend/tf.ts";
import { paramGroup, type SegModel } from "./contrast.ts";
import { PADDLE_BN_EPSILON, PADDLE_BN_MOMENTUM } from "./layers.ts";
import { parseWeightFile, readWeightBytes, readWeightFile, type WeightFile } from "./io/read.ts";
import { encodePdparams } from "./io/pdparams.ts";
import { readSafetensors, writeSafetensors } from "./io/safetensors.ts";
import { type RawTensor, toFloat32, WeightFileError } from "./io/tensor.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { numel, type Param } from "./params.ts";

/**
 * paddle: PaddleSeg state_dict keys (our names). repro: the seed's own fork (justld/contrast_seg_paddle,
 * `HRNetW48ContrastHead`, plain nn.Sequential heads: `cls_head.0/1/4`, `proj_head.proj.0/1/3`; backbone as
 * PaddleSeg). torch: official HRNet / ContrastiveSeg keys.
 */
export type Naming = "paddle" | "repro" | "torch";

/** PaddleSeg head key -> REPRO head key (backbone keys are the same). */
function reproKey(name: string): string {
  const rules: [RegExp, string][] = [
    [/^cls_head\.0\._conv\./, "cls_head.0."],
    [/^cls_head\.0\._batch_norm\./, "cls_head.1."],
    [/^cls_head\.2\./, "cls_head.4."],
    [/^proj_head\.proj\.0\._conv\./, "proj_head.proj.0."],
    [/^proj_head\.proj\.0\._batch_norm\./, "proj_head.proj.1."],
    [/^proj_head\.proj\.1\./, "proj_head.proj.3."],
  ];
  for (const [re, to] of rules) if (re.test(name)) return name.replace(re, to);
  return name;
}

export interface LoadOptions {
  /** "full" (default): every model tensor is expected; "backbone": only backbone tensors. */
  scope?: "full" | "backbone";
  /** Which names the file uses; "auto" (default) picks the naming that matches more tensors. */
  naming?: Naming | "auto";
  /** Fail when the matched share of the expected PARAMETERS (elements) is below this (default 1). */
  minMatchedShare?: number;
  /** Where report lines go (default console.log). */
  log?: (line: string) => void;
}

export interface ShapeMismatch {
  name: string;
  fileName: string;
  expected: number[];
  found: number[];
}

export interface LoadReport {
  source: string;
  naming: Naming;
  /** Container prefix found in the file (e.g. "state_dict.module."). */
  prefix: string;
  expected: number;
  matched: string[];
  /** Our names with no tensor in the file. */
  missing: string[];
  /** File names that matched none of our expected tensors (ignoring bookkeeping such as num_batches_tracked). */
  unexpected: string[];
  mismatched: ShapeMismatch[];
  matchedParams: number;
  expectedParams: number;
}

const IGNORED_FILE_KEYS = /(^|\.)num_batches_tracked$|^StructuredToParameterName@@/;

/** The key a parameter has in a file under a naming and scope (before any container prefix). */
function fileKey(p: Param, naming: Naming, scope: "full" | "backbone"): string {
  const isBackbone = paramGroup(p.spec.name) === "backbone";
  if (naming === "paddle" || naming === "repro") {
    const name = naming === "repro" ? reproKey(p.spec.name) : p.spec.name;
    return scope === "backbone" ? name.replace(/^backbone\./, "") : name;
  }
  return isBackbone && scope === "full" ? `backbone.${p.spec.torchName}` : p.spec.torchName;
}

/** Most common prefix P such that P + expectedKey is a file key (ties: the shorter prefix). */
function findPrefix(fileKeys: string[], expected: Set<string>): { prefix: string; hits: number } {
  const counts = new Map<string, number>();
  for (const k of fileKeys) {
    let i = 0;
    for (;;) {
      if (expected.has(k.slice(i))) {
        const pre = k.slice(0, i);
        counts.set(pre, (counts.get(pre) ?? 0) + 1);
      }
      const dot = k.indexOf(".", i);
      if (dot < 0) break;
      i = dot + 1;
    }
  }
  let best = { prefix: "", hits: 0 };
  for (const [prefix, hits] of counts) {
    if (hits > best.hits || (hits === best.hits && prefix.length < best.prefix.length)) {
      best = { prefix, hits };
    }
  }
  return best;
}

/** Expected file shape of a parameter given the file's conv layout. */
function fileShape(p: Param, layout: WeightFile["layout"]): number[] {
  const s = p.spec.shape;
  if (p.spec.role === "conv_weight" && layout === "OIHW") return [s[3], s[2], s[0], s[1]];
  return s;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Match and assign the tensors of a parsed weight file; returns the report (does not enforce the share). */
export function applyWeights(model: SegModel, file: WeightFile, o: LoadOptions = {}): LoadReport {
  const scope = o.scope ?? "full";
  const params = model.store.params.filter((p) => scope === "full" || paramGroup(p.spec.name) === "backbone");
  const keys = [...file.tensors.keys()].filter((k) => !IGNORED_FILE_KEYS.test(k));

  const namings: Naming[] = o.naming && o.naming !== "auto" ? [o.naming] : ["paddle", "repro", "torch"];
  let naming = namings[0], prefix = "", bestHits = -1;
  for (const n of namings) {
    const r = findPrefix(keys, new Set(params.map((p) => fileKey(p, n, scope))));
    if (r.hits > bestHits) [naming, prefix, bestHits] = [n, r.prefix, r.hits];
  }

  const report: LoadReport = {
    source: file.source,
    naming,
    prefix,
    expected: params.length,
    matched: [],
    missing: [],
    unexpected: [],
    mismatched: [],
    matchedParams: 0,
    expectedParams: params.reduce((a, p) => a + numel(p.spec.shape), 0),
  };
  const used = new Set<string>();
  const nonFinite: string[] = [];
  for (const p of params) {
    const k = prefix + fileKey(p, naming, scope);
    const t = file.tensors.get(k);
    if (!t) {
      report.missing.push(p.spec.name);
      continue;
    }
    used.add(k);
    const want = fileShape(p, file.layout);
    if (!sameShape(t.shape, want)) {
      report.mismatched.push({ name: p.spec.name, fileName: k, expected: want, found: t.shape });
      continue;
    }
    if (!t.dtype.startsWith("float") && t.dtype !== "bfloat16") {
      throw new WeightFileError(
        `${file.source}: tensor '${k}' has dtype ${t.dtype}, expected a floating-point type`,
      );
    }
    const values = toFloat32(t);
    const bad = countNonFinite(values);
    if (bad) {
      nonFinite.push(`'${k}' (${bad.nan} NaN, ${bad.inf} Inf of ${values.length})`);
      continue;
    }
    if (nonFinite.length) continue; // the load fails below; do not assign more
    assignParam(p, values, t.shape, file.layout);
    report.matched.push(p.spec.name);
    report.matchedParams += numel(p.spec.shape);
  }
  if (nonFinite.length) {
    throw new WeightFileError(
      `${file.source}: ${nonFinite.length} tensor(s) hold NaN or infinite values, refusing to load them: ` +
        nonFinite.slice(0, LIST_LIMIT).join(", ") +
        (nonFinite.length > LIST_LIMIT ? `, ... (${nonFinite.length - LIST_LIMIT} more)` : ""),
    );
  }
  report.unexpected = keys.filter((k) => !used.has(k));
  return report;
}

function countNonFinite(v: Float32Array): { nan: number; inf: number } | null {
  let nan = 0, inf = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x !== x) nan++;
    else if (x === Infinity || x === -Infinity) inf++;
  }
  return nan || inf ? { nan, inf } : null;
}

function assignParam(p: Param, values: Float32Array, shape: number[], layout: WeightFile["layout"]): void {
  tf.tidy(() => {
    let v: tf.Tensor = tf.tensor(values, shape, "float32");
    if (p.spec.role === "conv_weight" && layout === "OIHW") v = tf.transpose(v, [2, 3, 1, 0]);
    p.value.assign(v);
  });
}

const LIST_LIMIT = 12;

function listNames(names: string[]): string {
  const shown = names.slice(0, LIST_LIMIT).join(", ");
  return names.length > LIST_LIMIT ? `${shown}, ... (${names.length - LIST_LIMIT} more)` : shown;
}

/** Human-readable report lines; the first is always "matched N/M tensors (P params)". */
export function formatLoadReport(r: LoadReport): string[] {
  const pct = r.expectedParams ? (100 * r.matchedParams / r.expectedParams).toFixed(1) : "0";
  const lines = [
    `matched ${r.matched.length}/${r.expected} tensors (${r.matchedParams.toLocaleString("en-US")} params, ` +
    `${pct}% of ${r.expectedParams.toLocaleString("en-US")}) from ${r.source} ` +
    `[${r.naming} names${r.prefix ? `, prefix '${r.prefix}'` : ""}]`,
  ];
  if (r.missing.length) lines.push(`  missing (${r.missing.length}): ${listNames(r.missing)}`);
  if (r.mismatched.length) {
    lines.push(
      `  shape mismatch (${r.mismatched.length}): ` +
        r.mismatched.slice(0, LIST_LIMIT).map((m) =>
          `${m.name} (file '${m.fileName}' [${m.found}] vs model [${m.expected}])`
        ).join(", "),
    );
  }
  if (r.unexpected.length) {
    lines.push(`  unexpected in file (${r.unexpected.length}): ${listNames(r.unexpected)}`);
  }
  return lines;
}

/** Throw when the matched share of the expected parameters is below `minShare`. */
export function enforceShare(r: LoadReport, minShare: number): void {
  const share = r.expectedParams ? r.matchedParams / r.expectedParams : 0;
  if (share < minShare) {
    throw new Error(
      `weight import from ${r.source} matched only ${r.matched.length}/${r.expected} tensors, ` +
        `${(100 * share).toFixed(2)}% of the parameters (< required ${(100 * minShare).toFixed(2)}%):\n` +
        formatLoadReport(r).join("\n"),
    );
  }
}

/** Load PaddleSeg / PyTorch / safetensors weights from a local file into `model` (see module doc). */
export async function loadPretrained(
  model: SegModel,
  path: string,
  o: LoadOptions = {},
): Promise<LoadReport> {
  const file = await readWeightFile(path);
  return loadFromWeightFile(model, file, o);
}

/** Same as `loadPretrained` for bytes already in memory. */
export async function loadPretrainedBytes(
  model: SegModel,
  bytes: Uint8Array,
  source: string,
  o: LoadOptions = {},
): Promise<LoadReport> {
  return loadFromWeightFile(model, await parseWeightFile(bytes, source), o);
}

function loadFromWeightFile(model: SegModel, file: WeightFile, o: LoadOptions): LoadReport {
  const r = applyWeights(model, file, o);
  const log = o.log ?? console.log;
  for (const l of formatLoadReport(r)) log(l);
  enforceShare(r, o.minMatchedShare ?? 1);
  return r;
}

// ---------------------------------------------------------------------------------------------------
// Our own format

export const WEIGHTS_FORMAT = "pixel-contrast-ts/weights-v1";

/**
 * Model weights (BN running statistics included) as name -> RawTensor in our layout (HWIO). Read back
 * asynchronously (every backend, webgpu included), one parameter at a time.
 */
export async function exportWeights(model: SegModel): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const p of model.store.params) {
    const values = (await p.value.data()) as Float32Array;
    out.set(p.spec.name, {
      dtype: "float32",
      shape: p.spec.shape,
      data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
  }
  return out;
}

/** HWIO [kh, kw, cin, cout] float32 bytes -> OIHW [cout, cin, kh, kw]. */
function hwioToOihw(values: Float32Array, [kh, kw, cin, cout]: number[]): Float32Array {
  const out = new Float32Array(values.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < cin; i++) {
        const src = ((y * kw + x) * cin + i) * cout;
        for (let o = 0; o < cout; o++) out[((o * cin + i) * kh + y) * kw + x] = values[src + o];
      }
    }
  }
  return out;
}

/**
 * The model's weights as PaddleSeg's `model.state_dict()`: PaddleSeg names, Paddle layouts (conv weights
 * OIHW), float32, BN running mean/variance included, in parameter order.
 */
export async function paddleStateDict(model: SegModel): Promise<Map<string, RawTensor>> {
  const out = new Map<string, RawTensor>();
  for (const p of model.store.params) {
    let values = (await p.value.data()) as Float32Array;
    let shape = p.spec.shape;
    if (p.spec.role === "conv_weight") {
      values = hwioToOihw(values, shape);
      shape = [shape[3], shape[2], shape[0], shape[1]];
    }
    out.set(p.spec.name, {
      dtype: "float32",
      shape: [...shape],
      data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    });
  }
  return out;
}

/** Writes `tensors` (e.g. `paddleStateDict(model)`) as a PaddleSeg `.pdparams`, atomically. */
export async function savePdparams(path: string, tensors: Map<string, RawTensor>): Promise<void> {
  await writeFileAtomic(path, encodePdparams(tensors));
}

/**
 * Save the model weights to `path` (safetensors; atomic). The header metadata holds the format tag, the
 * conv layout, the model options and `meta` (any JSON-serialisable value, e.g. iteration and config).
 * `extra` tensors (e.g. optimizer state) are stored beside the weights under their own names.
 */
export async function saveWeights(
  model: SegModel,
  path: string,
  meta: unknown = {},
  extra: Map<string, RawTensor> = new Map(),
): Promise<void> {
  const tensors = await exportWeights(model);
  for (const [k, v] of extra) {
    if (tensors.has(k)) throw new Error(`saveWeights: extra tensor '${k}' collides with a model parameter`);
    tensors.set(k, v);
  }
  await writeSafetensors(path, tensors, {
    format: WEIGHTS_FORMAT,
    layout: "HWIO",
    // what the model is: its options and the BN hyper-parameters of all its layers
    model: JSON.stringify({ ...model.options, bnMomentum: PADDLE_BN_MOMENTUM, bnEpsilon: PADDLE_BN_EPSILON }),
    meta: JSON.stringify(meta),
  });
}

export interface LoadedWeights {
  report: LoadReport;
  /** Options of the model that saved the file. */
  modelOptions: unknown;
  meta: unknown;
  /** Tensors in the file that are not model parameters (e.g. optimizer state). */
  extra: Map<string, RawTensor>;
}

/** Load a file written by `saveWeights` (strict: every tensor must match by name and shape). */
export async function loadWeights(model: SegModel, path: string): Promise<LoadedWeights> {
  const { tensors, metadata } = readSafetensors(await readWeightBytes(path), path);
  if (metadata.format !== WEIGHTS_FORMAT) {
    throw new Error(`${path}: not a ${WEIGHTS_FORMAT} file (format '${metadata.format ?? "none"}')`);
  }
  const file: WeightFile = { source: path, format: "safetensors", tensors, metadata, layout: "HWIO" };
  const report = applyWeights(model, file, { naming: "paddle" });
  if (report.missing.length || report.mismatched.length) {
    throw new Error(`checkpoint ${path} does not fit this model:\n${formatLoadReport(report).join("\n")}`);
  }
  const names = new Set(model.store.params.map((p) => p.spec.name));
  const extra = new Map([...tensors].filter(([k]) => !names.has(k)));
  return {
    report,
    modelOptions: JSON.parse(metadata.model ?? "null"),
    meta: JSON.parse(metadata.meta ?? "null"),
    extra,
  };
}
