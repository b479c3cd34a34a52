/**
 * `deno task val --config X --model_path P [--aug_eval --scales S.. --flip] [--is_slide --crop_size W H
 *  --stride W H] [--save_dir D] [--backend B] [--opts k=v ...]`
 *
 * PaddleSeg's val.py: evaluates the weights at P on `val_dataset` with the same function as in-training
 * evaluation, so a checkpoint gives the same mIoU both ways. With --save_dir the predictions are exported
 * (trainId PNGs; labelId PNGs for the official Cityscapes evaluator; colour overlays).
 */
import { configFlagsHelp, loadConfig, parseConfigArgs } from "../config/mod.ts";
import { initBackend, resolveBackendRequest } from "../backend/mod.ts";
import { validate } from "../eval/validate.ts";
import { datasetFromConfig } from "../run/build.ts";
import { loadTrainedModel } from "../run/trained_model.ts";
import { runCli, UsageError } from "./common.ts";

export async function main(argv: string[]): Promise<number> {
  const args = parseConfigArgs(argv, {
    model_path: { type: "string", doc: "checkpoint folder, model.safetensors, .pdparams or .pth" },
    limit: { type: "number", doc: "evaluate only the first N images" },
    help: { type: "boolean" },
  });
  if (args.extra.help) {
    console.log(`usage: deno task val --config FILE --model_path P [flags]\n\n${configFlagsHelp()}`);
    return 0;
  }
  if (!args.config) throw new UsageError("--config is required");
  if (!args.extra.model_path) {
    throw new UsageError("--model_path is required (a checkpoint folder or weights file)");
  }
  const config = await loadConfig(args.config, { flags: args.flags, overrides: args.opts });
  await initBackend(resolveBackendRequest({ flag: args.flags.backend, config: config.backend }).request);
  const ds = await datasetFromConfig(config, "val_dataset");
  const { model, file } = await loadTrainedModel(config, String(args.extra.model_path), console.log);
  console.log(`evaluating ${file} on ${ds.items.length} images of ${ds.source}`);
  const exportsDir = args.flags.save_dir;
  const res = await validate(model, ds, config, {
    limit: args.extra.limit as number | undefined,
    exportsDir,
  });
  console.log(res.summary);
  if (exportsDir) console.log(`predictions written under ${exportsDir}`);
  model.dispose();
  return 0;
}

if (import.meta.main) await runCli(main);
