/**
 * A trained model for evaluation, inference, analysis and export (`deno task val`, `predict`, `viz`,
 * `export`, notebooks 03/04): the model of a config with the weights at `--model_path`, and the config a
 * checkpoint folder was trained with.
 */
import { join } from "node:path";
import { type Config, loadConfigText } from "../config/mod.ts";
import type { SegModel } from "../models/mod.ts";
import { readTrainState } from "../train/checkpoint.ts";
import { Rng } from "../util/rng.ts";
import { modelFromConfig, withoutPretrained } from "./build.ts";
import { loadModelPath } from "./model_path.ts";

/**
 * The model of `config` with the weights at `modelPath` (a checkpoint folder `iter_N`/`best_model`, our
 * `model.safetensors`, or foreign weights as `deno task val` takes them; see ./model_path.ts). The config's
 * own pretrained weights are not loaded first (the checkpoint replaces them all). `file` is the file read.
 * `init` initialises the model before loading (what foreign weights that match only partly leave as it is).
 */
export async function loadTrainedModel(
  config: Config,
  modelPath: string,
  log: (line: string) => void = () => {},
  init: Rng = new Rng(0),
): Promise<{ model: SegModel; file: string }> {
  const model = await modelFromConfig(withoutPretrained(config), init, log);
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
