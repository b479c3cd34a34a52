/**
 * Loss options: TypeScript shapes with the seed's (REPRO/PSEG) defaults, and the mapping from the
 * validated config (`loss.types[i]`, `loss.coef`, snake_case keys; see lib/config/schema.ts).
 *
 * Defaults follow docs/method.md §12: CE unweighted with ignore 255; contrast τ 0.1, τ_b 0.07,
 * max_samples 1024, max_views 100, contrast groups of 2 images, no warm-up, coef [1, 0.1], no memory.
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

export const DEFAULT_CE_OPTIONS: Readonly<CrossEntropyOptions> = Object.freeze({
  ignoreIndex: 255,
  weight: null,
  alignCorners: false,
});

export const DEFAULT_MEMORY_OPTIONS: Readonly<MemoryOptions> = Object.freeze({
  enabled: false,
  pixelSize: 5000,
  segmentSize: 5000,
  pixelUpdateFreq: 10,
  mining: "none" as MiningMode,
  miningNegatives: 1024,
  miningPositives: 512,
  semiHardFraction: 0.1,
  reproducePublicCode: false,
  publicLabelStride: 8,
});

export const DEFAULT_CONTRAST_OPTIONS: Readonly<PixelContrastOptions> = Object.freeze({
  temperature: 0.1,
  baseTemperature: 0.07,
  ignoreIndex: 255,
  maxSamples: 1024,
  maxViews: 100,
  contrastGroupSize: 2,
  warmupIters: 0,
  draw: "random" as AnchorDraw,
  memory: DEFAULT_MEMORY_OPTIONS,
});

/** Drops keys whose value is undefined, so that spreading keeps the defaults. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A partial contrast option set (defaults fill the rest). */
export type PixelContrastOptionsInput = Partial<Omit<PixelContrastOptions, "memory">> & {
  memory?: Partial<MemoryOptions>;
};

/** Fills defaults into a partial contrast option set and validates it. */
export function contrastOptions(o: PixelContrastOptionsInput = {}): PixelContrastOptions {
  const r: PixelContrastOptions = {
    ...DEFAULT_CONTRAST_OPTIONS,
    ...definedOnly(o),
    memory: { ...DEFAULT_MEMORY_OPTIONS, ...definedOnly(o.memory ?? {}) },
  };
  const bad = (k: string, v: unknown, want: string) => {
    throw new Error(`losses/options: contrast option '${k}' = ${JSON.stringify(v)} must be ${want}`);
  };
  if (!(r.temperature > 0)) bad("temperature", r.temperature, "> 0");
  if (!(r.baseTemperature > 0)) bad("base_temperature", r.baseTemperature, "> 0");
  if (!Number.isInteger(r.ignoreIndex)) bad("ignore_index", r.ignoreIndex, "an integer");
  if (!(Number.isInteger(r.maxSamples) && r.maxSamples >= 1)) {
    bad("max_samples", r.maxSamples, "an integer >= 1");
  }
  if (!(Number.isInteger(r.maxViews) && r.maxViews >= 1)) bad("max_views", r.maxViews, "an integer >= 1");
  if (!(Number.isInteger(r.contrastGroupSize) && r.contrastGroupSize >= 0)) {
    bad("contrast_group_size", r.contrastGroupSize, "an integer >= 0 (0 = whole batch)");
  }
  if (!(Number.isInteger(r.warmupIters) && r.warmupIters >= 0)) {
    bad("warmup_iters", r.warmupIters, "an integer >= 0");
  }
  if (r.draw !== "random" && r.draw !== "identity") bad("draw", r.draw, "'random' or 'identity'");
  const m = r.memory;
  for (
    const k of ["pixelSize", "segmentSize", "pixelUpdateFreq", "miningNegatives", "miningPositives"] as const
  ) {
    if (!(Number.isInteger(m[k]) && m[k] >= 1)) bad(`memory.${k}`, m[k], "an integer >= 1");
  }
  if (!["none", "hardest", "semi_hard"].includes(m.mining)) {
    bad("memory.mining", m.mining, "none|hardest|semi_hard");
  }
  if (!(m.semiHardFraction > 0 && m.semiHardFraction <= 1)) {
    bad("memory.semiHardFraction", m.semiHardFraction, "in (0, 1]");
  }
  if (!(Number.isInteger(m.publicLabelStride) && m.publicLabelStride >= 1)) {
    bad("memory.publicLabelStride", m.publicLabelStride, "an integer >= 1");
  }
  return r;
}

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

// ---------------------------------------------------------------------------------------------------
// config mapping (structural: the trainer passes `config.loss` as validated by lib/config/schema.ts)

/** `loss.types[i]` for CrossEntropyLoss as the config provides it. */
export interface CrossEntropyLossConfigLike {
  type: "CrossEntropyLoss";
  ignore_index?: number;
  weight?: readonly number[] | string;
}

/** `loss.types[i]` for the pixel contrast loss as the config provides it. */
export interface PixelContrastLossConfigLike {
  type: "PixelContrastCrossEntropyLoss" | "PixelContrastLoss";
  temperature?: number;
  base_temperature?: number;
  ignore_index?: number;
  max_samples?: number;
  max_views?: number;
  contrast_group_size?: number;
  warmup_iters?: number;
  sampler?: string;
  memory?: {
    enabled?: boolean;
    pixel_size?: number;
    segment_size?: number;
    pixel_update_freq?: number;
    mining?: MiningMode;
    reproduce_public_code?: boolean;
  };
}

export interface LossConfigLike {
  types: ReadonlyArray<CrossEntropyLossConfigLike | PixelContrastLossConfigLike>;
  coef: readonly number[];
}

/**
 * Maps `config.loss` to LossOptions. Accepted layouts (PaddleSeg: one type per model output):
 * `[CrossEntropyLoss]` (CE only), `[CrossEntropyLoss, PixelContrast...]` with coef of the same length.
 */
export function lossOptionsFromConfig(loss: LossConfigLike): LossOptions {
  const types = loss.types;
  const coef = loss.coef;
  if (types.length === 0) throw new Error("losses/options: loss.types is empty");
  const ceCfg = types[0];
  if (ceCfg.type !== "CrossEntropyLoss") {
    throw new Error(
      `losses/options: loss.types[0] must be CrossEntropyLoss (model output order), got ${ceCfg.type}`,
    );
  }
  const ce: CrossEntropyOptions = {
    ...DEFAULT_CE_OPTIONS,
    ignoreIndex: ceCfg.ignore_index ?? DEFAULT_CE_OPTIONS.ignoreIndex,
    weight: ceCfg.weight ?? null,
  };
  if (types.length === 1) {
    if (coef.length !== 1) {
      throw new Error(`losses/options: loss.coef has ${coef.length} entries for one loss type`);
    }
    return { ce, contrast: null, coef: [coef[0], 0] };
  }
  if (types.length !== 2 || coef.length !== 2) {
    throw new Error(
      `losses/options: expected loss.types [CrossEntropyLoss, PixelContrastCrossEntropyLoss] with 2 coef, ` +
        `got ${types.length} types and ${coef.length} coef`,
    );
  }
  const pc = types[1];
  if (pc.type !== "PixelContrastCrossEntropyLoss" && pc.type !== "PixelContrastLoss") {
    throw new Error(`losses/options: loss.types[1] must be PixelContrastCrossEntropyLoss, got ${pc.type}`);
  }
  if (pc.sampler !== undefined && pc.sampler !== "hard_easy") {
    throw new Error(
      `losses/options: loss.types[1].sampler '${pc.sampler}' is not implemented (hard_easy only)`,
    );
  }
  const m = pc.memory ?? {};
  const contrast = contrastOptions(
    {
      temperature: pc.temperature,
      baseTemperature: pc.base_temperature,
      ignoreIndex: pc.ignore_index,
      maxSamples: pc.max_samples,
      maxViews: pc.max_views,
      contrastGroupSize: pc.contrast_group_size,
      warmupIters: pc.warmup_iters,
      memory: {
        enabled: m.enabled,
        pixelSize: m.pixel_size,
        segmentSize: m.segment_size,
        pixelUpdateFreq: m.pixel_update_freq,
        mining: m.mining,
        reproducePublicCode: m.reproduce_public_code,
      },
    } as Parameters<typeof contrastOptions>[0],
  );
  return { ce, contrast, coef: [coef[0], coef[1]] };
}
