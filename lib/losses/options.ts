/**
 * Loss options: complete TypeScript shapes, which the losses take as they are. The config layer fills them:
 * lib/run/options.ts maps the validated `loss` section (lib/config/schema.ts holds the default and the bounds
 * of every config key); the few settings that are not config keys take their values from
 * {@link LOSS_CODE_DEFAULTS}. Code that builds a loss without a config (tests, benchmarks) gets the same
 * defaults from lib/run's `lossOptionsOf` / `contrastOptionsOf`.
 */

/** TORCH (tfzhou/ContrastiveSeg `loss.params.ce_weight`) Cityscapes class weights, docs/method.md §3. */
export const TORCH_CE_WEIGHTS: readonly number[] = Object.freeze([
  0.8373,
  0.9180,
  0.8660,
  1.0345,
  1.0166,
  0.9969,
  0.9754,
  1.0489,
  0.8786,
  1.0023,
  0.9539,
  0.9843,
  1.1116,
  0.9037,
  1.0865,
  1.0955,
  1.0865,
  1.1529,
  1.0507,
]);

/** Named class-weight presets (the config spells the TORCH one `torch_cityscapes`). */
export const CE_WEIGHT_PRESETS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  torch: TORCH_CE_WEIGHTS,
  torch_cityscapes: TORCH_CE_WEIGHTS,
});

export interface CrossEntropyOptions {
  /** Label value excluded from the loss (REPRO 255). */
  ignoreIndex: number;
  /** Per-class weights, a preset name, or null for the unweighted seed loss. */
  weight: readonly number[] | string | null;
  /** Bilinear mode used when the logits must be upsampled to the label size (REPRO false; TORCH true). */
  alignCorners: boolean;
}

export type MiningMode = "none" | "hardest" | "semi_hard";

export interface MemoryOptions {
  enabled: boolean;
  /** Pixel-queue length per class (TORCH memory_size 5000). */
  pixelSize: number;
  /** Segment-queue length per class (TORCH memory_size 5000). */
  segmentSize: number;
  /** Pixels enqueued per (image, class) per step (TORCH pixel_update_freq 10). */
  pixelUpdateFreq: number;
  /** Paper §3.3 example mining over the memory: hardest or semi-hard negatives/positives (ours). */
  mining: MiningMode;
  /** Negatives kept per anchor by the mining (ours; the paper's K). */
  miningNegatives: number;
  /** Positives kept per anchor by the mining (ours). */
  miningPositives: number;
  /** Semi-hard pool: this fraction of the nearest negatives / farthest positives (paper: top 10%). */
  semiHardFraction: number;
  /** Reproduce the public code's defects (docs/method.md §5 list 1-5) instead of the intended semantics. */
  reproducePublicCode: boolean;
  /** Label stride used by the public code's enqueue (`network.stride` = 8); only with reproducePublicCode. */
  publicLabelStride: number;
}

/**
 * How anchors are drawn inside each (image, class) set: `random` = uniform without replacement from the
 * injected Rng (the seed); `identity` = the first k in ascending pixel order (the seed with `randperm`
 * replaced by the identity; used to compare with the PaddleSeg fixture).
 */
export type AnchorDraw = "random" | "identity";

export interface PixelContrastOptions {
  temperature: number;
  baseTemperature: number;
  ignoreIndex: number;
  /** Cap on anchors per contrast group (REPRO: per GPU). */
  maxSamples: number;
  /** Cap on anchors per (image, class); a class needs strictly more pixels than this to be sampled. */
  maxViews: number;
  /** Images contrasted together; 0 = the whole batch. The caps above apply per group. */
  contrastGroupSize: number;
  /** The contrast term is multiplied by 0 (and not computed) while iter < warmupIters (TORCH 5000). */
  warmupIters: number;
  draw: AnchorDraw;
  memory: MemoryOptions;
}

export interface LossOptions {
  ce: CrossEntropyOptions;
  /** null: CE only (a plain segmentation model). */
  contrast: PixelContrastOptions | null;
  /** [CE weight, contrast weight] (PaddleSeg `loss.coef`, REPRO [1, 0.1]). */
  coef: [number, number];
}

/**
 * The loss settings that are not config keys, with their values: the bilinear mode of the CE's own upsample
 * (the model already gives logits at the label size), how anchors are drawn (`identity` only compares with the
 * PaddleSeg fixture), and the memory's mining sizes and the public code's label stride (docs/method.md §5: our
 * reading of the paper, code options on purpose).
 */
export const LOSS_CODE_DEFAULTS = {
  ce: { alignCorners: false },
  contrast: {
    draw: "random",
    memory: { miningNegatives: 1024, miningPositives: 512, semiHardFraction: 0.1, publicLabelStride: 8 },
  },
} as const satisfies {
  ce: Pick<CrossEntropyOptions, "alignCorners">;
  contrast: Pick<PixelContrastOptions, "draw"> & {
    memory: Pick<
      MemoryOptions,
      "miningNegatives" | "miningPositives" | "semiHardFraction" | "publicLabelStride"
    >;
  };
};

/** Resolves `weight` (array, preset name or null) to a Float32Array of numClasses entries, or null. */
export function resolveClassWeights(
  weight: CrossEntropyOptions["weight"],
  numClasses: number,
): Float32Array | null {
  if (weight === null || weight === undefined) return null;
  let w: readonly number[];
  if (typeof weight === "string") {
    const preset = CE_WEIGHT_PRESETS[weight];
    if (!preset) {
      throw new Error(
        `losses/cross_entropy: unknown weight preset '${weight}' (known: ${
          Object.keys(CE_WEIGHT_PRESETS).join(", ")
        })`,
      );
    }
    w = preset;
  } else {
    w = weight;
  }
  if (w.length !== numClasses) {
    throw new Error(
      `losses/cross_entropy: ${w.length} class weights given but the logits have ${numClasses} classes`,
    );
  }
  if (w.some((v) => !(v >= 0) || !Number.isFinite(v))) {
    throw new Error(`losses/cross_entropy: class weights must be finite and >= 0, got ${JSON.stringify(w)}`);
  }
  return Float32Array.from(w);
}
