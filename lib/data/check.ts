/**
 * Dataset check before training (`deno task check-data`, and a fast sampled run at training start):
 * images per split, image sizes, per-class label histogram, and impossible labels refused with a named
 * fix (values above num_classes, 0/255 binary masks, RGB colour masks, Cityscapes labelIds where trainIds
 * are expected or the reverse, 16-bit instance maps, images without labels, size mismatches, unreadable
 * or corrupt files).
 */
import { Rng } from "../util/rng.ts";
import { DataError, diagnoseLabelValues, histogram256, labelChannel, type SegDataset } from "./dataset.ts";
import { readImageRgb, readImageSize, readLabelImage } from "./image_io.ts";

export interface CheckOptions {
  /** Check this many items (seeded random subset); default: all. */
  sample?: number;
  seed?: number;
  /** Decode images fully (catches corrupt image data); default true. Sizes come from headers otherwise. */
  decodeImages?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface CheckProblem {
  code: string;
  message: string;
  fix: string;
  files: string[];
}

export interface CheckReport {
  type: string;
  mode: string;
  source: string;
  numClasses: number;
  ignoreIndex: number;
  classNames: string[] | null;
  images: number;
  checked: number;
  sampled: boolean;
  /** label files per kind (trainIds / labelIds / raw) */
  labelKinds: Record<string, number>;
  sizes: {
    minW: number;
    maxW: number;
    minH: number;
    maxH: number;
    meanW: number;
    meanH: number;
    common: Array<[string, number]>;
  };
  /** pixels per class (index = class id) of the checked labels, after conversion */
  classPixels: number[];
  ignorePixels: number;
  /** checked labels in which each class occurs */
  classImages: number[];
  errors: CheckProblem[];
  warnings: CheckProblem[];
}

function pickSample(n: number, k: number, seed: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const perm = new Rng(seed).fork("check-data").permutation(n);
  return Array.from(perm.subarray(0, k)).sort((a, b) => a - b);
}

/** Scans (a sample of) the dataset; never throws for data problems: they are in `errors`. */
export async function checkDataset(ds: SegDataset, opts: CheckOptions = {}): Promise<CheckReport> {
  const idx = pickSample(ds.items.length, opts.sample ?? ds.items.length, opts.seed ?? 0);
  const decode = opts.decodeImages ?? true;
  const C = ds.numClasses;
  const classPixels = new Array(C).fill(0), classImages = new Array(C).fill(0);
  let ignorePixels = 0;
  const problems = new Map<string, CheckProblem>();
  const warnings = new Map<string, CheckProblem>();
  const add = (map: Map<string, CheckProblem>, code: string, message: string, fix: string, file: string) => {
    const p = map.get(code) ?? { code, message, fix, files: [] };
    p.files.push(file);
    map.set(code, p);
  };
  const sizeCount = new Map<string, number>();
  const badValues = new Set<number>();
  let minW = Infinity, maxW = 0, minH = Infinity, maxH = 0, sumW = 0, sumH = 0, nSizes = 0;
  const kinds: Record<string, number> = {};
  // dataset-level: how many labels look like 0/255 masks
  let binaryLike = 0, withLabel = 0;
  let done = 0;
  for (const i of idx) {
    const item = ds.items[i];
    opts.onProgress?.(done++, idx.length);
    let w = 0, h = 0;
    try {
      const size = decode ? await readImageRgb(item.image) : await readImageSize(item.image);
      w = size.width;
      h = size.height;
    } catch (e) {
      add(
        problems,
        "unreadable-image",
        "unreadable or corrupt image",
        "re-extract or re-download the file",
        `${item.image}: ${(e as Error).message}`,
      );
      continue;
    }
    sizeCount.set(`${w}x${h}`, (sizeCount.get(`${w}x${h}`) ?? 0) + 1);
    minW = Math.min(minW, w), maxW = Math.max(maxW, w), minH = Math.min(minH, h), maxH = Math.max(maxH, h);
    sumW += w, sumH += h, nSizes++;
    if (!item.label) continue;
    kinds[item.labelKind] = (kinds[item.labelKind] ?? 0) + 1;
    withLabel++;
    let values: Uint8Array;
    try {
      const raw = await readLabelImage(item.label);
      if (raw.width !== w || raw.height !== h) {
        add(
          problems,
          "size-mismatch",
          "image and label sizes differ",
          "pair each image with its own label",
          `${item.image} is ${w}x${h}, ${item.label} is ${raw.width}x${raw.height}`,
        );
        continue;
      }
      values = labelChannel(raw, item.label);
    } catch (e) {
      if (e instanceof DataError) {
        const [msg, fix] = e.message.split(`\n  fix [${e.code}]: `);
        add(problems, e.code, msg.replace(/^label '[^']*' /, "label "), e.fix ?? fix ?? "", item.label);
      } else {add(
          problems,
          "unreadable-label",
          "unreadable or corrupt label",
          "re-extract or re-download the file",
          `${item.label}: ${(e as Error).message}`,
        );}
      continue;
    }
    const hist = histogram256(values);
    const lut = ds.luts[item.labelKind]!;
    const present: number[] = [];
    for (let v = 0; v < 256; v++) if (hist[v]) present.push(v);
    if (present.length <= 2 && present.every((v) => v === 0 || v === 255) && hist[255] > 0) binaryLike++;
    const bad = present.filter((v) => lut[v] < 0);
    for (const v of bad) badValues.add(v);
    if (bad.length) {
      const d = diagnoseLabelValues(hist, ds, item.labelKind);
      if (d) add(problems, d.code, d.message, d.fix, item.label);
      else {
        add(
          problems,
          "values-above-num-classes",
          `label values outside the class set (0..${C - 1}, ignore ${ds.ignoreIndex})`,
          ds.type === "Dataset"
            ? "if they are classes, raise num_classes; if one marks unlabelled pixels, set ignore_index to it"
            : "check that these are the dataset's semantic label files",
          `${item.label}: values ${bad.slice(0, 8).join(", ")}`,
        );
      }
      continue;
    }
    if (item.labelKind === "labelIds") {
      const d = diagnoseLabelValues(hist, ds, "labelIds");
      if (d) add(warnings, d.code, d.message, d.fix, item.label);
    }
    const seen = new Set<number>();
    for (const v of present) {
      const t = lut[v];
      if (t === ds.ignoreIndex || t >= C) ignorePixels += hist[v];
      else {
        classPixels[t] += hist[v];
        seen.add(t);
      }
    }
    for (const t of seen) classImages[t]++;
  }
  opts.onProgress?.(done, idx.length);
  if (withLabel > 0 && binaryLike === withLabel && !problems.has("binary-0-255") && ds.ignoreIndex === 255) {
    add(
      problems,
      "binary-0-255",
      "every label is a 0/255 binary mask: 255 is the ignore value, so the foreground would never be learned",
      "store masks as 0/1 (divide by 255) and use num_classes: 2",
      `${binaryLike} label file(s)`,
    );
  }
  const over = problems.get("values-above-num-classes");
  if (over && ds.type === "Dataset") {
    const vals = [...badValues].sort((a, b) => a - b);
    over.fix = vals.length === 1
      ? `if ${vals[0]} marks unlabelled pixels, set ignore_index: ${
        vals[0]
      }; if it is a class, set num_classes: ${vals[0] + 1}`
      : `if these are classes, set num_classes: ${
        vals[vals.length - 1] + 1
      }; if one marks unlabelled pixels, ` +
        "set ignore_index to it";
  }
  const total = classPixels.reduce((a, b) => a + b, 0) + ignorePixels;
  if (total > 0 && ignorePixels / total > 0.5) {
    add(
      warnings,
      "mostly-ignored",
      `${((ignorePixels / total) * 100).toFixed(1)}% of the label pixels are ignored`,
      "check ignore_index and the label files (labelIds given as trainIds?)",
      ds.source,
    );
  }
  if (idx.length === ds.items.length && total > 0) {
    const missing = classPixels.map((p, c) => (p === 0 ? c : -1)).filter((c) => c >= 0);
    if (missing.length) {
      add(
        warnings,
        "classes-never-seen",
        `class(es) ${missing.map((c) => ds.classNames?.[c] ?? c).join(", ")} never occur in this split`,
        "fine for a val split; for training, check num_classes and the labels",
        ds.source,
      );
    }
  }
  const common = [...sizeCount.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5);
  return {
    type: ds.type,
    mode: ds.mode,
    source: ds.source,
    numClasses: C,
    ignoreIndex: ds.ignoreIndex,
    classNames: ds.classNames,
    images: ds.items.length,
    checked: idx.length,
    sampled: idx.length < ds.items.length,
    labelKinds: kinds,
    sizes: {
      minW: nSizes ? minW : 0,
      maxW,
      minH: nSizes ? minH : 0,
      maxH,
      meanW: nSizes ? sumW / nSizes : 0,
      meanH: nSizes ? sumH / nSizes : 0,
      common,
    },
    classPixels,
    ignorePixels,
    classImages,
    errors: [...problems.values()],
    warnings: [...warnings.values()],
  };
}

/** Human-readable report: counts, sizes, the per-class histogram, then errors with their fixes. */
export function formatCheckReport(r: CheckReport): string {
  const out: string[] = [];
  out.push(
    `${r.type} ${r.mode}: ${r.images} images (${r.source})${
      r.sampled ? `, checked a sample of ${r.checked}` : ""
    }`,
  );
  const kinds = Object.entries(r.labelKinds).map(([k, n]) => `${n} ${k}`).join(", ");
  if (kinds) {
    out.push(
      `  labels: ${kinds}${r.labelKinds.labelIds ? " (label ids converted to train ids on load)" : ""}`,
    );
  }
  const s = r.sizes;
  out.push(
    `  sizes: width ${s.minW}..${s.maxW} (mean ${s.meanW.toFixed(0)}), height ${s.minH}..${s.maxH} (mean ${
      s.meanH.toFixed(0)
    }); ` +
      `most common ${s.common.map(([k, n]) => `${k} x${n}`).join(", ")}`,
  );
  const total = r.classPixels.reduce((a, b) => a + b, 0) + r.ignorePixels;
  if (total > 0) {
    out.push(`  class histogram (${r.checked} labels, ${total} pixels):`);
    const maxShare = Math.max(...r.classPixels) / total;
    r.classPixels.forEach((p, c) => {
      const name = (r.classNames?.[c] ?? `class ${c}`).padEnd(14);
      const share = p / total;
      const bar = "#".repeat(Math.round((share / Math.max(maxShare, 1e-9)) * 30));
      out.push(
        `    ${String(c).padStart(3)} ${name} ${(share * 100).toFixed(2).padStart(6)}%  in ${
          String(r.classImages[c]).padStart(4)
        } img  ${bar}`,
      );
    });
    out.push(`    ign ${"(ignored)".padEnd(14)} ${((r.ignorePixels / total) * 100).toFixed(2).padStart(6)}%`);
  }
  for (const w of r.warnings) {
    out.push(`  warning [${w.code}]: ${w.message} (${w.files.length}: ${w.files.slice(0, 2).join("; ")})`);
    out.push(`    fix: ${w.fix}`);
  }
  for (const e of r.errors) {
    out.push(`  ERROR [${e.code}]: ${e.message} in ${e.files.length} file(s), e.g.`);
    for (const f of e.files.slice(0, 3)) out.push(`      ${f}`);
    out.push(`    fix: ${e.fix}`);
  }
  if (!r.errors.length) out.push(`  ok${r.warnings.length ? ` (${r.warnings.length} warning(s))` : ""}`);
  return out.join("\n");
}

/** Throws a DataError summarising the report's errors (training stops on this). */
export function assertCheckPassed(r: CheckReport): void {
  if (!r.errors.length) return;
  const e = r.errors[0];
  throw new DataError(
    `dataset check failed for ${r.type} ${r.mode} (${r.source}): ${
      r.errors.map((x) => `[${x.code}] ${x.message} (${x.files.length} file(s), e.g. ${x.files[0]})`).join(
        "; ",
      )
    }`,
    e.code,
    e.fix,
  );
}

/**
 * The check training runs on start: a seeded sample of `sample` items (sizes from headers, labels fully
 * read); throws a DataError with the fix when anything is wrong, else returns the report.
 */
export async function checkOnStart(ds: SegDataset, sample = 16): Promise<CheckReport> {
  const r = await checkDataset(ds, { sample, decodeImages: false });
  assertCheckPassed(r);
  return r;
}
