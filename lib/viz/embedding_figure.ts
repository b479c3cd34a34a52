/**
 * The paper's picture: pixel embeddings of several models (CE-only vs pixel contrast) projected to 2-D,
 * coloured by class with the official palette, side by side, each panel captioned with its measures of
 * structure (embedding.ts).
 */
import { Figure } from "./figure.ts";
import { baseLayout, bottomMargin, classInfo, grid } from "./layout.ts";
import type { ClassInfo, PlotlyTrace } from "./types.ts";
import {
  type ClassSeparation,
  classSeparation,
  type KnnAccuracy,
  knnAccuracy,
  pca,
  sampleBalancedPixels,
  umap,
} from "./embedding.ts";
import type { Rng } from "../util/rng.ts";

export interface EmbeddingMeasures {
  separation: ClassSeparation;
  knn: KnnAccuracy;
}

export interface EmbeddingPanel {
  /** Panel heading, e.g. "CE only" or "CE + pixel contrast". */
  title: string;
  /** 2-D coordinates, [N, 2] row-major. */
  xy: Float32Array;
  /** Class id per point, [N]. */
  labels: ArrayLike<number>;
  measures?: EmbeddingMeasures;
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
export function formatMeasures(m: EmbeddingMeasures): string {
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

export interface CompareInput {
  title: string;
  /** [N, dim] row-major embeddings at the labelled pixels. */
  embeddings: Float32Array;
}

export interface CompareOptions extends EmbeddingFigureOptions {
  /** Labels of the N pixels (shared by all inputs: the same images, the same grid). */
  labels: ArrayLike<number>;
  dim: number;
  rng: Rng;
  /** Pixels per class in the class-balanced sample (default 200). */
  perClass?: number;
  projection?: "umap" | "pca";
  /** k of the k-NN accuracy (default 10). */
  k?: number;
  ignoreIndex?: number;
  umap?: { nNeighbors?: number; minDist?: number; nEpochs?: number; pcaDims?: number };
}

export interface CompareResult {
  figure: Figure;
  /** Measures per input, in input order (on the sampled pixels, full dimension). */
  measures: EmbeddingMeasures[];
  /** Pixels drawn per class (index = class id). */
  sampled: number[];
}

/**
 * The whole picture in one call: one class-balanced sample of pixels (the same pixels for every input),
 * the measures of structure on the full-dimensional rows, a 2-D projection per input and the figure.
 */
export function compareEmbeddings(inputs: readonly CompareInput[], opts: CompareOptions): CompareResult {
  const n = opts.labels.length;
  const sample = sampleBalancedPixels(opts.labels, null, opts.dim, {
    perClass: opts.perClass ?? 200,
    rng: opts.rng.fork("embedding-sample"),
    ignoreIndex: opts.ignoreIndex,
  });
  const m = sample.indices.length;
  if (m < 3) throw new Error(`compareEmbeddings: only ${m} labelled pixels to show`);
  const method = opts.projection ?? "umap";
  const panels: EmbeddingPanel[] = [];
  const measures: EmbeddingMeasures[] = [];
  inputs.forEach((inp, i) => {
    if (inp.embeddings.length !== n * opts.dim) {
      throw new Error(
        `compareEmbeddings: '${inp.title}' has ${inp.embeddings.length} values, expected ${n}×${opts.dim}`,
      );
    }
    const rows = new Float32Array(m * opts.dim);
    for (let r = 0; r < m; r++) {
      const src = sample.indices[r] * opts.dim;
      rows.set(inp.embeddings.subarray(src, src + opts.dim), r * opts.dim);
    }
    const ms: EmbeddingMeasures = {
      separation: classSeparation(rows, m, opts.dim, sample.labels),
      knn: knnAccuracy(rows, m, opts.dim, sample.labels, {
        k: Math.min(opts.k ?? 10, m - 1),
        rng: opts.rng.fork(`knn-${i}`),
      }),
    };
    const xy = method === "pca"
      ? pca(rows, m, opts.dim, 2).projection
      : umap(rows, m, opts.dim, { ...opts.umap, rng: opts.rng.fork(`umap-${i}`) });
    measures.push(ms);
    panels.push({ title: inp.title, xy, labels: sample.labels, measures: ms });
  });
  const per = opts.perClass ?? 200;
  const figure = embeddingFigure(panels, {
    ...opts,
    method: method.toUpperCase(),
    title: opts.title ?? `Pixel embeddings (${method.toUpperCase()} of ≤${per} pixels per class, ` +
        `${m} in all), coloured by class`,
  });
  const sampled: number[] = [];
  for (let i = 0; i < m; i++) sampled[sample.labels[i]] = (sampled[sample.labels[i]] ?? 0) + 1;
  return { figure, measures, sampled: Array.from(sampled, (v) => v ?? 0) };
}
