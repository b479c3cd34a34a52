/**
 * The config's `model` and `loss` sections as the complete options lib/models and lib/losses take. The schema
 * (lib/config/schema.ts) is the one place of their defaults and bounds; this module only renames (snake_case
 * config keys to the options' names, PaddleSeg's spellings to the model's) and adds the loss settings that are
 * not config keys (`LOSS_CODE_DEFAULTS`).
 *
 * Code that builds a model or a loss without a config file (tests, benchmarks, `deno task summary`) gets the
 * same defaults from the `...Of` helpers, which run their input through the schema.
 */
import { type ConfigInput, type LossConfig, type ModelConfig, validateConfig } from "../config/mod.ts";
import type { ModelOptions } from "../models/mod.ts";
import {
  type CrossEntropyOptions,
  LOSS_CODE_DEFAULTS,
  type LossOptions,
  type MemoryOptions,
  type PixelContrastOptions,
} from "../losses/mod.ts";

/** The model options of a validated `model` section. */
export function modelOptions(m: ModelConfig): ModelOptions {
  return {
    type: m.type === "HRNetW48Contrast" ? "HRNetW48Contrast" : "HRNetCE",
    backbone: m.backbone.type,
    numClasses: m.num_classes,
    dropProb: m.drop_prob,
    projDim: m.type === "HRNetW48Contrast" ? m.proj_dim : null,
    paddingMode: m.backbone.padding_mode === "paddle" ? "same" : "symmetric",
    alignCorners: m.backbone.align_corners,
  };
}

/**
 * The loss options of a validated `loss` section: `[CrossEntropyLoss]` (CE only) or `[CrossEntropyLoss,
 * PixelContrastCrossEntropyLoss]`, the layouts the schema accepts (one loss per model output).
 */
export function lossOptions(loss: LossConfig): LossOptions {
  const [ce, pc] = loss.types;
  if (ce.type !== "CrossEntropyLoss" || (pc !== undefined && pc.type !== "PixelContrastCrossEntropyLoss")) {
    throw new Error(`loss.types: [${loss.types.map((t) => t.type)}] is not a layout the schema accepts`);
  }
  const code = LOSS_CODE_DEFAULTS;
  return {
    ce: { ignoreIndex: ce.ignore_index, weight: ce.weight ?? null, alignCorners: code.ce.alignCorners },
    contrast: pc === undefined ? null : {
      temperature: pc.temperature,
      baseTemperature: pc.base_temperature,
      ignoreIndex: pc.ignore_index,
      maxSamples: pc.max_samples,
      maxViews: pc.max_views,
      contrastGroupSize: pc.contrast_group_size,
      warmupIters: pc.warmup_iters,
      draw: code.contrast.draw,
      memory: {
        enabled: pc.memory.enabled,
        pixelSize: pc.memory.pixel_size,
        segmentSize: pc.memory.segment_size,
        pixelUpdateFreq: pc.memory.pixel_update_freq,
        mining: pc.memory.mining,
        reproducePublicCode: pc.memory.reproduce_public_code,
        ...code.contrast.memory,
      },
    },
    coef: [loss.coef[0], pc === undefined ? 0 : loss.coef[1]],
  };
}

// ---------------------------------------------------------------------------------------------------
// without a config file: the schema's defaults

/** Model options with the schema's defaults for what `o` leaves out; `o` is checked against the schema. */
export function modelOptionsOf(
  o: Partial<ModelOptions> & Pick<ModelOptions, "backbone" | "numClasses">,
): ModelOptions {
  const contrast = (o.type ?? "HRNetW48Contrast") === "HRNetW48Contrast";
  const padding = o.paddingMode === undefined ? undefined : o.paddingMode === "same" ? "paddle" : "torch";
  const config = validateConfig(
    {
      iters: 1,
      model: definedOnly({
        type: contrast ? "HRNetW48Contrast" : "HRNetW48",
        backbone: definedOnly({ type: o.backbone, padding_mode: padding, align_corners: o.alignCorners }),
        num_classes: o.numClasses,
        drop_prob: o.dropProb,
        proj_dim: contrast ? o.projDim ?? undefined : undefined,
      }),
      loss: contrast ? CONTRAST_LOSS : CE_LOSS,
    },
    "model options",
  );
  return modelOptions(config.model);
}

/**
 * The loss options of a `loss:` section as a config file would hold it (defaults and bounds from the schema;
 * the model is the one the loss types call for, with `numClasses` classes).
 */
export function lossOptionsOf(loss: ConfigInput["loss"], o: { numClasses?: number } = {}): LossOptions {
  const contrast = loss.types.some((t) => t.type !== "CrossEntropyLoss");
  const config = validateConfig(
    {
      iters: 1,
      model: {
        type: contrast ? "HRNetW48Contrast" : "HRNetW48",
        backbone: { type: "HRNet_Tiny" },
        num_classes: o.numClasses ?? 19,
      },
      loss,
    },
    "loss options",
  );
  return lossOptions(config.loss);
}

/** Cross-entropy options: the schema's defaults with `o` over them. */
export function crossEntropyOptionsOf(o: Partial<CrossEntropyOptions> = {}): CrossEntropyOptions {
  return { ...lossOptionsOf(CE_LOSS).ce, ...definedOnly(o) };
}

/** A partial contrast option set (the schema's defaults fill the rest). */
export type PixelContrastOptionsInput = Partial<Omit<PixelContrastOptions, "memory">> & {
  memory?: Partial<MemoryOptions>;
};

/**
 * Contrast options: the schema's defaults with `o` over them. `o` is not checked against the schema, so that
 * code can reach settings a config cannot (e.g. `contrastGroupSize: 0`, the whole batch as one group).
 */
export function contrastOptionsOf(o: PixelContrastOptionsInput = {}): PixelContrastOptions {
  const d = lossOptionsOf(CONTRAST_LOSS).contrast!;
  return { ...d, ...definedOnly(o), memory: { ...d.memory, ...definedOnly(o.memory ?? {}) } };
}

const CE_LOSS: ConfigInput["loss"] = { types: [{ type: "CrossEntropyLoss" }], coef: [1] };
const CONTRAST_LOSS: ConfigInput["loss"] = {
  types: [{ type: "CrossEntropyLoss" }, { type: "PixelContrastCrossEntropyLoss" }],
  coef: [1, 0.1],
};

/** Drops keys whose value is undefined (absent keys take the schema's defaults). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
