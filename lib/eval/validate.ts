/**
 * Validation as a config describes it: PaddleSeg's `test_config` as inference-mode options, and `validate`, the
 * one function behind in-training evaluation and `deno task val`, so both report the same number for the same
 * weights.
 */
import type { Config } from "../config/mod.ts";
import type { SegDataset } from "../data/mod.ts";
import type { SegModel } from "../models/mod.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import type { EvalModeOptions } from "./inference.ts";
import { valSamples } from "./samples.ts";

/** PaddleSeg's `test_config` as lib/eval's mode options. */
export function evalModeFromConfig(config: Config): EvalModeOptions {
  const t = config.test_config;
  const slide = t.is_slide ? { isSlide: true, cropSize: t.crop_size, stride: t.stride } : {};
  const aug = t.aug_eval
    ? { augEval: true, scales: t.scales, flipHorizontal: t.flip_horizontal, flipVertical: t.flip_vertical }
    : {};
  return { ...slide, ...aug };
}

/** Evaluates `model` on a validation dataset with the config's `test_config` mode. */
export async function validate(
  model: SegModel,
  ds: SegDataset,
  config: Config,
  o: { progress?: boolean; limit?: number; exportsDir?: string } = {},
): Promise<EvalResult & { valLoss?: number }> {
  return await evaluate(model, valSamples(ds, { limit: o.limit }), {
    numClasses: ds.numClasses,
    ignoreIndex: ds.ignoreIndex,
    classNames: ds.classNames ?? undefined,
    progress: o.progress,
    ...evalModeFromConfig(config),
    // exported like PaddleSeg's val.py: trainId PNGs and overlays, plus labelId PNGs (the official
    // evaluator's input) for datasets in the Cityscapes layout
    ...(o.exportsDir
      ? { exports: { dir: o.exportsDir, labelIds: ds.type !== "Dataset", overlay: true } }
      : {}),
  });
}
