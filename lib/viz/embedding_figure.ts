/**
 * The paper's picture: pixel embeddings of several models (CE-only vs pixel contrast) projected to 2-D,
 * coloured by class with the official palette, side by side, each panel captioned with its measures of
 * structure. Only draws: the sample, the measures and the projections come from lib/eval/feature_space.ts.
 */
import type { FeatureMeasures, FeatureView, Projection } from "../eval/feature_space.ts";
import { Figure } from "./figure.ts";
import { baseLayout, bottomMargin, classInfo, grid } from "./layout.ts";
import type { ClassInfo, PlotlyTrace } from "./types.ts";

export interface EmbeddingPanel {
  /** Panel heading, e.g. "CE only" or "CE + pixel contrast". */
  title: string;
  /** 2-D coordinates, [N, 2] row-major. */
  xy: Float32Array;
  /** Class id per point, [N]. */
  labels: ArrayLike<number>;
  measures?: FeatureMeasures;
}

export interface EmbeddingFigureOptions extends ClassInfo {
  title?: string;
  /** Projection name for axis titles ("UMAP", "PCA"). */
  method?: string;
  markerSize?: number;
  /** Use WebGL points (`scattergl`) — faster for many points, but needs WebGL in the browser. */
  gl?: boolean;
  height?: number;
}

/** "intra−inter cos 0.412 · 10-NN acc 93.1%". */
export function formatMeasures(m: FeatureMeasures): string {
  return `intra−inter cos ${m.separation.gap.toFixed(3)} · ${m.knn.k}-NN acc ${
    (100 * m.knn.accuracy).toFixed(1)
  }%`;
}

/** Side-by-side scatter panels, one trace per class per panel; clicking a class in the legend hides it everywhere. */
export function embeddingFigure(
  panels: readonly EmbeddingPanel[],
  opts: EmbeddingFigureOptions = {},
): Figure {
  if (panels.length === 0) throw new Error("embeddingFigure: no panels");
  let maxClass = -1;
  for (const p of panels) {
    if (p.xy.length !== 2 * p.labels.length) {
      throw new Error(
        `embeddingFigure: panel '${p.title}' has ${p.xy.length / 2} points but ${p.labels.length} labels`,
      );
    }
    for (let i = 0; i < p.labels.length; i++) maxClass = Math.max(maxClass, p.labels[i]);
  }
  const { names, colors } = classInfo(maxClass + 1, opts);
  const titles = panels.map((p) =>
    p.measures ? `${p.title}<br><span style="font-size:12px">${formatMeasures(p.measures)}</span>` : p.title
  );
  const g = grid(1, panels.length, { titles, hgap: 0.04 });
  const data: PlotlyTrace[] = [];
  const method = opts.method ?? "projection";
  const seen = new Set<number>();
  panels.forEach((p, col) => {
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < p.labels.length; i++) {
      const c = p.labels[i];
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(i);
    }
    for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
      const idx = byClass.get(c)!;
      data.push({
        type: opts.gl ? "scattergl" : "scatter",
        mode: "markers",
        name: names[c],
        legendgroup: `class-${c}`,
        showlegend: !seen.has(c),
        x: idx.map((i) => round4(p.xy[2 * i])),
        y: idx.map((i) => round4(p.xy[2 * i + 1])),
        marker: { color: colors[c], size: opts.markerSize ?? 4, opacity: 0.8, line: { width: 0 } },
        hovertemplate: `${names[c]}<extra>${p.title}</extra>`,
        ...g.ref(0, col),
      });
      seen.add(c);
    }
  });
  const title = opts.title ?? `Pixel embeddings (${method}), coloured by class`;
  const legendRows = Math.ceil(seen.size / 8);
  const layout: Record<string, unknown> = {
    ...baseLayout(title, opts.height ?? 520 + 22 * legendRows),
    ...g.axes,
    annotations: g.annotations,
  };
  layout.margin = { l: 40, r: 24, t: 110, b: bottomMargin(legendRows) };
  layout.legend = { ...(layout.legend as Record<string, unknown>), itemsizing: "constant" };
  for (let i = 0; i < panels.length; i++) {
    const k = g.key(0, i);
    Object.assign(layout[`xaxis${k}`] as Record<string, unknown>, {
      title: { text: `${method} 1` },
      showticklabels: false,
      zeroline: false,
    });
    Object.assign(layout[`yaxis${k}`] as Record<string, unknown>, {
      title: { text: i === 0 ? `${method} 2` : "" },
      showticklabels: false,
      zeroline: false,
    });
  }
  return new Figure({ data, layout });
}

function round4(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(5)) : NaN;
}

export interface FeatureSpaceFigureOptions extends Omit<EmbeddingFigureOptions, "method"> {}

/**
 * A view of lib/eval's `compareFeatures` / `featureSpace` as the figure: one panel per model in one 2-D
 * projection (which the view must hold), captioned with its measures.
 */
export function featureSpaceFigure(
  view: FeatureView,
  projection: Projection,
  opts: FeatureSpaceFigureOptions = {},
): Figure {
  const method = projection.toUpperCase();
  const panels: EmbeddingPanel[] = view.panels.map((p) => {
    const xy = p.xy[projection];
    if (!xy) throw new Error(`featureSpaceFigure: panel '${p.title}' has no ${method} projection`);
    return { title: p.title, xy, labels: view.labels, measures: p.measures };
  });
  return embeddingFigure(panels, {
    ...opts,
    method,
    title: opts.title ?? `Pixel embeddings (${method} of ≤${view.perClass} pixels per class, ` +
        `${view.labels.length} in all), coloured by class`,
  });
}
