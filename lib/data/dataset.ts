/**
 * Datasets as PaddleSeg defines them, reduced to plain serialisable descriptions (so that loader
 * workers can receive them) plus the functions that read one sample.
 *
 * - `Cityscapes` (PaddleSeg `paddleseg/datasets/cityscapes.py`): `leftImg8bit/<mode>/<city>/*_leftImg8bit.png`
 *   paired with `gtFine/<mode>/<city>/*_gtFine_labelTrainIds.png`, sorted by image path as PaddleSeg's
 *   `sorted(glob(...))` (we pair by file stem instead of zipping two sorted lists, so a missing label is
 *   an error naming the image rather than a silent shift). When an image has no labelTrainIds file but
 *   a `*_gtFine_labelIds.png`, the official id -> trainId table converts it on load.
 * - `Dataset` (PaddleSeg's generic dataset): list files of `image_path<separator>label_path` lines,
 *   relative to dataset_root; `num_classes`, `ignore_index`.
 *
 * Label values in batches, as PaddleSeg: class ids 0..num_classes-1 and the dataset's `ignore_index`
 * (Cityscapes: 255; CamVid with `ignore_index: 11`: 11, and its RandomPaddingCrop must then pad labels
 * with 11, which the loader checks). Cityscapes labelIds files are converted to train ids (void ids ->
 * 255). Any other value is an error naming the file (with a diagnosis when one applies).
 */
import * as path from "node:path";
import { CITYSCAPES_CLASS_NAMES, ID_TO_TRAIN_ID } from "./cityscapes_labels.ts";
import { type RawImage, readImageRgb, readLabelImage, type RgbImage } from "./image_io.ts";
import type { TransformSpec } from "./transforms.ts";
import { FileCheckError, readFileBounded } from "../util/fs.ts";
import { getLimits, raiseHint } from "../util/limits.ts";

export type Mode = "train" | "val" | "test";
export type LabelKind = "trainIds" | "labelIds" | "raw";

/** The ignore value of Cityscapes (and the default of PaddleSeg's generic Dataset). */
export const IGNORE = 255;

export interface DataItem {
  image: string;
  /** null in test mode when no label exists */
  label: string | null;
  labelKind: LabelKind;
}

/** A dataset as a plain object (structured-cloneable: sent to loader workers as is). */
export interface SegDataset {
  type: "Cityscapes" | "Dataset" | "SyntheticCityscapes";
  root: string;
  mode: Mode;
  numClasses: number;
  /** The ignore value in the label files and in batches (PaddleSeg: the loss ignores it). */
  ignoreIndex: number;
  classNames: string[] | null;
  items: DataItem[];
  /** Per label kind: file value -> batch value (class id or ignoreIndex); -1 = not allowed. 256 entries. */
  luts: Partial<Record<LabelKind, number[]>>;
  transforms: TransformSpec[];
  /** Where the list came from (for messages): the split folder or the list file. */
  source: string;
}

/** Error about the data (not the code); `fix` names the remedy, `code` is a stable identifier. */
export class DataError extends Error {
  constructor(message: string, readonly code: string, readonly fix?: string) {
    super(fix ? `${message}\n  fix [${code}]: ${fix}` : message);
    this.name = "DataError";
  }
}

// ---------------------------------------------------------------------------------------------------
// label tables

export function cityscapesLuts(): Partial<Record<LabelKind, number[]>> {
  const trainIds = new Array(256).fill(-1);
  for (let v = 0; v < 19; v++) trainIds[v] = v;
  trainIds[255] = 255;
  const labelIds = new Array(256).fill(-1);
  for (let id = 0; id <= 33; id++) labelIds[id] = ID_TO_TRAIN_ID[id];
  // -1 (license plate) cannot be stored in a uint8 PNG; 255 is not a label id, so it stays invalid
  return { trainIds, labelIds };
}

export function genericLut(numClasses: number, ignoreIndex: number): number[] {
  const lut = new Array(256).fill(-1);
  for (let v = 0; v < Math.min(numClasses, 256); v++) lut[v] = v;
  if (ignoreIndex >= 0 && ignoreIndex <= 255) lut[ignoreIndex] = ignoreIndex;
  return lut;
}

// ---------------------------------------------------------------------------------------------------
// opening datasets

const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function isDir(p: string): Promise<boolean> {
  return await Deno.stat(p).then((s) => s.isDirectory, () => false);
}

async function isFile(p: string): Promise<boolean> {
  return await Deno.stat(p).then((s) => s.isFile, () => false);
}

async function listDir(p: string): Promise<Deno.DirEntry[]> {
  const out: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(p)) out.push(e);
  return out.sort((a, b) => byPath(a.name, b.name));
}

export interface CityscapesOptions {
  dataset_root: string;
  mode?: Mode;
  transforms?: TransformSpec[];
}

/** Lists a Cityscapes split in the official layout. */
export async function openCityscapes(o: CityscapesOptions): Promise<SegDataset> {
  const root = o.dataset_root;
  const mode = o.mode ?? "train";
  if (!(await isDir(root))) {
    throw new DataError(
      `Cityscapes: dataset_root '${root}' does not exist or is not a folder`,
      "missing-folder",
      "unpack the dataset there (e.g. the Cityscapes zips or a cityscapes.tar) so that it holds leftImg8bit/ and gtFine/",
    );
  }
  const imgDir = path.join(root, "leftImg8bit", mode);
  const gtDir = path.join(root, "gtFine", mode);
  if (!(await isDir(imgDir))) {
    throw new DataError(
      `Cityscapes: folder '${imgDir}' is missing (expected leftImg8bit/${mode}/<city>/*_leftImg8bit.png)`,
      "missing-folder",
      `check dataset_root: it must be the folder that contains leftImg8bit/ and gtFine/ (not one above or below)`,
    );
  }
  const hasGt = await isDir(gtDir);
  if (!hasGt && mode !== "test") {
    throw new DataError(
      `Cityscapes: folder '${gtDir}' is missing (expected gtFine/${mode}/<city>/*_gtFine_labelTrainIds.png)`,
      "missing-folder",
      "unpack gtFine_trainvaltest.zip into dataset_root",
    );
  }
  const items: DataItem[] = [];
  const missing: string[] = [];
  for (const city of await listDir(imgDir)) {
    if (!city.isDirectory) continue;
    for (const f of await listDir(path.join(imgDir, city.name))) {
      if (!f.isFile || !f.name.endsWith("_leftImg8bit.png")) continue;
      const image = path.join(imgDir, city.name, f.name);
      const stem = f.name.slice(0, -"_leftImg8bit.png".length);
      const trainIds = path.join(gtDir, city.name, `${stem}_gtFine_labelTrainIds.png`);
      const labelIds = path.join(gtDir, city.name, `${stem}_gtFine_labelIds.png`);
      if (hasGt && (await isFile(trainIds))) items.push({ image, label: trainIds, labelKind: "trainIds" });
      else if (hasGt && (await isFile(labelIds))) {
        items.push({ image, label: labelIds, labelKind: "labelIds" });
      } else if (mode === "test") items.push({ image, label: null, labelKind: "trainIds" });
      else missing.push(image);
    }
  }
  if (missing.length) {
    throw new DataError(
      `Cityscapes: ${missing.length} image(s) in '${imgDir}' have no label (neither *_gtFine_labelTrainIds.png ` +
        `nor *_gtFine_labelIds.png beside them in ${gtDir}), e.g. ${missing.slice(0, 3).join(", ")}`,
      "images-without-labels",
      "unpack gtFine for this split, or remove the images that have no annotation",
    );
  }
  if (!items.length) {
    throw new DataError(
      `Cityscapes: no *_leftImg8bit.png images under '${imgDir}/<city>/'`,
      "no-images",
      "check dataset_root and mode; the images must be one folder level below the split (per city)",
    );
  }
  items.sort((a, b) => byPath(a.image, b.image));
  return {
    type: "Cityscapes",
    root,
    mode,
    numClasses: 19,
    ignoreIndex: 255,
    classNames: [...CITYSCAPES_CLASS_NAMES],
    items,
    luts: cityscapesLuts(),
    transforms: o.transforms ?? [],
    source: imgDir,
  };
}

export interface ListDatasetOptions {
  dataset_root: string;
  mode?: Mode;
  num_classes: number;
  ignore_index?: number;
  separator?: string;
  train_path?: string;
  val_path?: string;
  test_path?: string;
  transforms?: TransformSpec[];
  class_names?: string[];
}

/**
 * PaddleSeg's generic `Dataset`: a list file of `image<sep>label` lines (paths relative to
 * dataset_root). The list file path is taken relative to the working directory as PaddleSeg does, or,
 * if it is not found there, relative to dataset_root.
 */
export async function openListDataset(o: ListDatasetOptions): Promise<SegDataset> {
  const mode = o.mode ?? "train";
  const root = o.dataset_root;
  const sep = o.separator ?? " ";
  const ignore = o.ignore_index ?? 255;
  if (!Number.isInteger(o.num_classes) || o.num_classes < 1 || o.num_classes > 255) {
    throw new DataError(
      `Dataset: num_classes must be an integer in 1..255, got ${o.num_classes}`,
      "bad-config",
    );
  }
  if (!(await isDir(root))) {
    throw new DataError(
      `Dataset: dataset_root '${root}' does not exist or is not a folder`,
      "missing-folder",
    );
  }
  const key = `${mode}_path` as const;
  const given = o[key];
  if (!given) throw new DataError(`Dataset: ${key} is required for mode '${mode}'`, "bad-config");
  const listPath = (await isFile(given)) ? given : path.join(root, given);
  if (!(await isFile(listPath))) {
    throw new DataError(
      `Dataset: list file '${given}' not found (looked in the working directory and in '${root}')`,
      "missing-list-file",
    );
  }
  let text: string;
  try {
    text = new TextDecoder().decode(
      await readFileBounded(listPath, getLimits().textMaxBytes, raiseHint("textMaxBytes")),
    );
  } catch (e) {
    const why = e instanceof FileCheckError ? e.reason : `cannot be read: ${(e as Error).message}`;
    throw new DataError(`Dataset: list file '${listPath}' ${why}`, "bad-list-file");
  }
  const items: DataItem[] = [];
  const missing: string[] = [], missingImages: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const parts = line.split(sep);
    if (parts.length !== 2 && mode !== "test") {
      throw new DataError(
        `Dataset: '${listPath}' line ${i + 1}: expected 'image${
          sep === " " ? " " : sep
        }label', got '${line}'`,
        "bad-list-file",
        `each line must hold exactly two paths separated by ${
          JSON.stringify(sep)
        } (set 'separator' if yours differs)`,
      );
    }
    const image = path.join(root, parts[0]);
    const label = parts.length >= 2 ? path.join(root, parts[1]) : null;
    if (!(await isFile(image))) missingImages.push(`${image} (line ${i + 1})`);
    if (label !== null && !(await isFile(label))) missing.push(`${label} (line ${i + 1})`);
    items.push({ image, label, labelKind: "raw" });
  }
  if (missingImages.length) {
    throw new DataError(
      `Dataset: ${missingImages.length} image file(s) listed in '${listPath}' do not exist, e.g. ${
        missingImages.slice(0, 3).join(", ")
      }`,
      "missing-images",
      "fix the paths in the list file (they are relative to dataset_root)",
    );
  }
  if (missing.length) {
    throw new DataError(
      `Dataset: ${missing.length} label file(s) listed in '${listPath}' do not exist, e.g. ${
        missing.slice(0, 3).join(", ")
      }`,
      "images-without-labels",
      "fix the paths in the list file (they are relative to dataset_root)",
    );
  }
  if (!items.length) throw new DataError(`Dataset: list file '${listPath}' has no entries`, "no-images");
  return {
    type: "Dataset",
    root,
    mode,
    numClasses: o.num_classes,
    ignoreIndex: ignore,
    classNames: o.class_names ?? null,
    items,
    luts: { raw: genericLut(o.num_classes, ignore) },
    transforms: o.transforms ?? [],
    source: listPath,
  };
}

// ---------------------------------------------------------------------------------------------------
// reading samples

export interface LoadedItem {
  image: RgbImage;
  /** [height, width] uint8 class ids and ds.ignoreIndex, or null (no label). */
  label: Uint8Array | null;
  width: number;
  height: number;
}

/** Value histogram (256 bins) of a 1-channel label. */
export function histogram256(data: Uint8Array | Uint16Array): Uint32Array {
  const h = new Uint32Array(256);
  for (let i = 0; i < data.length; i++) h[data[i] > 255 ? 255 : data[i]]++;
  return h;
}

/**
 * Reduces a decoded label PNG to one uint8 channel: gray as is, palette indices as is, RGB(A) only when
 * all colour channels are equal (a gray mask saved as RGB). Throws for colour masks and 16-bit values > 255.
 */
export function labelChannel(raw: RawImage, file: string): Uint8Array {
  const n = raw.width * raw.height;
  const c = raw.channels, d = raw.data;
  if (c === 1 && raw.depth === 8) return d as Uint8Array;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = d[i * c];
    if (c >= 3) {
      const g = d[i * c + 1], b = d[i * c + 2];
      if (r !== g || g !== b) {
        throw new DataError(
          `label '${file}' is an RGB colour mask (pixel ${i % raw.width},${Math.floor(i / raw.width)} is ` +
            `[${r}, ${g}, ${b}]); labels must hold one class id per pixel`,
          "rgb-colour-mask",
          "convert the colours to class ids (for Cityscapes use the *_gtFine_labelTrainIds.png or " +
            "*_gtFine_labelIds.png files, not *_gtFine_color.png)",
        );
      }
    }
    if (r > 255) sixteenBit(file, r);
    out[i] = r;
  }
  return out;
}

function sixteenBit(file: string, v: number): never {
  throw new DataError(
    `label '${file}' is a 16-bit PNG with value ${v} > 255 (an instance-id map?)`,
    "label-16-bit",
    "use the semantic label file (for Cityscapes *_gtFine_labelTrainIds.png, not *_gtFine_instanceIds.png)",
  );
}

/** Maps file values to batch values through the item's table; throws naming the file for invalid values. */
export function mapLabel(ds: SegDataset, item: DataItem, values: Uint8Array): Uint8Array {
  const lut = ds.luts[item.labelKind];
  if (!lut) throw new Error(`dataset has no table for label kind '${item.labelKind}'`);
  const table = new Int16Array(lut);
  const out = new Uint8Array(values.length);
  let bad = false;
  for (let i = 0; i < values.length; i++) {
    const v = table[values[i]];
    if (v < 0) bad = true;
    out[i] = v;
  }
  if (bad) throw labelValueError(ds, item, histogram256(values));
  return out;
}

/** The error for label values outside the class set, with a diagnosis (see check.ts) when one applies. */
export function labelValueError(ds: SegDataset, item: DataItem, hist: Uint32Array): DataError {
  const lut = ds.luts[item.labelKind]!;
  const bad: number[] = [];
  for (let v = 0; v < 256; v++) if (hist[v] > 0 && lut[v] < 0) bad.push(v);
  const d = diagnoseLabelValues(hist, ds, item.labelKind);
  const what = item.labelKind === "labelIds"
    ? "Cityscapes label ids (0..33)"
    : `the class set (0..${ds.numClasses - 1}, ignore ${ds.ignoreIndex})`;
  return new DataError(
    `label '${item.label}' has value(s) ${bad.slice(0, 10).join(", ")}${
      bad.length > 10 ? ", ..." : ""
    } outside ${what}` +
      (d ? `: ${d.message}` : ""),
    d?.code ?? "values-above-num-classes",
    d?.fix ??
      (ds.type === "Dataset"
        ? `if these are classes, set num_classes to ${
          Math.max(...bad) + 1
        }; if one marks unlabelled pixels, ` +
          `set ignore_index to it`
        : "check that the files are the dataset's semantic labels"),
  );
}

export interface Diagnosis {
  code: string;
  message: string;
  fix: string;
}

/**
 * Recognises common label mix-ups from a value histogram: 0/255 binary masks, Cityscapes labelIds where
 * trainIds are expected and the reverse. Returns null when nothing specific is recognised.
 */
export function diagnoseLabelValues(hist: Uint32Array, ds: SegDataset, kind: LabelKind): Diagnosis | null {
  const total = hist.reduce((a, b) => a + b, 0);
  const present: number[] = [];
  for (let v = 0; v < 256; v++) if (hist[v]) present.push(v);
  const only = (set: number[]) => present.every((v) => set.includes(v));
  if (present.includes(255) && only([0, 255]) && ds.ignoreIndex === 255 && hist[255] / total > 0.01) {
    return {
      code: "binary-0-255",
      message: "a 0/255 binary mask: 255 is the ignore value, so the foreground would never be learned",
      fix: "store the mask as 0/1 (divide by 255) and use num_classes: 2",
    };
  }
  const cityscapesLike = ds.numClasses === 19;
  if (
    kind !== "labelIds" && cityscapesLike && present.some((v) => v >= 19 && v <= 33) &&
    present.every((v) => v <= 33 || v === 255)
  ) {
    return {
      code: "labelIds-as-trainIds",
      message:
        "the values look like Cityscapes label ids (7 road, 11 building, 26 car ...), not train ids (0..18)",
      fix:
        "use *_gtFine_labelIds.png files under their own name (they are converted with the official table) " +
        "or regenerate *_gtFine_labelTrainIds.png with cityscapesScripts' createTrainIdLabelImgs",
    };
  }
  if (kind === "labelIds") {
    const voidShare = present.filter((v) => v <= 6).reduce((s, v) => s + hist[v], 0) / Math.max(total, 1);
    if (present.includes(255) || (present.every((v) => v <= 18) && voidShare > 0.5)) {
      return {
        code: "trainIds-as-labelIds",
        message: "a *_gtFine_labelIds.png file that holds train ids (0..18, 255), not label ids (0..33)",
        fix:
          "rename these files to *_gtFine_labelTrainIds.png (they are used as they are) or regenerate the " +
          "labelIds from the polygons",
      };
    }
  }
  return null;
}

/** Reads an item's image and (mapped) label; errors name the files. */
export async function loadItem(ds: SegDataset, index: number): Promise<LoadedItem> {
  const item = ds.items[index];
  if (!item) throw new Error(`dataset index ${index} out of range (0..${ds.items.length - 1})`);
  const [image, rawLabel] = await Promise.all([
    readImageRgb(item.image),
    item.label ? readLabelImage(item.label) : Promise.resolve(null),
  ]);
  let label: Uint8Array | null = null;
  if (rawLabel) {
    if (rawLabel.width !== image.width || rawLabel.height !== image.height) {
      throw new DataError(
        `size mismatch: image '${item.image}' is ${image.width}x${image.height} but its label '${item.label}' is ` +
          `${rawLabel.width}x${rawLabel.height}`,
        "size-mismatch",
        "pair each image with its own label (check the list file or the folder layout)",
      );
    }
    label = mapLabel(ds, item, labelChannel(rawLabel, item.label!));
  }
  return { image, label, width: image.width, height: image.height };
}
