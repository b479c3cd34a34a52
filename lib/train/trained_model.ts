/**
 * A trained model for analysis and inference (notebooks 03/04, `deno task viz`): the model of a config with
 * the weights at `--model_path`, and the config a checkpoint folder was trained with.
 *
 * Composition of lib/train's builders and weight loading; cli/val.ts and cli/predict.ts still build and load
 * on their own (ARCHITECTURE.md, "Not yet as drawn").
 */
import { join } from "node:path";
import { type Config, loadConfigText } from "../config/mod.ts";
import type { SegModel } from "../models/mod.ts";
import { Rng } from "../util/rng.ts";
import { modelFromConfig } from "./build.ts";
import { readTrainState } from "./checkpoint.ts";
import { loadModelPath } from "./weights.ts";

/**
 * The model of `config` with the weights at `modelPath` (a checkpoint folder `iter_N`/`best_model`, our
 * `model.safetensors`, or foreign weights as `deno task val` takes them). The config's own pretrained
 * weights are not loaded first (the checkpoint replaces them all).
 */
export async function loadTrainedModel(
  config: Config,
  modelPath: string,
  log: (line: string) => void = () => {},
): Promise<{ model: SegModel; file: string }> {
  const bare: Config = {
    ...config,
    model: {
      ...config.model,
      pretrained: undefined,
      backbone: { ...config.model.backbone, pretrained: undefined },
    },
  };
  const model = await modelFromConfig(bare, new Rng(0), log);
  try {
    const file = await loadModelPath(model, modelPath, {
      minMatchedShare: config.model.pretrained_min_match,
      log,
    });
    return { model, file };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The config a checkpoint folder was trained with (its `state.json`), or null for other paths. */
export async function checkpointConfig(modelPath: string): Promise<Config | null> {
  const stat = await Deno.stat(modelPath).catch(() => null);
  if (!stat?.isDirectory) return null;
  if (!(await Deno.stat(join(modelPath, "state.json")).catch(() => null))) return null;
  const state = await readTrainState(modelPath);
  return await loadConfigText(state.configYaml, join(modelPath, "state.json"));
}
