/**
 * The paper's picture of the feature space, as numbers: the same class-balanced pixels read from one or
 * more models (e.g. the CE-only and the contrast model), two measures of class structure per model and
 * layer (feature_measures.ts, on the full-dimensional rows), and 2-D projections (projection.ts) for
 * lib/viz to draw (`featureSpaceFigure`, `featureSpaceTable`). `deno task viz embed` and notebook 04 both
 * call {@link featureSpace}.
 *
 * Two levels:
 *   - {@link compareFeatures}: host rows [N, D] of several models at the same N labelled pixels -> one
 *     {@link FeatureView} (sample, measures, projections);
 *   - {@link featureSpace}: models and validation samples -> the pixel selection (features.ts), the
 *     features of each (model, layer), and one view per layer and width.
 * Randomness: one `Rng(seed)` per view, forked per use (`embedding-sample`, `knn-<i>`, `umap-<i>`), so a
 * seed reproduces every number and picture.
 */
import type { SegModel } from "../models/mod.ts";
import { Rng } from "../util/rng.ts";
import { type ClassSeparation, classSeparation, type KnnAccuracy, knnAccuracy } from "./feature_measures.ts";
import { sampleBalancedPixels } from "./feature_rows.ts";
import {
  extractPixelFeatures,
  type FeatureLayer,
  type PixelFeatures,
  type PixelSelection,
  type Samples,
  selectPixels,
} from "./features.ts";
import { pca, umap, type UmapOptions } from "./projection.ts";

/** The structure of one model's features at the sampled pixels. */
export interface FeatureMeasures {
  separation: ClassSeparation;
  knn: KnnAccuracy;
}

export type Projection = "pca" | "umap";

/** One model's features at the shared pixels: [N, dim] row-major. */
export interface FeatureSet {
  title: string;
  embeddings: Float32Array;
}

export interface CompareFeaturesOptions {
  /** Labels of the N pixels (shared by all inputs: the same images, the same grid). */
  labels: ArrayLike<number>;
  dim: number;
  rng: Rng;
  /** Pixels per class in the class-balanced sample (default 200). */
  perClass?: number;
  /** 2-D projections to compute (default ["umap"]). */
  projections?: readonly Projection[];
  /** k of the k-NN accuracy (default 10). */
  k?: number;
  ignoreIndex?: number;
  umap?: Omit<UmapOptions, "rng">;
}

/** One input of a view: its measures and its 2-D coordinates per projection ([M, 2] row-major). */
export interface FeaturePanel {
  title: string;
  measures: FeatureMeasures;
  xy: Partial<Record<Projection, Float32Array>>;
}

/** Several models' features at the same sampled pixels, side by side. */
export interface FeatureView {
  panels: FeaturePanel[];
  /** Class id of each sampled pixel, [M] (grouped by class, ascending). */
  labels: Int32Array;
  /** Pixels drawn per class (index = class id). */
  sampled: number[];
  perClass: number;
  dim: number;
  /** The layer the features come from, when {@link featureSpace} made the view. */
  layer?: FeatureLayer;
}

/**
 * One class-balanced sample of pixels (the same pixels for every input), the measures of structure on the
 * full-dimensional rows, and the asked 2-D projections per input.
 */
export function compareFeatures(inputs: readonly FeatureSet[], opts: CompareFeaturesOptions): FeatureView {
  const n = opts.labels.length;
  const perClass = opts.perClass ?? 200;
  const sample = sampleBalancedPixels(opts.labels, null, opts.dim, {
    perClass,
    rng: opts.rng.fork("embedding-sample"),
    ignoreIndex: opts.ignoreIndex,
  });
  const m = sample.indices.length;
  if (m < 3) throw new Error(`compareFeatures: only ${m} labelled pixels to show`);
  const panels = inputs.map((inp, i): FeaturePanel => {
    if (inp.embeddings.length !== n * opts.dim) {
      throw new Error(
        `compareFeatures: '${inp.title}' has ${inp.embeddings.length} values, expected ${n}×${opts.dim}`,
      );
    }
    const rows = new Float32Array(m * opts.dim);
    for (let r = 0; r < m; r++) {
      const src = sample.indices[r] * opts.dim;
      rows.set(inp.embeddings.subarray(src, src + opts.dim), r * opts.dim);
    }
    const measures: FeatureMeasures = {
      separation: classSeparation(rows, m, opts.dim, sample.labels),
      knn: knnAccuracy(rows, m, opts.dim, sample.labels, {
        k: Math.min(opts.k ?? 10, m - 1),
        rng: opts.rng.fork(`knn-${i}`),
      }),
    };
    const xy: FeaturePanel["xy"] = {};
    for (const p of opts.projections ?? ["umap"]) {
      xy[p] = p === "pca"
        ? pca(rows, m, opts.dim, 2).projection
        : umap(rows, m, opts.dim, { ...opts.umap, rng: opts.rng.fork(`umap-${i}`) });
    }
    return { title: inp.title, measures, xy };
  });
  const sampled: number[] = [];
  for (let i = 0; i < m; i++) sampled[sample.labels[i]] = (sampled[sample.labels[i]] ?? 0) + 1;
  return {
    panels,
    labels: sample.labels,
    sampled: Array.from(sampled, (v) => v ?? 0),
    perClass,
    dim: opts.dim,
  };
}

// ---------------------------------------------------------------------------------------------------
// from models

/** A model to read, and which of its layers. */
export interface FeatureSpaceSubject {
  title: string;
  /**
   * Makes the model (e.g. lib/train's `loadTrainedModel`); called once, and the model is disposed as soon
   * as its features are read, so one model at a time is in memory.
   */
  load: () => Promise<SegModel>;
  layers: readonly FeatureLayer[];
}

export interface FeatureSpaceOptions {
  /** The validation samples; called once per pass, it must yield the same images in the same order. */
  samples: () => Samples;
  /** Pixels per class (class-balanced, seeded: the same pixels for every model). */
  perClass: number;
  /** Seed of the pixel sample, the k-NN queries and UMAP. */
  seed: number;
  /** Default 255. */
  ignoreIndex?: number;
  projections: readonly Projection[];
  /**
   * Scale every row to unit length (default true): the geometry the cosine measures and UMAP use. Plain
   * PCA of the raw decoder features (ReLU outputs of very different norms) is dominated by a few
   * large-norm pixels; the projection head's rows already have unit length.
   */
  normalize?: boolean;
  /** Panel title of a subject's layer (default: the subject's title). */
  panelTitle?: (subject: FeatureSpaceSubject, layer: FeatureLayer) => string;
  k?: number;
  umap?: Omit<UmapOptions, "rng">;
  /** Called once the pixels are chosen (before any model is loaded). */
  onSelection?: (selection: PixelSelection) => void;
  /** Called after each subject's layer is read. */
  onFeatures?: (subject: FeatureSpaceSubject, features: PixelFeatures) => void;
}

export interface FeatureSpaceResult {
  selection: PixelSelection;
  /** Features per subject and layer, in subject then layer order. */
  features: Array<{ subject: FeatureSpaceSubject; features: PixelFeatures }>;
  /**
   * One view per (layer, width), in order of first appearance: features that can share a figure. Panel i
   * of a view belongs to `rows[i]` of that view.
   */
  views: Array<FeatureView & { rows: Array<{ subject: FeatureSpaceSubject; features: PixelFeatures }> }>;
}

/**
 * The whole pipeline: selects the pixels (labels only, seeded), reads each subject's layers at them, and
 * compares the features of each layer and width side by side ({@link compareFeatures}, `Rng(seed)`).
 */
export async function featureSpace(
  subjects: readonly FeatureSpaceSubject[],
  opts: FeatureSpaceOptions,
): Promise<FeatureSpaceResult> {
  const selection = await selectPixels(opts.samples(), {
    perClass: opts.perClass,
    seed: opts.seed,
    ignoreIndex: opts.ignoreIndex,
  });
  opts.onSelection?.(selection);
  const features: FeatureSpaceResult["features"] = [];
  for (const subject of subjects) {
    const model = await subject.load();
    try {
      for (const layer of subject.layers) {
        const f = await extractPixelFeatures(model, opts.samples(), selection, {
          layer,
          normalize: opts.normalize ?? true,
        });
        features.push({ subject, features: f });
        opts.onFeatures?.(subject, f);
      }
    } finally {
      model.dispose();
    }
  }
  const groups = new Map<string, FeatureSpaceResult["features"]>();
  for (const f of features) {
    const key = `${f.features.layer}/${f.features.dim}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(f);
  }
  const views: FeatureSpaceResult["views"] = [];
  for (const rows of groups.values()) {
    const { layer, dim } = rows[0].features;
    const view = compareFeatures(
      rows.map((r) => ({
        title: opts.panelTitle?.(r.subject, layer) ?? r.subject.title,
        embeddings: r.features.embeddings,
      })),
      {
        labels: selection.labels,
        dim,
        rng: new Rng(opts.seed),
        perClass: opts.perClass,
        projections: opts.projections,
        k: opts.k,
        ignoreIndex: opts.ignoreIndex,
        umap: opts.umap,
      },
    );
    views.push({ ...view, layer, rows });
  }
  return { selection, features, views };
}
