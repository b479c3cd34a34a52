/**
 * `deno task summary --config <yml>`: layer table and parameter counts of the configured model.
 * Without a config: `--backbone HRNet_W48 --num_classes 19 [--proj_dim 720] [--type HRNetW48Contrast]`.
 * `--full` lists every tensor. Nothing is allocated: the model is built from shapes only.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/mod.ts";
import { type ModelOptions, SegModel, summarize } from "../models/mod.ts";
import { modelOptions, modelOptionsOf } from "../run/options.ts";
import { runCli, UsageError } from "./common.ts";

const HELP = `usage: deno task summary --config <file.yml> [--full]
       deno task summary --backbone HRNet_W48 --num_classes 19 [--proj_dim 720] [--type HRNetW48Contrast|HRNetCE] [--full]`;

/** `--type` as the config spells it (with PaddleSeg's and REPRO's aliases), or as lib/models names it. */
const MODEL_TYPES: Record<string, ModelOptions["type"]> = {
  HRNetW48Contrast: "HRNetW48Contrast",
  HRNetW48ContrastHead: "HRNetW48Contrast",
  HRNetW48: "HRNetCE",
  HRNetCE: "HRNetCE",
};

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      backbone: { type: "string" },
      num_classes: { type: "string" },
      proj_dim: { type: "string" },
      type: { type: "string" },
      full: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let options: ModelOptions;
  if (values.config) {
    options = modelOptions((await loadConfig(values.config)).model);
  } else if (values.backbone && values.num_classes) {
    // checked against the schema like a config's model section (a wrong value exits 2, naming the key)
    const type = values.type ?? "HRNetW48Contrast";
    if (!(type in MODEL_TYPES)) {
      throw new UsageError(`--type must be one of ${Object.keys(MODEL_TYPES).join(", ")}, got '${type}'`);
    }
    options = modelOptionsOf({
      type: MODEL_TYPES[type],
      backbone: values.backbone as ModelOptions["backbone"],
      numClasses: Number(values.num_classes),
      projDim: values.proj_dim === undefined ? undefined : Number(values.proj_dim),
    });
  } else {
    throw new UsageError(`--config, or --backbone and --num_classes, is required\n${HELP}`);
  }
  const model = new SegModel(options, { materialise: false });
  console.log(summarize(model, { full: values.full }));
  return 0;
}

if (import.meta.main) await runCli(main);
