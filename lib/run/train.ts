/**
 * Training from a config: lib/train's trainer with the parts lib/run builds (`runParts`: datasets, model,
 * loss, memory bank, lib/viz's report writer). What `deno task train` and the notebooks call.
 *
 *   const result = await train(await loadConfig(path), { configName: path });
 */
import type { Config } from "../config/mod.ts";
import { train as trainWith, type TrainOptions, type TrainResult } from "../train/trainer.ts";
import { runParts } from "./build.ts";

export type { TrainOptions, TrainResult };

/** Trains `config` (see lib/train/trainer.ts for the steps and what a run writes). */
export async function train(config: Config, opts: TrainOptions): Promise<TrainResult> {
  return await trainWith(config, runParts, opts);
}
