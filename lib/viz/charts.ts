/**
 * Figure builders for training and evaluation results: pure functions of the plain records in
 * `types.ts` (no I/O, no metric computation beyond rearranging and normalising for display).
 */
import { Figure } from "./figure.ts";
import { baseLayout, bottomMargin, classInfo, ema, fmtMetric, grid, SERIES_COLORS } from "./layout.ts";
import type { EvalRecord, TrainRecord } from "../train/run_record.ts";
import type { ClassInfo, PlotlyTrace } from "./types.ts";

/** A figure that only says there is nothing to show (keeps reports and notebooks uniform). */
export function emptyFigure(title: string, message: string, height = 220): Figure {
  const layout = baseLayout(title, height);
  layout.xaxis = { visible: false };
  layout.yaxis = { visible: false };
  layout.annotations = [{
    text: message,
    x: 0.5,
    y: 0.5,
    xref: "paper",
    yref: "paper",
    showarrow: false,
    font: { size: 14, color: "#777" },
  }];
  return new Figure({
    data: [{ type: "scatter", x: [], y: [], hoverinfo: "skip", showlegend: false }],
    layout,
  });
}

export interface LossCurveOptions {
  /** EMA smoothing weight in [0, 1) drawn over the raw (faint) curve; 0 draws the raw curve only. */
  smoothing?: number;
  title?: string;
}

/**
 * Training loss curves, one panel each: total, cross-entropy and (if the run has it) pixel contrast.
 * x = iteration. Raw values are drawn faint, the smoothed curve on top.
 */
export function lossCurves(train: readonly TrainRecord[], opts: LossCurveOptions = {}): Figure {
  const title = opts.title ?? "Training loss";
  if (train.length === 0) return emptyFigure(title, "no training records yet");
  const w = opts.smoothing ?? 0.6;
  const iters = train.map((r) => r.iter);
  const series: { name: string; values: (number | null)[] }[] = [
    { name: "total loss", values: train.map((r) => r.loss) },
    { name: "cross-entropy", values: train.map((r) => r.ce) },
  ];
  const contrast = train.map((r) => (r.contrast ?? null));
  if (contrast.some((v) => v !== null)) {
    series.push({ name: "pixel contrast (unweighted)", values: contrast });
  }
  const g = grid(series.length, 1, { titles: series.map((s) => s.name), vgap: 0.1, matchX: true });
  const data: PlotlyTrace[] = [];
  series.forEach((s, row) => {
    const color = SERIES_COLORS[row];
    data.push({
      type: "scatter",
      mode: "lines",
      name: "raw",
      legendgroup: "raw",
      showlegend: row === 0 && w > 0,
      x: iters,
      y: s.values,
      line: { color, width: 1 },
      opacity: w > 0 ? 0.3 : 1,
      hovertemplate: `iter %{x}<br>${s.name} %{y:.4f}<extra>raw</extra>`,
      ...g.ref(row, 0),
    });
    if (w > 0) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: `smoothed (EMA ${w})`,
        legendgroup: "smooth",
        showlegend: row === 0,
        x: iters,
        y: ema(s.values, w),
        line: { color, width: 2 },
        hovertemplate: `iter %{x}<br>${s.name} %{y:.4f}<extra>smoothed</extra>`,
        ...g.ref(row, 0),
      });
    }
  });
  const layout: Record<string, unknown> = {
    ...baseLayout(title, 220 * series.length + 80),
    ...g.axes,
    annotations: g.annotations,
  };
  const last = g.key(series.length - 1, 0);
  (layout[`xaxis${last}`] as Record<string, unknown>).title = { text: "iteration" };
  return new Figure({ data, layout });
}

/** Learning-rate schedule as logged (backbone group). */
export function lrCurve(
  train: readonly TrainRecord[],
  opts: { logY?: boolean; title?: string } = {},
): Figure {
  const title = opts.title ?? "Learning rate";
  if (train.length === 0) return emptyFigure(title, "no training records yet");
  const layout = baseLayout(title, 320);
  layout.margin = { l: 64, r: 24, t: 72, b: 56 };
  layout.showlegend = false;
  layout.xaxis = { title: { text: "iteration" }, showgrid: true, gridcolor: "#e6e6e6" };
  layout.yaxis = {
    title: { text: "learning rate" },
    type: opts.logY ? "log" : "linear",
    exponentformat: "e",
    showgrid: true,
    gridcolor: "#e6e6e6",
  };
  return new Figure({
    data: [{
      type: "scatter",
      mode: "lines",
      name: "lr",
      x: train.map((r) => r.iter),
      y: train.map((r) => r.lr),
      line: { color: SERIES_COLORS[4], width: 2 },
      hovertemplate: "iter %{x}<br>lr %{y:.3e}<extra></extra>",
    }],
    layout,
  });
}

/** Groups eval records by mode, keeping each group sorted by iteration. */
export function byMode(evals: readonly EvalRecord[]): Map<string, EvalRecord[]> {
  const m = new Map<string, EvalRecord[]>();
  for (const e of evals) {
    if (!m.has(e.mode)) m.set(e.mode, []);
    m.get(e.mode)!.push(e);
  }
  for (const list of m.values()) list.sort((a, b) => a.iter - b.iter);
  return m;
}

/**
 * Validation curves: mIoU and pixel accuracy (left) and validation loss (right, when logged), one
 * series per evaluation mode; the mode is in every series name and hover label.
 */
export function valCurves(evals: readonly EvalRecord[], opts: { title?: string } = {}): Figure {
  const title = opts.title ?? "Validation";
  if (evals.length === 0) return emptyFigure(title, "no evaluation records yet");
  const groups = byMode(evals);
  const hasLoss = evals.some((e) => e.valLoss !== null && e.valLoss !== undefined);
  const g = grid(1, hasLoss ? 2 : 1, {
    titles: hasLoss ? ["mIoU and pixel accuracy", "validation loss"] : [],
  });
  const data: PlotlyTrace[] = [];
  let i = 0;
  for (const [mode, list] of groups) {
    const color = SERIES_COLORS[i++ % SERIES_COLORS.length];
    const x = list.map((e) => e.iter);
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: `mIoU [${mode}]`,
      x,
      y: list.map((e) => e.mIoU),
      line: { color, width: 2 },
      hovertemplate: `iter %{x}<br>mIoU %{y:.4f} [${mode}]<extra></extra>`,
      ...g.ref(0, 0),
    });
    data.push({
      type: "scatter",
      mode: "lines+markers",
      name: `acc [${mode}]`,
      x,
      y: list.map((e) => e.acc),
      line: { color, width: 1.5, dash: "dot" },
      marker: { symbol: "diamond" },
      hovertemplate: `iter %{x}<br>acc %{y:.4f} [${mode}]<extra></extra>`,
      ...g.ref(0, 0),
    });
    if (hasLoss) {
      data.push({
        type: "scatter",
        mode: "lines+markers",
        name: `val loss [${mode}]`,
        x,
        y: list.map((e) => e.valLoss ?? null),
        line: { color, width: 2, dash: "dash" },
        hovertemplate: `iter %{x}<br>val loss %{y:.4f} [${mode}]<extra></extra>`,
        ...g.ref(0, 1),
      });
    }
  }
  const layout: Record<string, unknown> = {
    ...baseLayout(title, 360 + 22 * groups.size),
    ...g.axes,
    annotations: g.annotations,
  };
  layout.margin = { l: 64, r: 24, t: 72, b: bottomMargin(groups.size) };
  (layout.xaxis as Record<string, unknown>).title = { text: "iteration" };
  (layout.yaxis as Record<string, unknown>).title = { text: "fraction" };
  if (hasLoss) (layout.xaxis2 as Record<string, unknown>).title = { text: "iteration" };
  return new Figure({ data, layout });
}

/** What the per-class figures need from an evaluation. */
export type ClassEval = Pick<EvalRecord, "classIoU" | "mode"> & Partial<Pick<EvalRecord, "iter" | "mIoU">>;

/** Per-class IoU bars in the class colours, with the mIoU as a dashed line. */
export function classIoUBars(ev: ClassEval, info: ClassInfo & { title?: string } = {}): Figure {
  const n = ev.classIoU.length;
  if (n === 0) throw new Error("classIoUBars: classIoU is empty");
  const { names, colors } = classInfo(n, info);
  const iou = ev.classIoU.map((v) => (Number.isFinite(v) ? v : null));
  const where = ev.iter !== undefined ? ` @ iter ${ev.iter}` : "";
  const miou = ev.mIoU !== undefined ? ` — mIoU ${fmtMetric(ev.mIoU)}` : "";
  const title = info.title ?? `Per-class IoU${where}${miou} [${ev.mode}]`;
  const layout = baseLayout(title, 420);
  layout.margin = { l: 64, r: 24, t: 72, b: 110 };
  layout.xaxis = { tickangle: -40, automargin: true };
  layout.yaxis = { title: { text: "IoU" }, range: [0, 1.05], showgrid: true, gridcolor: "#e6e6e6" };
  const hasMean = ev.mIoU !== undefined && Number.isFinite(ev.mIoU);
  layout.showlegend = hasMean;
  layout.legend = { orientation: "h", x: 1, xanchor: "right", y: 1.0, yanchor: "bottom" };
  if (hasMean) {
    layout.shapes = [{
      type: "line",
      xref: "paper",
      x0: 0,
      x1: 1,
      y0: ev.mIoU,
      y1: ev.mIoU,
      line: { color: "#444", width: 1.5, dash: "dash" },
    }];
  }
  return new Figure({
    data: [
      {
        type: "bar",
        x: names,
        y: iou,
        marker: { color: colors, line: { color: "#333", width: 0.5 } },
        text: iou.map((v) => (v === null ? "n/a" : (100 * v).toFixed(1))),
        textposition: "outside",
        cliponaxis: false,
        showlegend: false,
        hovertemplate: `%{x}<br>IoU %{y:.4f} [${ev.mode}]<extra></extra>`,
      },
      ...(hasMean
        ? [{
          // legend entry for the dashed mIoU line (a layout shape has none)
          type: "scatter",
          mode: "lines",
          name: `mIoU ${fmtMetric(ev.mIoU)} [${ev.mode}]`,
          x: [null],
          y: [null],
          line: { color: "#444", width: 1.5, dash: "dash" },
        }]
        : []),
    ],
    layout,
  });
}

export interface ConfusionOptions extends ClassInfo {
  /** "row": each ground-truth row sums to 1 (recall per class on the diagonal); "none": pixel counts. */
  normalize?: "row" | "none";
  /** Evaluation mode, shown in the title. */
  mode?: string;
  iter?: number;
  title?: string;
}

/** Row-normalises a confusion matrix; rows without pixels become null. */
export function rowNormalize(confusion: readonly (readonly number[])[]): (number | null)[][] {
  return confusion.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s > 0 ? v / s : null));
  });
}

/** Confusion-matrix heatmap: rows = ground truth, columns = prediction, class names on both axes. */
export function confusionHeatmap(
  confusion: readonly (readonly number[])[],
  opts: ConfusionOptions = {},
): Figure {
  const n = confusion.length;
  if (n === 0 || confusion.some((r) => r.length !== n)) {
    throw new Error(`confusionHeatmap: confusion must be a square n×n matrix (got ${n} rows)`);
  }
  const norm = opts.normalize ?? "row";
  const { names } = classInfo(n, opts);
  const z = norm === "row" ? rowNormalize(confusion) : confusion.map((r) => [...r]);
  const where = opts.iter !== undefined ? ` @ iter ${opts.iter}` : "";
  const mode = opts.mode ? ` [${opts.mode}]` : "";
  const title = opts.title ??
    `Confusion matrix${where}${mode}${
      norm === "row" ? " — row-normalised (rows: ground truth)" : " — pixels"
    }`;
  const size = Math.max(360, Math.min(900, 150 + 30 * n));
  const layout = baseLayout(title, size + 60);
  layout.margin = { l: 130, r: 24, t: 72, b: 130 };
  layout.xaxis = { title: { text: "predicted" }, tickangle: -45, automargin: true, constrain: "domain" };
  layout.yaxis = {
    title: { text: "ground truth" },
    autorange: "reversed",
    automargin: true,
    scaleanchor: "x",
    constrain: "domain",
  };
  const trace: PlotlyTrace = {
    type: "heatmap",
    x: names,
    y: names,
    z,
    // white -> dark blue (plotly's named "Blues" runs the other way round)
    colorscale: [[0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1, "#08306b"]],
    hoverongaps: false,
    hovertemplate: norm === "row"
      ? `true %{y}<br>pred %{x}<br>%{z:.3f} of the row${mode}<extra></extra>`
      : `true %{y}<br>pred %{x}<br>%{z} pixels${mode}<extra></extra>`,
    colorbar: { title: { text: norm === "row" ? "fraction" : "pixels" } },
  };
  if (norm === "row") {
    trace.zmin = 0;
    trace.zmax = 1;
  }
  if (n <= 30) {
    trace.texttemplate = norm === "row" ? "%{z:.2f}" : "%{z:.3s}";
    trace.textfont = { size: n > 12 ? 8 : 11 };
  }
  return new Figure({ data: [trace], layout });
}

/**
 * Pixel-contrast diagnostics over training: mean anchors per class, hard/easy anchors, mean positive
 * and negative cosine similarity, and the contrast term's share of the loss.
 */
export function contrastDiagnostics(
  train: readonly TrainRecord[],
  info: ClassInfo & { title?: string } = {},
): Figure {
  const title = info.title ?? "Pixel-contrast diagnostics";
  const rec = train.filter((r) => r.diagnostics);
  if (rec.length === 0) return emptyFigure(title, "no contrast diagnostics (CE-only run or none logged yet)");
  const g = grid(2, 2, {
    titles: [
      "anchors per class (mean per logged iteration)",
      "hard / easy anchors",
      "mean cosine similarity",
      "contrast share of the loss",
    ],
    hgap: 0.1,
    vgap: 0.22,
  });
  const data: PlotlyTrace[] = [];
  const apc = rec.map((r) => r.diagnostics!.anchorsPerClass).filter((a): a is number[] => Array.isArray(a));
  if (apc.length > 0) {
    const n = Math.max(...apc.map((a) => a.length));
    const mean = new Array(n).fill(0);
    for (const a of apc) for (let c = 0; c < a.length; c++) mean[c] += (a[c] ?? 0) / apc.length;
    const { names, colors } = classInfo(n, info);
    data.push({
      type: "bar",
      name: "anchors",
      showlegend: false,
      x: names,
      y: mean,
      marker: { color: colors, line: { color: "#333", width: 0.5 } },
      hovertemplate: "%{x}<br>%{y:.1f} anchors / iteration<extra></extra>",
      ...g.ref(0, 0),
    });
  }
  const iters = rec.map((r) => r.iter);
  const line = (name: string, y: (number | null)[], color: string, ref: { xaxis: string; yaxis: string }) =>
    data.push({
      type: "scatter",
      mode: "lines",
      name,
      x: iters,
      y,
      line: { color, width: 1.8 },
      hovertemplate: `iter %{x}<br>${name} %{y:.3f}<extra></extra>`,
      ...ref,
    });
  const d = (k: "hard" | "easy" | "posSim" | "negSim" | "contrastShare") =>
    rec.map((r) => r.diagnostics![k] ?? null);
  line("hard anchors", d("hard"), "#d62728", g.ref(0, 1));
  line("easy anchors", d("easy"), "#2ca02c", g.ref(0, 1));
  line("positive pairs", d("posSim"), "#1f77b4", g.ref(1, 0));
  line("negative pairs", d("negSim"), "#ff7f0e", g.ref(1, 0));
  line("contrast share", d("contrastShare"), "#9467bd", g.ref(1, 1));
  const layout: Record<string, unknown> = {
    ...baseLayout(title, 640),
    ...g.axes,
    annotations: g.annotations,
  };
  (layout.xaxis as Record<string, unknown>).tickangle = -40;
  (layout.yaxis3 as Record<string, unknown>).range = [-1, 1];
  (layout.yaxis4 as Record<string, unknown>).range = [0, 1];
  for (const k of ["xaxis2", "xaxis3", "xaxis4"]) {
    (layout[k] as Record<string, unknown>).title = { text: "iteration" };
  }
  return new Figure({ data, layout });
}
