/**
 * `deno task export --config X [--model_path P] --to paddleseg --out DIR [--write_train_ids] [--overwrite]
 *  [--opts k=v ...]`
 *
 * Writes DIR/config.yml (PaddleSeg 2.8), DIR/model.pdparams (with weights) and DIR/README.md, and prints
 * the commands to train on PaddleSeg's distributed engine and to come back (lib/export). A key PaddleSeg
 * cannot express stops the export with the key named (exit 2, as a config error); nothing is written then.
 * A wrong command line (no --config / --out, another --to, a non-empty --out) exits 2 too.
 */
import { existsSync, readdirSync } from "node:fs";
import { configFlagsHelp, loadConfig, parseConfigArgs } from "../config/mod.ts";
import { initBackend, resolveBackendRequest } from "../backend/mod.ts";
import { ExportRefusedError, exportToPaddleSeg } from "../export/mod.ts";
import { runCli, UsageError } from "./common.ts";

const USAGE = "usage: deno task export --config FILE [--model_path P] --to paddleseg --out DIR " +
  "[--write_train_ids] [--overwrite] [--opts key=value ...]";

export async function main(argv: string[]): Promise<number> {
  const args = parseConfigArgs(argv, {
    to: { type: "string", doc: "target framework: paddleseg" },
    out: { type: "string", doc: "output folder" },
    model_path: {
      type: "string",
      doc: "weights to export: checkpoint folder, model.safetensors, .pdparams, .pth",
    },
    write_train_ids: {
      type: "boolean",
      doc: "write *_gtFine_labelTrainIds.png beside *_gtFine_labelIds.png where missing (Cityscapes)",
    },
    overwrite: {
      type: "boolean",
      doc: "export into a non-empty --out (replaces config.yml, model.pdparams, README.md)",
    },
    help: { type: "boolean" },
  });
  if (args.extra.help) {
    console.log(`${USAGE}\n\n${configFlagsHelp()}`);
    return 0;
  }
  if (!args.config) throw new UsageError(`--config is required\n${USAGE}`);
  if (args.extra.to !== "paddleseg") {
    throw new UsageError(
      `--to must be paddleseg (got ${args.extra.to === undefined ? "nothing" : `'${args.extra.to}'`})`,
    );
  }
  const out = args.extra.out as string | undefined;
  if (!out) throw new UsageError(`--out is required\n${USAGE}`);
  if (existsSync(out) && readdirSync(out).length > 0 && !args.extra.overwrite) {
    throw new UsageError(
      `--out '${out}' is not empty (an earlier export, whose PaddleSeg run in ${out}/output would no longer ` +
        "match): choose another folder, or pass --overwrite",
    );
  }
  const config = await loadConfig(args.config, { flags: args.flags, overrides: args.opts });
  await initBackend(resolveBackendRequest({ flag: args.flags.backend, config: config.backend }).request);
  try {
    const r = await exportToPaddleSeg({
      configPath: args.config,
      config,
      outDir: out,
      modelPath: args.extra.model_path as string | undefined,
      writeTrainIds: args.extra.write_train_ids === true,
    });
    const t = r.translation;
    console.log(`\nexported ${args.config} -> ${r.files.join(", ")}`);
    if (t.notes.length) {
      console.log(`translated with a change:\n${t.notes.map((n) => `  - ${n}`).join("\n")}`);
    }
    if (t.dropped.length) {
      console.log(`not needed by PaddleSeg:\n${t.dropped.map((d) => `  - ${d.key}: ${d.why}`).join("\n")}`);
    }
    const c = r.commands;
    console.log(
      `\ntrain (PaddleSeg checkout at $PADDLESEG), 1 GPU:\n  ${c.oneGpu}\n4 GPUs:\n  ${c.fourGpus}\n` +
        `without a checkout (this repository's driver, same flags):\n  ${c.driver}\n` +
        `evaluate:\n  ${c.val}\nback here:\n  ${c.back.join("\n  ")}\n(more in ${out}/README.md)`,
    );
    return 0;
  } catch (e) {
    if (e instanceof ExportRefusedError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) await runCli(main);
