/**
 * `deno task train [--config X] [--do_eval] [--log_iter N] [--save_interval N] [--save_dir D]
 *                  [--resume_model D] [--iters N] [--batch_size N] [--backend B] [--precision P] [--graph G]
 *                  [--opts k=v ...]`
 *
 * PaddleSeg's train.py, for one device. Without `--config` it trains the default model on the embedded
 * synthetic dataset (generated and unpacked on first use), evaluates it and writes the report.
 */
import { configFlagsHelp, loadConfig, parseConfigArgs } from "../config/mod.ts";
import { resolveBackendRequest } from "../backend/mod.ts";
import { train } from "../run/train.ts";
import { DEFAULT_CONFIG, runCli } from "./common.ts";

export async function main(argv: string[]): Promise<number> {
  const args = parseConfigArgs(argv, { help: { type: "boolean" } });
  if (args.extra.help) {
    console.log(
      `usage: deno task train [--config FILE] [flags] [--opts key=value ...]\n\n${configFlagsHelp()}`,
    );
    return 0;
  }
  const configPath = args.config ?? DEFAULT_CONFIG;
  if (!args.config) console.log(`no --config given: training the default ${configPath}`);
  const config = await loadConfig(configPath, { flags: args.flags, overrides: args.opts });
  const { request } = resolveBackendRequest({ flag: args.flags.backend, config: config.backend });
  await train(config, { configName: configPath, backend: request });
  return 0;
}

if (import.meta.main) await runCli(main);
