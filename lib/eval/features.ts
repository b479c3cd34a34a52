/**
 * What a trained model outputs at pixels, for figures: pixel features for the paper's picture of the
 * feature space (notebook 04, `deno task viz embed`) and whole-image predictions for overlays
 * (notebook 03).
 *
 * Pixel features live on the stride-4 grid of the model (docs/method.md §4.2): for an input of H×W the grid is
 * ceil(H/4)×ceil(W/4) and grid cell (i, j) takes the label `label[4i, 4j]` (nearest, top-left pixel of
 * the 4×4 cell — the rule the contrast loss uses to downsample labels). Two layers:
 *   - `proj`: the projection head's unit-norm embeddings [h, w, D] (contrast model only) — the space
 *     the pixel contrast loss acts on;
 *   - `decoder`: the HRNet representation [h, w, Cb] that both heads read (720 channels for W48, 240
 *     for W18-Small-V1) — present in the CE-only model too, so the two models compare like for like.
 *
 * Two passes over the same samples: `selectPixels` reads only labels and draws a class-balanced, seeded
 * sample (`sampleBalancedPixels`, feature_rows.ts), then `extractPixelFeatures` runs a model and keeps the rows
 * of the selected cells (gathered on the backend, so a large feature map never reaches the host). The
 * selection depends on labels and seed only, so every model is read at the same pixels.
 */
import { tf } from "../backend/tf.ts";
import type { Config } from "../config/mod.ts";
import { applyTransforms, buildTransforms, loadItem, type SegDataset } from "../data/mod.ts";
import type { SegModel } from "../models/mod.ts";
import { Rng } from "../util/rng.ts";
import { l2NormalizeRows, sampleBalancedPixels } from "./feature_rows.ts";
import type { EvalSample } from "./evaluate.ts";
import { type EvalMode, predictClasses, WHOLE_MODE } from "./inference.ts";

export type FeatureLayer = "proj" | "decoder";
export const FEATURE_LAYERS: readonly FeatureLayer[] = ["proj", "decoder"];

/** Output stride of the feature grid (HRNet's stride-4 representation). */
export const FEATURE_STRIDE = 4;

/** Validation samples, in order (e.g. `valSamples`). */
export type Samples = Iterable<EvalSample> | AsyncIterable<EvalSample>;

/** Size of the stride-4 grid for an H×W input: ceil(H/4)×ceil(W/4) (two stride-2, pad-1, 3×3 convs). */
export function featureGrid(height: number, width: number): [number, number] {
  return [Math.ceil(height / FEATURE_STRIDE), Math.ceil(width / FEATURE_STRIDE)];
}

/**
 * Labels on the feature grid: cell (i, j) takes the label at row floor(4i·lh/H), column floor(4j·lw/W)
 * of an lh×lw label map for an H×W input — `label[4i, 4j]` when the label has the input's size.
 * Returns [gh·gw] class ids, row-major.
 */
export function labelsOnGrid(
  label: ArrayLike<number>,
  labelHeight: number,
  labelWidth: number,
  height: number,
  width: number,
): Int32Array {
  if (label.length !== labelHeight * labelWidth) {
    throw new Error(`labelsOnGrid: label has ${label.length} values, expected ${labelHeight}x${labelWidth}`);
  }
  const [gh, gw] = featureGrid(height, width);
  const out = new Int32Array(gh * gw);
  for (let i = 0; i < gh; i++) {
    const r = Math.min(labelHeight - 1, Math.floor((FEATURE_STRIDE * i * labelHeight) / height));
    for (let j = 0; j < gw; j++) {
      const c = Math.min(labelWidth - 1, Math.floor((FEATURE_STRIDE * j * labelWidth) / width));
      out[i * gw + j] = label[r * labelWidth + c];
    }
  }
  return out;
}

/** Pixels chosen on the feature grids of a sequence of images (one row per pixel, class-sorted). */
export interface PixelSelection {
  /** Index of the image (in sample order) of each selected pixel. */
  image: Int32Array;
  /** Cell index on that image's grid (row · gw + col). */
  cell: Int32Array;
  /** Class id of each selected pixel. */
  labels: Int32Array;
  /** Grid size [gh, gw] per image. */
  grids: Array<[number, number]>;
  /** Labelled grid cells per class over all images, before sampling (index = class id). */
  available: number[];
  /** Names of the images, in sample order. */
  names: string[];
  perClass: number;
  seed: number;
}

export interface SelectOptions {
  /** Pixels per class (all of a class that has fewer). */
  perClass: number;
  /** Seed of the sample (lib/util/rng.ts); the same seed and labels give the same pixels. */
  seed: number;
  /** Default 255. */
  ignoreIndex?: number;
}

/**
 * Reads the labels of `samples` on their stride-4 grids and draws up to `perClass` cells per class
 * (class-balanced, seeded; `sampleBalancedPixels`). Ignored cells are never drawn.
 */
export async function selectPixels(samples: Samples, opts: SelectOptions): Promise<PixelSelection> {
  const grids: Array<[number, number]> = [];
  const names: string[] = [];
  const perImage: Int32Array[] = [];
  let total = 0;
  for await (const s of samples) {
    const lh = s.labelHeight ?? s.height, lw = s.labelWidth ?? s.width;
    const g = labelsOnGrid(s.label, lh, lw, s.height, s.width);
    grids.push(featureGrid(s.height, s.width));
    names.push(s.name ?? `image ${names.length}`);
    perImage.push(g);
    total += g.length;
  }
  if (perImage.length === 0) throw new Error("selectPixels: the samples yielded no images");
  const all = new Int32Array(total);
  const imageOf = new Int32Array(total);
  const offsets: number[] = [];
  let off = 0;
  perImage.forEach((g, k) => {
    offsets.push(off);
    all.set(g, off);
    imageOf.fill(k, off, off + g.length);
    off += g.length;
  });
  const sample = sampleBalancedPixels(all, null, 1, {
    perClass: opts.perClass,
    rng: new Rng(opts.seed).fork("pixel-selection"),
    ignoreIndex: opts.ignoreIndex ?? 255,
  });
  const m = sample.indices.length;
  if (m === 0) throw new Error("selectPixels: no labelled pixels in the samples");
  const image = new Int32Array(m), cell = new Int32Array(m);
  for (let r = 0; r < m; r++) {
    const idx = sample.indices[r];
    image[r] = imageOf[idx];
    cell[r] = idx - offsets[imageOf[idx]];
  }
  return {
    image,
    cell,
    labels: sample.labels,
    grids,
    available: sample.available,
    names,
    perClass: opts.perClass,
    seed: opts.seed,
  };
}

/** Features of the selected pixels: [n, dim] row-major, rows in selection order. */
export interface PixelFeatures {
  embeddings: Float32Array;
  n: number;
  dim: number;
  layer: FeatureLayer;
}

/** The layer's feature map for a batch: [N, h, w, C] (eval mode: BN running statistics, no dropout). */
export function featureMap(model: SegModel, x: tf.Tensor4D, layer: FeatureLayer): tf.Tensor4D {
  if (layer === "proj") {
    if (!model.hasProjection) {
      throw new Error(
        "layer 'proj': this model has no projection head (a CE-only model); use layer 'decoder' " +
          "(the HRNet representation both models share)",
      );
    }
    return tf.tidy(() => {
      const out = model.forward(x, { training: false, embed: true });
      out.logitsUp.dispose();
      out.logits4.dispose();
      return out.embed!;
    });
  }
  if (layer === "decoder") return model.backbone.forward(x, { training: false });
  throw new Error(`unknown feature layer '${layer}' (use ${FEATURE_LAYERS.join(" or ")})`);
}

/**
 * Runs `model` over the same samples `selectPixels` read (same order) and returns the `layer` features
 * of the selected pixels. Errors if the samples or grids differ from the selection's.
 */
export async function extractPixelFeatures(
  model: SegModel,
  samples: Samples,
  sel: PixelSelection,
  opts: {
    layer: FeatureLayer;
    /**
     * Scale each row to unit L2 norm: the geometry the cosine measures and UMAP use. Plain PCA of the raw
     * decoder features (ReLU outputs of very different norms) is dominated by a few large-norm pixels.
     */
    normalize?: boolean;
  },
): Promise<PixelFeatures> {
  const n = sel.labels.length;
  // rows of the selection per image, in selection order
  const rowsOf = new Map<number, number[]>();
  for (let r = 0; r < n; r++) {
    const k = sel.image[r];
    if (!rowsOf.has(k)) rowsOf.set(k, []);
    rowsOf.get(k)!.push(r);
  }
  let out: Float32Array | null = null;
  let dim = 0;
  let k = 0;
  for await (const s of samples) {
    if (k >= sel.grids.length) {
      throw new Error(`extractPixelFeatures: more images than the selection's ${sel.grids.length}`);
    }
    const name = s.name ?? `image ${k}`;
    if (name !== sel.names[k]) {
      throw new Error(`extractPixelFeatures: image ${k} is '${name}', the selection read '${sel.names[k]}'`);
    }
    const rows = rowsOf.get(k);
    if (rows) {
      const [gh, gw] = sel.grids[k];
      const gathered = tf.tidy(() => {
        const x = tf.tensor4d(s.image, [1, s.height, s.width, 3]);
        const f = featureMap(model, x, opts.layer);
        if (f.shape[1] !== gh || f.shape[2] !== gw) {
          throw new Error(
            `extractPixelFeatures: ${name}: the model's ${opts.layer} grid is ${f.shape[1]}x${f.shape[2]}, ` +
              `expected ${gh}x${gw} (stride ${FEATURE_STRIDE})`,
          );
        }
        const flat = f.reshape([gh * gw, f.shape[3]]);
        return tf.gather(flat, tf.tensor1d(rows.map((r) => sel.cell[r]), "int32")) as tf.Tensor2D;
      });
      try {
        const d = gathered.shape[1];
        if (!out) {
          dim = d;
          out = new Float32Array(n * dim);
        }
        const data = (await gathered.data()) as Float32Array;
        rows.forEach((r, t) => out!.set(data.subarray(t * dim, (t + 1) * dim), r * dim));
      } finally {
        gathered.dispose();
      }
    }
    k++;
  }
  if (k !== sel.grids.length) {
    throw new Error(`extractPixelFeatures: ${k} images, the selection read ${sel.grids.length}`);
  }
  if (!out) throw new Error("extractPixelFeatures: nothing selected");
  return { embeddings: opts.normalize ? l2NormalizeRows(out, n, dim) : out, n, dim, layer: opts.layer };
}

/** One image with its ground truth and the model's prediction, at the image's original size. */
export interface PredictedExample {
  name: string;
  /** RGB uint8 HWC (as read from disk). */
  rgb: { data: Uint8Array; width: number; height: number };
  /** Class ids (ignoreIndex for unlabelled), [height·width]; null when the item has no label. */
  groundTruth: Uint8Array | null;
  /** Predicted class ids, [height·width]. */
  prediction: Int32Array;
}

/**
 * Predictions for the dataset items at `indices` (default: the first `limit`, default 3), with the
 * dataset's transforms (validation: Normalize) and an inference mode, resized to the original size as
 * `deno task predict` does.
 */
export async function predictExamples(
  model: SegModel,
  ds: SegDataset,
  opts: { indices?: number[]; limit?: number; mode?: EvalMode } = {},
): Promise<PredictedExample[]> {
  const indices = opts.indices ??
    Array.from({ length: Math.min(opts.limit ?? 3, ds.items.length) }, (_, i) => i);
  const transforms = buildTransforms(
    ds.transforms.length ? ds.transforms : [{ type: "Normalize" }],
    `${ds.type} transforms`,
  );
  const out: PredictedExample[] = [];
  for (const i of indices) {
    const item = await loadItem(ds, i);
    const s = applyTransforms(transforms, {
      image: item.image.data,
      width: item.width,
      height: item.height,
      label: null,
    }, new Rng(0));
    const pred = tf.tidy(() => {
      const x = tf.tensor4d(s.image, [1, s.height, s.width, 3]);
      return predictClasses(model, x, opts.mode ?? WHOLE_MODE, [item.height, item.width], model.numClasses);
    });
    try {
      out.push({
        name: ds.items[i].image,
        rgb: item.image,
        groundTruth: item.label,
        prediction: (await pred.data()) as Int32Array,
      });
    } finally {
      pred.dispose();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Titles (notebooks 02-04, `deno task viz`)

/** "CE + pixel contrast" when the config's loss weights a PixelContrast term above 0, else "CE only". */
export function modelKind(config: Config): string {
  const { types, coef } = config.loss;
  const contrast = coef.some((w, i) =>
    w > 0 && types[types.length === 1 ? 0 : i].type.startsWith("PixelContrast")
  );
  return contrast ? "CE + pixel contrast" : "CE only";
}
