/**
 * Standalone offline HTML: the run report (`writeReport`, from the records of lib/train/run_record.ts) and
 * any list of figures (`writeFiguresHtml`).
 * One file, plotly.js inlined once in <head>, no network access (opens from file://), written
 * atomically (temporary file + rename) so a reader never sees half a report.
 */
import { writeFileAtomicSync } from "../util/fs.ts";
import { escapeHtml, Figure } from "./figure.ts";
import { plotlyBundleVersion, plotlyInlineScript } from "./plotly_bundle.ts";
import {
  byMode,
  classIoUBars,
  confusionHeatmap,
  contrastDiagnostics,
  lossCurves,
  lrCurve,
  valCurves,
} from "./charts.ts";
import { classInfo, fmtMetric } from "./layout.ts";
import type { EvalRecord, TrainRecord } from "../train/run_record.ts";
import type { ClassInfo, RunSummary } from "./types.ts";

export interface ReportFigure {
  heading: string;
  figure: Figure;
  /** Optional paragraph under the heading (plain text). */
  note?: string;
}

export interface ReportSections extends ClassInfo {
  title?: string;
  summary: RunSummary;
  train: readonly TrainRecord[];
  evals: readonly EvalRecord[];
  /** Figures appended after the standard sections (overlays, the embedding picture, ...). */
  figures?: readonly ReportFigure[];
  /** Timestamp printed in the header (default: now); pass one for byte-identical files. */
  generatedAt?: string;
  /** EMA weight for the loss curves (default 0.6). */
  smoothing?: number;
}

const STYLE = `
body{font:14px/1.5 Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:12px 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
section{background:#fff;border:1px solid #e1e3e8;border-radius:6px;padding:8px 16px 12px;margin:12px 0}
.meta{color:#666;font-size:12px} .mode{color:#666;font-size:12px;white-space:nowrap}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#fafafa} .sw{display:inline-block;width:12px;height:12px;border:1px solid #555;vertical-align:middle;margin-right:6px}
p.note{color:#444;margin:4px 0 8px}
`;

/** A complete HTML page around body HTML: plotly inlined once in <head>. */
export function htmlPage(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${escapeHtml(title)}</title>\n<style>${STYLE}</style>\n` +
    `<script type="text/javascript">${plotlyInlineScript()}</script>\n</head>\n<body><main>\n${body}\n</main></body>\n</html>\n`;
}

function figureSection(f: ReportFigure): string {
  return `<section><h2>${escapeHtml(f.heading)}</h2>` +
    (f.note ? `<p class="note">${escapeHtml(f.note)}</p>` : "") +
    untitled(f.figure, f.heading).toHTML("none") +
    `</section>`;
}

/** The figure without its title when the section heading already says the same. */
function untitled(fig: Figure, heading: string): Figure {
  if (fig.title.trim().toLowerCase() !== heading.trim().toLowerCase()) return fig;
  const layout: Record<string, unknown> = { ...fig.layout, title: { text: "" } };
  const m = (fig.layout.margin ?? {}) as Record<string, number>;
  layout.margin = { ...m, t: Math.min(m.t ?? 72, 44) };
  layout.height = fig.height - ((m.t ?? 72) - (layout.margin as Record<string, number>).t);
  return new Figure({ data: fig.data, layout, config: fig.config });
}

/** An offline page with a title, an optional intro paragraph and figures (e.g. the embedding picture). */
export function renderFiguresHtml(title: string, figures: readonly ReportFigure[], intro?: string): string {
  const body = `<h1>${escapeHtml(title)}</h1>` + (intro ? `<p class="note">${escapeHtml(intro)}</p>` : "") +
    figures.map(figureSection).join("\n");
  return htmlPage(title, body);
}

export function writeFiguresHtml(
  path: string,
  title: string,
  figures: readonly ReportFigure[],
  intro?: string,
): void {
  writeFileAtomicSync(path, renderFiguresHtml(title, figures, intro));
}

function modeTag(mode: string): string {
  return ` <span class="mode">[${escapeHtml(mode)}]</span>`;
}

function summaryHtml(s: ReportSections): string {
  const rows: [string, string][] = [
    ["config", escapeHtml(s.summary.configName)],
    ["backend", escapeHtml(s.summary.backend)],
  ];
  for (const [k, v] of Object.entries(s.summary.details ?? {})) {
    rows.push([escapeHtml(k), escapeHtml(String(v))]);
  }
  const last = s.train[s.train.length - 1];
  if (last) {
    const parts = [
      `iter ${last.iter}`,
      `loss ${fmtMetric(last.loss)}`,
      `CE ${fmtMetric(last.ce)}`,
      ...(last.contrast !== null && last.contrast !== undefined
        ? [`contrast ${fmtMetric(last.contrast)}`]
        : []),
      `lr ${last.lr.toExponential(3)}`,
      `elapsed ${formatSeconds(last.time)}`,
    ];
    rows.push(["last training log", parts.join(" · ")]);
  }
  for (const [mode, list] of byMode(s.evals)) {
    const latest = list[list.length - 1];
    const best = list.reduce((a, b) => (b.mIoU > a.mIoU ? b : a));
    const line = (e: EvalRecord) =>
      `mIoU ${fmtMetric(e.mIoU)}${modeTag(mode)} · acc ${fmtMetric(e.acc)}${modeTag(mode)} · ` +
      `kappa ${fmtMetric(e.kappa)}${modeTag(mode)}` +
      (e.valLoss !== null && e.valLoss !== undefined
        ? ` · val loss ${fmtMetric(e.valLoss)}${modeTag(mode)}`
        : "") +
      ` @ iter ${e.iter}`;
    rows.push([`latest evaluation`, line(latest)]);
    if (best !== latest) rows.push([`best evaluation`, line(best)]);
  }
  return `<section><h2>Run summary</h2><table>` +
    rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("") + `</table></section>`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "–";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = Math.round(s % 60);
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(r).padStart(2, "0")}s`
    : `${r}s`;
}

/** Per-class IoU (and accuracy) table for the latest evaluation of every mode, mode in every header. */
function classTableHtml(s: ReportSections): string {
  const latest = [...byMode(s.evals)].map(([, list]) => list[list.length - 1]);
  if (latest.length === 0) return "";
  const n = Math.max(...latest.map((e) => e.classIoU.length));
  const { names, colors } = classInfo(n, s);
  const head = `<tr><th>trainId</th><th>class</th>` +
    latest.map((e) =>
      `<th>IoU${modeTag(e.mode)} @ ${e.iter}</th>` +
      (e.classAcc ? `<th>acc${modeTag(e.mode)} @ ${e.iter}</th>` : "")
    ).join("") + `</tr>`;
  const body = names.map((name, c) =>
    `<tr><td class="num">${c}</td><td><span class="sw" style="background:${colors[c]}"></span>${
      escapeHtml(name)
    }</td>` +
    latest.map((e) =>
      `<td class="num">${fmtMetric(e.classIoU[c])}</td>` +
      (e.classAcc ? `<td class="num">${fmtMetric(e.classAcc[c])}</td>` : "")
    ).join("") + `</tr>`
  ).join("");
  const foot = `<tr><th></th><th>mean</th>` +
    latest.map((e) => `<th class="num">${fmtMetric(e.mIoU)}</th>` + (e.classAcc ? `<th></th>` : "")).join(
      "",
    ) + `</tr>`;
  return `<table>${head}${body}${foot}</table>`;
}

/** The report as one HTML string (pure apart from reading the plotly bundle). */
export function renderReport(s: ReportSections): string {
  const title = s.title ?? `Training report — ${s.summary.configName}`;
  const when = s.generatedAt ?? new Date().toISOString();
  const info: ClassInfo = { classNames: s.classNames, palette: s.palette };
  const parts: string[] = [
    `<h1>${escapeHtml(title)}</h1><div class="meta">generated ${escapeHtml(when)} · plotly.js ${
      escapeHtml(plotlyBundleVersion())
    } (inlined, offline) · metric values are fractions in [0, 1]; the evaluation mode is shown in brackets</div>`,
    summaryHtml(s),
    figureSection({
      heading: "Training loss",
      note:
        "Total optimised loss, its cross-entropy part and the (unweighted) pixel-contrast term, per logged iteration.",
      figure: lossCurves(s.train, { smoothing: s.smoothing }),
    }),
    figureSection({ heading: "Learning rate", figure: lrCurve(s.train) }),
    figureSection({ heading: "Validation", figure: valCurves(s.evals) }),
    figureSection({ heading: "Pixel-contrast diagnostics", figure: contrastDiagnostics(s.train, info) }),
  ];
  const last = s.evals.length ? [...s.evals].sort((a, b) => a.iter - b.iter)[s.evals.length - 1] : null;
  if (last) {
    parts.push(
      `<section><h2>Per-class IoU</h2>${classTableHtml(s)}${
        classIoUBars(last, info).toHTML("none")
      }</section>`,
    );
    const withConf = [...s.evals].filter((e) => e.confusion && e.confusion.length).sort((a, b) =>
      a.iter - b.iter
    );
    const c = withConf[withConf.length - 1];
    if (c) {
      parts.push(figureSection({
        heading: "Confusion matrix",
        note:
          "Rows: ground-truth class; columns: predicted class; each row sums to 1 (the diagonal is the per-class recall).",
        figure: confusionHeatmap(c.confusion!, { ...info, normalize: "row", mode: c.mode, iter: c.iter }),
      }));
    }
  } else {
    parts.push(`<section><h2>Per-class IoU</h2><p class="note">No evaluation records yet.</p></section>`);
  }
  for (const f of s.figures ?? []) parts.push(figureSection(f));
  return htmlPage(title, parts.join("\n"));
}

/** Renders and writes the report atomically. */
export function writeReport(path: string, sections: ReportSections): void {
  writeFileAtomicSync(path, renderReport(sections));
}
