/**
 * From a validated config to the objects a run needs: the model (with its configured weights), the loss options
 * and memory bank, the datasets; and {@link runParts}, the same builders as lib/train's trainer takes them.
 * Shared by training, `deno task val` / `predict` / `viz` / `export`, the notebooks and the tests, so all
 * build the same things.
 */
import type { Config } from "../config/mod.ts";
import { openDataset, type SegDataset } from "../data/mod.ts";
import { type LossOptions, type MemoryBank, memoryBankFromOptions } from "../losses/mod.ts";
import { buildModel, loadPretrained, type SegModel } from "../models/mod.ts";
import type { TrainParts } from "../train/trainer.ts";
import type { Rng } from "../util/rng.ts";
import { writeReport } from "../viz/report.ts";
import { lossOptions, modelOptions } from "./options.ts";

/** Builds the model of `config.model` and loads its configured weights (local files only). */
export async function modelFromConfig(
  config: Config,
  rng: Rng,
  log: (line: string) => void = console.log,
): Promise<SegModel> {
  const model = buildModel(modelOptions(config.model), rng.fork("init"));
  const minMatchedShare = config.model.pretrained_min_match;
  try {
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
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** `config` without its pretrained weight files (a checkpoint is loaded instead, or nothing). */
export function withoutPretrained(config: Config): Config {
  return {
    ...config,
    model: {
      ...config.model,
      pretrained: undefined,
      backbone: { ...config.model.backbone, pretrained: undefined },
    },
  };
}

/** The memory bank when the contrast loss enables one (else null); its queue width is the proj dim. */
export function memoryFromConfig(config: Config, loss: LossOptions, rng: Rng): MemoryBank | null {
  const c = loss.contrast;
  if (!c || !c.memory.enabled) return null;
  const m = config.model;
  if (m.type !== "HRNetW48Contrast") throw new Error("loss memory bank needs the contrast model");
  return memoryBankFromOptions(c, m.num_classes, m.proj_dim, rng.fork("memory"));
}

/** Opens `config[which]` (with progress), or throws naming the key when the config has none. */
export async function datasetFromConfig(
  config: Config,
  which: "train_dataset" | "val_dataset",
): Promise<SegDataset> {
  const entry = config[which];
  if (!entry) throw new Error(`config has no ${which}`);
  return await openDataset(entry, { progress: true });
}

/** What lib/train's trainer builds a run from: these builders and lib/viz's report writer. */
export const runParts: TrainParts = {
  dataset: datasetFromConfig,
  model: modelFromConfig,
  loss: (config, rng) => {
    const options = lossOptions(config.loss);
    return { options, memory: memoryFromConfig(config, options, rng) };
  },
  report: writeReport,
};
