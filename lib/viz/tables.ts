/**
 * Small tables that display themselves like figures (HTML in Jupyter, aligned text elsewhere), for the
 * notebooks: evaluation metrics with their mode, embedding structure measures, dataset counts. Like the
 * charts, they only lay out numbers that lib/eval or lib/viz's measures already computed. No scripts, so
 * they also show in untrusted notebooks.
 */
import { escapeHtml, JUPYTER_DISPLAY } from "./figure.ts";
import { classInfo, fmtMetric } from "./layout.ts";
import type { ClassInfo } from "./types.ts";
import type { FeatureMeasures, FeatureSpaceResult } from "../eval/feature_space.ts";

export type Cell = string | number | null | undefined;

export interface TableOptions {
  /** A line under the table (plain text), e.g. what the numbers mean. */
  note?: string;
  /** Per-column swatch colours (CSS) drawn before the first column's text, one per row. */
  swatches?: (string | null)[];
}

/** A titled table; numbers are printed as given (format them before). */
export class Table {
  constructor(
    readonly title: string,
    readonly headers: readonly string[],
    readonly rows: readonly (readonly Cell[])[],
    readonly opts: TableOptions = {},
  ) {
    for (const [i, r] of rows.entries()) {
      if (r.length !== headers.length) {
        throw new Error(`Table '${title}': row ${i} has ${r.length} cells, expected ${headers.length}`);
      }
    }
  }

  toHTML(): string {
    const cell = (v: Cell) => (v === null || v === undefined ? "–" : String(v));
    const isNum = (v: Cell) =>
      typeof v === "number" || (typeof v === "string" && /^[-+]?[\d.,%e ]+$/.test(v));
    const head = this.headers.map((h) =>
      `<th style="text-align:left;padding:2px 10px;">${escapeHtml(h)}</th>`
    )
      .join("");
    const body = this.rows.map((r, i) => {
      const sw = this.opts.swatches?.[i];
      const tds = r.map((v, j) => {
        const align = isNum(v) && j > 0 ? "right" : "left";
        const mark = j === 0 && sw
          ? `<span style="display:inline-block;width:11px;height:11px;margin-right:6px;vertical-align:middle;` +
            `border:1px solid #555;background:${escapeHtml(sw)}"></span>`
          : "";
        return `<td style="text-align:${align};padding:2px 10px;font-variant-numeric:tabular-nums;">${mark}${
          escapeHtml(cell(v))
        }</td>`;
      }).join("");
      return `<tr style="border-bottom:1px solid #eee;">${tds}</tr>`;
    }).join("");
    const note = this.opts.note
      ? `<div style="color:#555;font-size:12px;margin-top:4px;">${escapeHtml(this.opts.note)}</div>`
      : "";
    return `<div class="pc-table" style="font:13px Helvetica,Arial,sans-serif;margin:4px 0;">` +
      `<div style="font-weight:bold;margin-bottom:4px;">${escapeHtml(this.title)}</div>` +
      `<table style="border-collapse:collapse;"><thead><tr style="border-bottom:1px solid #999;">${head}` +
      `</tr></thead><tbody>${body}</tbody></table>${note}</div>`;
  }

  /** Aligned plain text (terminals, `deno test`, the text/plain part of the Jupyter bundle). */
  toString(): string {
    const cells = [this.headers, ...this.rows].map((r) => r.map((v) => (v == null ? "–" : String(v))));
    const widths = this.headers.map((_, j) => Math.max(...cells.map((r) => r[j].length)));
    const lines = cells.map((r) =>
      r.map((v, j) => (j === 0 ? v.padEnd(widths[j]) : v.padStart(widths[j]))).join("  ")
    );
    return [this.title, ...lines, ...(this.opts.note ? [this.opts.note] : [])].join("\n");
  }

  [JUPYTER_DISPLAY](): Record<string, string> {
    return { "text/html": this.toHTML(), "text/plain": this.toString() };
  }
}

/** What {@link metricsTable} reads (lib/eval's `SegMetrics` has all of it). */
export interface MetricsLike {
  mIoU: number;
  acc: number;
  kappa: number;
  classIoU: readonly number[];
  classAcc?: readonly number[];
  classRecall?: readonly number[];
  labelArea?: readonly number[];
  numPixels?: number;
}

/**
 * The evaluation as two tables' worth of rows in one: the headline (mIoU, Acc, Kappa) with the mode in the
 * title, then one row per class (IoU, precision, recall, share of labelled pixels). Fractions as
 * percentages with 2 decimals, as PaddleSeg's logs print them.
 */
export function metricsTable(
  m: MetricsLike,
  mode: string,
  info: ClassInfo & { numImages?: number } = {},
): Table {
  const n = m.classIoU.length;
  const { names, colors } = classInfo(n, info);
  const pct = (
    v: number | undefined,
  ) => (v === undefined || !Number.isFinite(v) ? "–" : (100 * v).toFixed(2));
  const total = m.labelArea ? m.labelArea.reduce((a, b) => a + b, 0) : 0;
  const rows: Cell[][] = [];
  for (let c = 0; c < n; c++) {
    const absent = m.labelArea !== undefined && m.labelArea[c] === 0;
    rows.push([
      names[c],
      pct(m.classIoU[c]),
      pct(m.classAcc?.[c]),
      pct(m.classRecall?.[c]),
      m.labelArea
        ? (total > 0 ? (100 * m.labelArea[c] / total).toFixed(2) : "–") + (absent ? " (absent)" : "")
        : "–",
    ]);
  }
  const images = info.numImages !== undefined ? `, ${info.numImages} images` : "";
  return new Table(
    `mIoU ${pct(m.mIoU)}  ·  Acc ${pct(m.acc)}  ·  Kappa ${fmtMetric(m.kappa)}   [${mode}${images}]`,
    ["class", "IoU %", "precision %", "recall %", "pixels %"],
    rows,
    {
      swatches: colors,
      note: "IoU = TP / (TP + FP + FN) per class; mIoU = plain mean over all classes (absent classes count " +
        "as 0, as PaddleSeg). Acc = correctly labelled pixels / labelled pixels. Kappa = agreement beyond " +
        "chance. Ignored pixels (255) are not counted.",
    },
  );
}

export interface MeasuresRow {
  /** Model / panel name. */
  title: string;
  /** Layer name and width, e.g. "decoder (240-d)". */
  layer: string;
  measures: FeatureMeasures;
  /** Pixels measured. */
  pixels: number;
}

/** The embedding structure measures side by side (the captions of the feature-space figure). */
export function measuresTable(rows: readonly MeasuresRow[], title = "Structure of the feature space"): Table {
  return new Table(
    title,
    ["model", "layer", "intra-class cos", "inter-class cos", "intra − inter", "k-NN acc %", "pixels"],
    rows.map((r) => [
      r.title,
      r.layer,
      r.measures.separation.intra.toFixed(3),
      r.measures.separation.inter.toFixed(3),
      r.measures.separation.gap.toFixed(3),
      `${(100 * r.measures.knn.accuracy).toFixed(1)} (k=${r.measures.knn.k})`,
      r.pixels,
    ]),
    {
      note: "intra/inter: mean cosine similarity of two pixels of the same / of different classes " +
        "(macro-averaged over classes and class pairs); intra − inter is higher for tighter, better separated " +
        "classes and about 0 for unstructured features. k-NN acc: share of pixels whose k nearest other pixels " +
        "(cosine) vote for their own class, on the full-dimensional features.",
    },
  );
}

/**
 * {@link measuresTable} of a feature space (lib/eval's `featureSpace`): one row per model and layer, in
 * view order.
 */
export function featureSpaceTable(space: FeatureSpaceResult, title?: string): Table {
  const rows: MeasuresRow[] = space.views.flatMap((v) =>
    v.rows.map((r, i) => ({
      title: r.subject.title,
      layer: `${r.features.layer} (${r.features.dim}-d)`,
      measures: v.panels[i].measures,
      pixels: space.selection.labels.length,
    }))
  );
  return measuresTable(rows, title);
}
