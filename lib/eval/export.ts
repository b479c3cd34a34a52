/**
 * Exports of predicted class maps:
 *   - trainId PNGs (8-bit gray, value = class id);
 *   - Cityscapes labelId PNGs, the official evaluator's input (`cityscapesscripts`
 *     `evalPixelLevelSemanticLabeling` matches `<city>_<seq>_<frame>*.png` anywhere under CITYSCAPES_RESULTS;
 *     we write `<city>_<seq>_<frame>_leftImg8bit.png`);
 *   - colour masks and overlays in the official Cityscapes palette (other class counts: PaddleSeg's
 *     `get_color_map_list`), blended over the image as PaddleSeg's `visualize` does
 *     (out = (1−alpha)·image + alpha·colour; PaddleSeg's weight 0.6 on the image is alpha = 0.4).
 */
import { join } from "node:path";
import { CITYSCAPES_PALETTE, TRAIN_ID_TO_ID } from "../data/cityscapes_labels.ts";
import { writePng } from "../data/image_io.ts";

export type Rgb = readonly [number, number, number];

/** PaddleSeg's `get_color_map_list(num_classes)` (the PASCAL VOC bit-interleaved colour map). */
export function colorMapList(numClasses: number): Rgb[] {
  const out: Rgb[] = [];
  for (let i = 0; i < numClasses; i++) {
    const c = [0, 0, 0];
    for (let lab = i, j = 0; lab; lab >>= 3, j++) {
      for (let k = 0; k < 3; k++) c[k] |= ((lab >> k) & 1) << (7 - j);
    }
    out.push([c[0], c[1], c[2]]);
  }
  return out;
}

/** The official Cityscapes palette for 19 classes, PaddleSeg's colour map otherwise. */
export function defaultPalette(numClasses: number): Rgb[] {
  return numClasses === 19
    ? CITYSCAPES_PALETTE.map((c) => [c[0], c[1], c[2]] as Rgb)
    : colorMapList(numClasses);
}

/**
 * The file stem an image is exported under: directories, the extension and a trailing `_leftImg8bit`
 * dropped, e.g. `leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png` →
 * `frankfurt_000000_000294`.
 */
export function exportStem(name: string): string {
  const base = name.replace(/\\/g, "/").split("/").pop() ?? name;
  return base.replace(/\.(png|jpe?g|bmp|tiff?)$/i, "").replace(/_leftImg8bit$/, "");
}

const CITYSCAPES_STEM = /^[A-Za-z-]+_\d+_\d+$/;

/** `<city>_<seq>_<frame>` of a Cityscapes image name, or a clear error. */
export function cityscapesStem(name: string): string {
  const stem = exportStem(name);
  if (!CITYSCAPES_STEM.test(stem)) {
    throw new Error(
      `'${name}' does not follow Cityscapes' <city>_<seq>_<frame>_leftImg8bit naming; the official ` +
        "evaluator could not match its prediction to a ground-truth file",
    );
  }
  return stem;
}

function checkSize(what: string, data: ArrayLike<number>, height: number, width: number, ch = 1): void {
  if (data.length !== height * width * ch) {
    throw new Error(`${what}: ${data.length} values for a ${height}x${width}x${ch} image`);
  }
}

/** Class ids → 8-bit values (errors on ids outside 0..255). */
function toUint8(pred: ArrayLike<number>, what: string): Uint8Array {
  const out = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    const v = pred[i];
    if (!(v >= 0 && v <= 255)) throw new Error(`${what}: class id ${v} at pixel ${i} does not fit 8 bits`);
    out[i] = v;
  }
  return out;
}

/** trainIds → Cityscapes labelIds with the official table (255 → 0 'unlabeled'). */
export function trainIdsToLabelIds(pred: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    const v = pred[i];
    if (!(v >= 0 && v < 19) && v !== 255) throw new Error(`trainIdsToLabelIds: trainId ${v} at pixel ${i}`);
    out[i] = TRAIN_ID_TO_ID[v];
  }
  return out;
}

/** Class ids → RGB (HWC uint8); ids without a colour (e.g. 255) become black. */
export function colorize(pred: ArrayLike<number>, palette: readonly Rgb[]): Uint8Array {
  const out = new Uint8Array(pred.length * 3);
  for (let i = 0; i < pred.length; i++) {
    const c = palette[pred[i]];
    if (c) out.set(c, i * 3);
  }
  return out;
}

/** out = round((1 − alpha)·image + alpha·colour), per channel (image and colour RGB HWC uint8). */
export function blend(image: Uint8Array, color: Uint8Array, alpha: number): Uint8Array {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`overlay alpha must lie in [0, 1] (got ${alpha})`);
  if (image.length !== color.length) throw new Error(`blend: ${image.length} vs ${color.length} values`);
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) out[i] = Math.round((1 - alpha) * image[i] + alpha * color[i]);
  return out;
}

/**
 * Normalised float image (HWC, `(v/255 − mean)/std`, the seed's Normalize with mean = std = 0.5) back to
 * RGB uint8, for overlays when the original pixels are not at hand.
 */
export function denormalize(image: Float32Array, mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5]): Uint8Array {
  const out = new Uint8Array(image.length);
  for (let i = 0; i < image.length; i++) {
    const c = i % 3;
    out[i] = Math.max(0, Math.min(255, Math.round((image[i] * std[c] + mean[c]) * 255)));
  }
  return out;
}

export interface ExportOptions {
  /** Output folder; sub-folders `trainIds/`, `labelIds/`, `color/`, `overlay/` are created as needed. */
  dir: string;
  /** Write trainId PNGs (default true). */
  trainIds?: boolean;
  /** Write Cityscapes labelId PNGs for the official evaluator (19 classes, Cityscapes names; default false). */
  labelIds?: boolean;
  /** Write pure colour masks (default false). */
  color?: boolean;
  /** Write overlays of the colour mask on the image (default false). */
  overlay?: boolean;
  /** Colour weight of overlays (default 0.4, PaddleSeg's `visualize` weight 0.6 on the image). */
  alpha?: number;
  /** Colours per class id (default: Cityscapes for 19 classes, PaddleSeg's map otherwise). */
  palette?: readonly Rgb[];
}

export interface ExportItem {
  /** Image name or path; the file stem is taken from it (see `exportStem`). */
  name: string;
  /** Class ids, [H·W] row-major. */
  pred: ArrayLike<number>;
  height: number;
  width: number;
  numClasses: number;
  /** Original RGB HWC uint8 (for overlays). */
  rgb?: Uint8Array;
}

const made = new Set<string>();
async function ensureDir(dir: string): Promise<void> {
  if (made.has(dir)) return;
  await Deno.mkdir(dir, { recursive: true });
  made.add(dir);
}

/** Writes the requested exports of one prediction; returns the paths written. */
export async function exportPrediction(item: ExportItem, opts: ExportOptions): Promise<string[]> {
  const { name, pred, height, width } = item;
  checkSize(`prediction of '${name}'`, pred, height, width);
  const written: string[] = [];
  const put = async (sub: string, file: string, data: Uint8Array, channels: number) => {
    const dir = join(opts.dir, sub);
    await ensureDir(dir);
    const path = join(dir, file);
    await writePng(path, { data, width, height, channels, depth: 8 });
    written.push(path);
  };
  if (opts.trainIds ?? true) {
    await put("trainIds", `${exportStem(name)}.png`, toUint8(pred, `prediction of '${name}'`), 1);
  }
  if (opts.labelIds) {
    if (item.numClasses !== 19) {
      throw new Error(
        `labelIds export needs the 19 Cityscapes classes (this dataset has ${item.numClasses})`,
      );
    }
    await put("labelIds", `${cityscapesStem(name)}_leftImg8bit.png`, trainIdsToLabelIds(pred), 1);
  }
  if (opts.color || opts.overlay) {
    const palette = opts.palette ?? defaultPalette(item.numClasses);
    const color = colorize(pred, palette);
    if (opts.color) await put("color", `${exportStem(name)}.png`, color, 3);
    if (opts.overlay) {
      if (!item.rgb) throw new Error(`overlay of '${name}' needs the image's RGB pixels`);
      checkSize(`image of '${name}'`, item.rgb, height, width, 3);
      await put("overlay", `${exportStem(name)}.png`, blend(item.rgb, color, opts.alpha ?? 0.4), 3);
    }
  }
  return written;
}
