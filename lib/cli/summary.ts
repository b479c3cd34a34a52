/**
 * `deno task summary --config <yml>`: layer table and parameter counts of the configured model.
 * Without a config: `--backbone HRNet_W48 --num_classes 19 [--proj_dim 720] [--type HRNetW48Contrast]`.
 * `--full` lists every tensor. Nothing is allocated: the model is built from shapes only.
 */
import { parseArgs } from "node:util";
import {
  type ModelConfigLike,
  type ModelOptions,
  modelOptionsFromConfig,
  SegModel,
  summarize,
} from "../models/mod.ts";

const HELP = `usage: deno task summary --config <file.yml> [--full]
       deno task summary --backbone HRNet_W48 --num_classes 19 [--proj_dim 720] [--type HRNetW48Contrast|HRNetCE] [--full]`;

/** The config's resolved `model` section (lib/config when present, else the YAML file itself). */
async function modelFromConfig(path: string): Promise<ModelConfigLike> {
  let mod: { loadConfig: (p: string) => Promise<{ model: ModelConfigLike }> } | null = null;
  try {
    const spec = new URL("../config/mod.ts", import.meta.url).href;
    mod = await import(spec);
  } catch {
    mod = null;
  }
  if (mod) return (await mod.loadConfig(path)).model;
  // Fallback while lib/config is not available: the file's own model section, no _base_ merge.
  const { parse } = await import("yaml");
  const raw = parse(await Deno.readTextFile(path)) as { model?: ModelConfigLike };
  if (!raw?.model) {
    throw new Error(`${path}: no 'model' section (and lib/config is not available for _base_)`);
  }
  console.error(`note: lib/config not available; reading ${path}'s model section without _base_ merging`);
  return raw.model;
}

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
    options = modelOptionsFromConfig(await modelFromConfig(values.config));
  } else if (values.backbone && values.num_classes) {
    options = {
      type: (values.type ?? "HRNetW48Contrast") as ModelOptions["type"],
      backbone: values.backbone as ModelOptions["backbone"],
      numClasses: Number(values.num_classes),
      projDim: values.proj_dim === undefined ? undefined : Number(values.proj_dim),
    };
  } else {
    console.error(HELP);
    return 2;
  }
  const model = new SegModel(options, { materialise: false });
  console.log(summarize(model, { full: values.full }));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`summary: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
