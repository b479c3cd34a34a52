/** Small layout helpers shared by the figure builders (subplot grids, colours, number formatting). */
import { CITYSCAPES_CLASS_NAMES, CITYSCAPES_PALETTE } from "../data/cityscapes_labels.ts";
import type { ClassInfo } from "./types.ts";

/** Base layout: white background, readable fonts, margins that leave room for titles. */
export function baseLayout(title: string, height: number): Record<string, unknown> {
  return {
    title: { text: title, x: 0.02, xanchor: "left", font: { size: 16 } },
    height,
    autosize: true,
    margin: { l: 64, r: 24, t: 72, b: 96 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    font: { family: "Helvetica, Arial, sans-serif", size: 12, color: "#222" },
    legend: LEGEND_BELOW,
    hovermode: "closest",
  };
}

/**
 * A horizontal legend pinned to the bottom of the figure (container coordinates, plotly.js ≥ 2.23), so it
 * never collides with the x-axis titles above it; the bottom margin must leave room for it.
 */
export const LEGEND_BELOW: Record<string, unknown> = {
  orientation: "h",
  xref: "container",
  yref: "container",
  x: 0.01,
  xanchor: "left",
  y: 0.005,
  yanchor: "bottom",
};

/** Bottom margin for an x-axis title plus `rows` legend rows. */
export function bottomMargin(rows: number): number {
  return 64 + 22 * rows;
}

const AXIS_STYLE = {
  showgrid: true,
  gridcolor: "#e6e6e6",
  zeroline: false,
  linecolor: "#888",
  showline: true,
};

export interface Grid {
  /** Axis entries to spread into the layout (`xaxis`, `yaxis`, `xaxis2`, ...). */
  axes: Record<string, unknown>;
  /** Subplot titles as annotations. */
  annotations: Record<string, unknown>[];
  /** Trace axis references for cell (row, col), 0-based, row 0 on top. */
  ref(row: number, col: number): { xaxis: string; yaxis: string };
  /** Layout key suffix for cell (row, col): "" for the first, "2", "3", ... */
  key(row: number, col: number): string;
}

/** A rows × cols grid of cartesian subplots (like plotly's make_subplots, without the Python). */
export function grid(
  rows: number,
  cols: number,
  opts: { titles?: (string | null)[]; hgap?: number; vgap?: number; matchX?: boolean } = {},
): Grid {
  const hgap = opts.hgap ?? 0.08;
  const vgap = opts.vgap ?? (rows > 1 ? 0.12 : 0);
  const w = (1 - hgap * (cols - 1)) / cols;
  const h = (1 - vgap * (rows - 1)) / rows;
  const axes: Record<string, unknown> = {};
  const annotations: Record<string, unknown>[] = [];
  const key = (r: number, c: number) => {
    const n = r * cols + c + 1;
    return n === 1 ? "" : String(n);
  };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const k = key(r, c);
      const x0 = c * (w + hgap), y1 = 1 - r * (h + vgap);
      axes[`xaxis${k}`] = {
        ...AXIS_STYLE,
        domain: [x0, x0 + w],
        anchor: `y${k}`,
        ...(opts.matchX && k !== "" ? { matches: "x" } : {}),
      };
      axes[`yaxis${k}`] = { ...AXIS_STYLE, domain: [y1 - h, y1], anchor: `x${k}` };
      const t = opts.titles?.[r * cols + c];
      if (t) {
        annotations.push({
          text: `<b>${t}</b>`,
          x: x0 + w / 2,
          y: y1,
          xref: "paper",
          yref: "paper",
          xanchor: "center",
          yanchor: "bottom",
          showarrow: false,
          font: { size: 13 },
        });
      }
    }
  }
  return { axes, annotations, key, ref: (r, c) => ({ xaxis: `x${key(r, c)}`, yaxis: `y${key(r, c)}` }) };
}

/** plotly's default qualitative colours (for series that are not classes). */
export const SERIES_COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

export function rgb(c: readonly [number, number, number]): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Class names and palette, defaulting to Cityscapes; extra classes get generated names and colours. */
export function classInfo(n: number, info: ClassInfo = {}): { names: string[]; colors: string[] } {
  const srcNames = info.classNames ?? CITYSCAPES_CLASS_NAMES;
  const srcPal = info.palette ?? CITYSCAPES_PALETTE;
  const names: string[] = [];
  const colors: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(srcNames[i] ?? `class ${i}`);
    colors.push(srcPal[i] ? rgb(srcPal[i]) : SERIES_COLORS[i % SERIES_COLORS.length]);
  }
  return { names, colors };
}

/** Exponential moving average (TensorBoard-style smoothing with debiasing); weight 0 = identity. */
export function ema(values: readonly (number | null)[], weight: number): (number | null)[] {
  if (!(weight >= 0 && weight < 1)) throw new Error(`ema: weight must be in [0, 1), got ${weight}`);
  let acc = 0, norm = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    acc = weight * acc + (1 - weight) * v;
    norm = weight * norm + (1 - weight);
    return acc / norm;
  });
}

/** Fixed decimals, "–" for missing values: fmtMetric(0.82471) = "0.8247". */
export function fmtMetric(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return v.toFixed(digits);
}
