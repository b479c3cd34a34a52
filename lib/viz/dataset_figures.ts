/**
 * Figures about a dataset (notebook 01): the class histogram of the labels. Draws counts that
 * lib/data's dataset check (`checkDataset`) already made.
 */
import { emptyFigure } from "./charts.ts";
import { Figure } from "./figure.ts";
import { baseLayout, classInfo } from "./layout.ts";
import type { ClassInfo } from "./types.ts";

export interface ClassHistogramOptions extends ClassInfo {
  title?: string;
  /** Pixels with the ignore label (shown in the title). */
  ignorePixels?: number;
  /** Images in which each class occurs (hover text). */
  classImages?: readonly number[];
  /** Logarithmic y axis (default true: street scenes are dominated by road, building and sky). */
  logY?: boolean;
}

/** Share of labelled pixels per class, bars in the class colours (index = class id). */
export function classHistogram(classPixels: readonly number[], opts: ClassHistogramOptions = {}): Figure {
  const title = opts.title ?? "Class histogram (share of labelled pixels)";
  const total = classPixels.reduce((a, b) => a + b, 0);
  if (classPixels.length === 0 || total === 0) return emptyFigure(title, "no labelled pixels");
  const { names, colors } = classInfo(classPixels.length, opts);
  const share = classPixels.map((v) => v / total);
  const ign = opts.ignorePixels;
  const fullTitle = ign !== undefined
    ? `${title} — ${total.toLocaleString("en-US")} labelled, ${
      (100 * ign / (total + ign)).toFixed(1)
    }% ignored`
    : title;
  const layout = baseLayout(fullTitle, 420);
  layout.margin = { l: 64, r: 24, t: 72, b: 110 };
  layout.showlegend = false;
  layout.xaxis = { tickangle: -40, automargin: true };
  layout.yaxis = {
    title: { text: "share of labelled pixels" },
    type: (opts.logY ?? true) ? "log" : "linear",
    tickformat: ".2~%",
    showgrid: true,
    gridcolor: "#e6e6e6",
  };
  return new Figure({
    data: [{
      type: "bar",
      x: names,
      // log axes cannot draw 0: absent classes get no bar
      y: share.map((v) => (v > 0 ? v : null)),
      marker: { color: colors, line: { color: "#333", width: 0.5 } },
      customdata: classPixels.map((v, c) => [v, opts.classImages?.[c] ?? null]),
      hovertemplate: opts.classImages
        ? "%{x}<br>%{y:.2%} of labelled pixels<br>%{customdata[0]:,} pixels in %{customdata[1]} images<extra></extra>"
        : "%{x}<br>%{y:.2%} of labelled pixels<br>%{customdata[0]:,} pixels<extra></extra>",
    }],
    layout,
  });
}
