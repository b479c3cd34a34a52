/**
 * From a validated config to the objects a run needs (model, losses, data, evaluation mode). Shared by
 * `deno task train`, `val`, `predict`, the notebooks and the benchmarks, so all build the same things.
 */
import type { Config } from "../config/mod.ts";
import { buildModel, loadPretrained, modelOptionsFromConfig, type SegModel } from "../models/mod.ts";
import {
  type LossOptions,
  lossOptionsFromConfig,
  type MemoryBank,
  memoryBankFromOptions,
} from "../losses/mod.ts";
import { type DatasetConfig, openDataset, type SegDataset } from "../data/mod.ts";
import { type EvalModeOptions, type EvalResult, evaluate } from "../eval/mod.ts";
import { valSamples } from "../eval/samples.ts";
import type { Rng } from "../util/rng.ts";

/** Builds the model of `config.model` and loads its configured weights (local files only). */
export async function modelFromConfig(
  config: Config,
  rng: Rng,
  log: (line: string) => void = console.log,
): Promise<SegModel> {
  const model = buildModel(modelOptionsFromConfig(config.model), rng.fork("init"));
  const minMatchedShare = config.model.pretrained_min_match;
  if (config.model.backbone.pretrained) {
    log(`loading backbone weights from ${config.model.backbone.pretrained}`);
    await loadPretrained(model, config.model.backbone.pretrained, {
      scope: "backbone",
      minMatchedShare,
      log,
    });
  }
  if (config.model.pretrained) {
    log(`loading model weights from ${config.model.pretrained}`);
    await loadPretrained(model, config.model.pretrained, { scope: "full", minMatchedShare, log });
  }
  return model;
}

export function lossFromConfig(config: Config): LossOptions {
  return lossOptionsFromConfig(config.loss);
}

/** The memory bank when the contrast loss enables one (else null); its queue width is the proj dim. */
export function memoryFromConfig(config: Config, loss: LossOptions, rng: Rng): MemoryBank | null {
  const c = loss.contrast;
  if (!c || !c.memory.enabled) return null;
  if (config.model.type !== "HRNetW48Contrast") throw new Error("loss memory bank needs the contrast model");
  return memoryBankFromOptions(c, config.model.num_classes!, config.model.proj_dim, rng.fork("memory"));
}

export async function datasetFromConfig(
  entry: Config["train_dataset"] | Config["val_dataset"],
  which: "train_dataset" | "val_dataset",
): Promise<SegDataset> {
  if (!entry) throw new Error(`config has no ${which}`);
  return await openDataset(entry as unknown as DatasetConfig, { progress: true });
}

/** PaddleSeg's `test_config` as lib/eval's mode options. */
export function evalModeFromConfig(config: Config): EvalModeOptions {
  const t = config.test_config;
  const slide = t.is_slide ? { isSlide: true, cropSize: t.crop_size, stride: t.stride } : {};
  const aug = t.aug_eval
    ? { augEval: true, scales: t.scales, flipHorizontal: t.flip_horizontal, flipVertical: t.flip_vertical }
    : {};
  return { ...slide, ...aug };
}

/**
 * Evaluates `model` on a validation dataset with the config's `test_config` mode: the one function
 * behind in-training evaluation and `deno task val`, so both report the same number for the same weights.
 */
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
