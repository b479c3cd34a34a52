/**
 * Image / ground truth / prediction overlays: label maps coloured with a palette, blended over the RGB
 * image, encoded as PNG data URLs and shown as plotly `image` traces (no files, works offline).
 *
 * Inputs are host arrays: `image` is RGB uint8, row-major HWC, length H·W·3; label maps are trainIds,
 * row-major H·W, with `ignoreIndex` (255) for unlabelled pixels.
 */
import { encodePngBytes } from "../data/image_io.ts";
import { Figure } from "./figure.ts";
import { baseLayout, classInfo, grid } from "./layout.ts";
import type { ClassInfo, PlotlyTrace } from "./types.ts";
import { CITYSCAPES_PALETTE } from "../data/cityscapes_labels.ts";

export interface RgbImage {
  /** RGB uint8, row-major HWC, length width·height·3. */
  data: Uint8Array;
  width: number;
  height: number;
}

export type Palette = readonly (readonly [number, number, number])[];

function checkSize(name: string, len: number, want: number): void {
  if (len !== want) throw new Error(`${name}: expected ${want} values, got ${len}`);
}

/** Colours a label map: class c -> palette[c]; ignore/unknown labels -> `ignoreColor`. Returns RGB HWC. */
export function colorizeLabels(
  labels: ArrayLike<number>,
  width: number,
  height: number,
  palette: Palette = CITYSCAPES_PALETTE,
  opts: { ignoreIndex?: number; ignoreColor?: readonly [number, number, number] } = {},
): Uint8Array {
  checkSize("colorizeLabels: labels", labels.length, width * height);
  const ign = opts.ignoreColor ?? [0, 0, 0];
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    const col = c !== (opts.ignoreIndex ?? 255) && c >= 0 && c < palette.length ? palette[c] : ign;
    out[3 * i] = col[0];
    out[3 * i + 1] = col[1];
    out[3 * i + 2] = col[2];
  }
  return out;
}

/**
 * Blends label colours over an image: out = (1-alpha)·image + alpha·colour where the label is valid, the
 * image itself where it is ignored.
 */
export function blendLabels(
  image: RgbImage,
  labels: ArrayLike<number>,
  palette: Palette = CITYSCAPES_PALETTE,
  alpha = 0.5,
  ignoreIndex = 255,
): Uint8Array {
  const n = image.width * image.height;
  checkSize("blendLabels: image", image.data.length, n * 3);
  checkSize("blendLabels: labels", labels.length, n);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`blendLabels: alpha must be in [0, 1], got ${alpha}`);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    const valid = c !== ignoreIndex && c >= 0 && c < palette.length;
    for (let k = 0; k < 3; k++) {
      const v = image.data[3 * i + k];
      out[3 * i + k] = valid ? Math.round((1 - alpha) * v + alpha * palette[c][k]) : v;
    }
  }
  return out;
}

/** Marks pixels where prediction ≠ ground truth (ignored pixels black, correct dark grey, errors red). */
export function errorMap(gt: ArrayLike<number>, pred: ArrayLike<number>, ignoreIndex = 255): Uint8Array {
  checkSize("errorMap: prediction", pred.length, gt.length);
  const out = new Uint8Array(gt.length * 3);
  for (let i = 0; i < gt.length; i++) {
    const v = gt[i] === ignoreIndex ? 0 : gt[i] === pred[i] ? 60 : 255;
    out[3 * i] = v;
    out[3 * i + 1] = gt[i] === ignoreIndex || gt[i] === pred[i] ? v : 40;
    out[3 * i + 2] = gt[i] === ignoreIndex || gt[i] === pred[i] ? v : 40;
  }
  return out;
}

/** Encodes RGB HWC pixels as a `data:image/png;base64,...` URL. */
export function pngDataUrl(rgb: Uint8Array, width: number, height: number): string {
  checkSize("pngDataUrl: rgb", rgb.length, width * height * 3);
  const png = encodePngBytes({ data: rgb, width, height, channels: 3, depth: 8 });
  return `data:image/png;base64,${base64(png)}`;
}

export function base64(bytes: Uint8Array): string {
  let s = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(s);
}

export interface OverlayOptions extends ClassInfo {
  /** Label opacity over the image, in [0, 1] (1 = colour map only). Default 0.55. */
  alpha?: number;
  ignoreIndex?: number;
  /** Add an error panel (needs both label maps). */
  errors?: boolean;
  title?: string;
  /** Height of the figure in px (default from the image aspect, 2-4 panels side by side). */
  height?: number;
}

/**
 * Image, ground truth and prediction side by side (each optional but the image). The label panels are
 * the palette colours blended over the image; a legend lists the classes present in either map.
 */
export function overlayFigure(
  image: RgbImage,
  labels: { groundTruth?: ArrayLike<number>; prediction?: ArrayLike<number> },
  opts: OverlayOptions = {},
): Figure {
  const { width: w, height: h } = image;
  checkSize("overlayFigure: image", image.data.length, w * h * 3);
  const alpha = opts.alpha ?? 0.55;
  const ign = opts.ignoreIndex ?? 255;
  const pal: Palette = opts.palette ?? CITYSCAPES_PALETTE;
  const panels: { title: string; rgb: Uint8Array }[] = [{ title: "image", rgb: image.data }];
  if (labels.groundTruth) {
    panels.push({ title: "ground truth", rgb: blendLabels(image, labels.groundTruth, pal, alpha, ign) });
  }
  if (labels.prediction) {
    panels.push({ title: "prediction", rgb: blendLabels(image, labels.prediction, pal, alpha, ign) });
  }
  if (opts.errors && labels.groundTruth && labels.prediction) {
    panels.push({ title: "errors (red)", rgb: errorMap(labels.groundTruth, labels.prediction, ign) });
  }
  const g = grid(1, panels.length, { titles: panels.map((p) => p.title), hgap: 0.015 });
  const data: PlotlyTrace[] = panels.map((p, i) => ({
    type: "image",
    source: pngDataUrl(p.rgb, w, h),
    name: p.title,
    hoverinfo: "skip",
    ...g.ref(0, i),
  }));
  // Legend: one marker per class present (dummy points outside the image, legend only).
  const present = new Set<number>();
  for (const m of [labels.groundTruth, labels.prediction]) {
    if (!m) continue;
    for (let i = 0; i < m.length; i++) if (m[i] !== ign && m[i] >= 0 && m[i] < pal.length) present.add(m[i]);
  }
  const { names, colors } = classInfo(pal.length, { ...opts, palette: pal });
  for (const c of [...present].sort((a, b) => a - b)) {
    data.push({
      type: "scatter",
      mode: "markers",
      name: names[c],
      x: [null],
      y: [null],
      marker: { color: colors[c], size: 10, symbol: "square" },
      hoverinfo: "skip",
      xaxis: "x",
      yaxis: "y",
    });
  }
  const panelAspect = h / w;
  const height = opts.height ??
    Math.round(
      Math.min(
        900,
        Math.max(260, (1100 / panels.length) * panelAspect + 100 + 22 * Math.ceil(present.size / 10)),
      ),
    );
  const layout: Record<string, unknown> = {
    ...baseLayout(opts.title ?? "Image, ground truth and prediction", height),
    ...g.axes,
  };
  layout.annotations = g.annotations;
  const legendRows = Math.ceil(present.size / 10);
  layout.margin = { l: 8, r: 8, t: 72, b: 12 + 22 * legendRows };
  for (let i = 0; i < panels.length; i++) {
    const k = g.key(0, i);
    Object.assign(layout[`xaxis${k}`] as Record<string, unknown>, {
      visible: false,
      range: [-0.5, w - 0.5],
      showgrid: false,
    });
    Object.assign(layout[`yaxis${k}`] as Record<string, unknown>, {
      visible: false,
      range: [h - 0.5, -0.5],
      scaleanchor: `x${k}`,
      showgrid: false,
    });
  }
  return new Figure({ data, layout });
}
