/**
 * `deno task check-data --config X [--fast | --sample N]`
 * `deno task check-data --type Dataset --dataset_root D --train_path L --num_classes 11 [--ignore_index 11]`
 *
 * Scans the train and val datasets of a config (or one dataset given by flags): images per split, size
 * statistics, per-class label histogram; refuses impossible labels with a named fix. Exit code 1 when a
 * dataset has errors, 2 for a wrong command line or config (lib/cli/common.ts).
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config/mod.ts";
import {
  checkDataset,
  DataError,
  type DatasetConfig,
  formatCheckReport,
  type Mode,
  openDataset,
} from "../data/mod.ts";
import { runCli, UsageError } from "./common.ts";

const HELP = `usage: deno task check-data --config CONFIG.yml [--fast | --sample N]
       deno task check-data --type Cityscapes|Dataset|SyntheticCityscapes --dataset_root DIR [--mode train|val]
                            [--train_path L] [--val_path L] [--num_classes N] [--ignore_index I] [--separator S]
  --fast       check a random sample of 16 images per split, sizes from headers (what training runs on start)
  --sample N   check a random sample of N images per split`;

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      type: { type: "string" },
      dataset_root: { type: "string" },
      mode: { type: "string" },
      train_path: { type: "string" },
      val_path: { type: "string" },
      test_path: { type: "string" },
      num_classes: { type: "string" },
      ignore_index: { type: "string" },
      separator: { type: "string" },
      sample: { type: "string" },
      fast: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });

  if (values.help || (!values.config && !values.type)) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }

  const num = (k: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new UsageError(`--${k} must be an integer, got '${v}'`);
    return n;
  };

  const entries: Array<[string, DatasetConfig]> = [];
  if (values.config) {
    const config = await loadConfig(values.config);
    for (const key of ["train_dataset", "val_dataset"] as const) {
      const entry = config[key];
      if (entry) entries.push([key, entry]);
    }
    if (!entries.length) {
      throw new ConfigError([{
        source: values.config,
        path: "",
        message: "has neither train_dataset nor val_dataset",
      }]);
    }
  } else {
    const base: DatasetConfig = {
      type: values.type!,
      dataset_root: values.dataset_root,
      train_path: values.train_path,
      val_path: values.val_path,
      test_path: values.test_path,
      num_classes: num("num_classes", values.num_classes),
      ignore_index: num("ignore_index", values.ignore_index),
      separator: values.separator,
    };
    const modes: Mode[] = values.mode
      ? [values.mode as Mode]
      : base.type === "Dataset"
      ? (["train", "val", "test"] as Mode[]).filter((m) => base[`${m}_path`])
      : ["train", "val"];
    for (const m of modes) entries.push([`${m}`, { ...base, mode: m }]);
  }

  const sample = values.fast ? 16 : num("sample", values.sample);
  let failed = false;
  for (const [name, cfg] of entries) {
    let ds;
    try {
      ds = await openDataset(cfg);
    } catch (e) {
      console.log(`${name}: ${(e as Error).message}`);
      failed = true;
      if (!(e instanceof DataError)) console.log(`  (${cfg.type} at ${cfg.dataset_root})`);
      continue;
    }
    const t0 = performance.now();
    const report = await checkDataset(ds, {
      sample,
      decodeImages: !values.fast,
      onProgress: (d, n) => {
        if (Deno.stderr.isTerminal()) {
          Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[Kchecking ${name}: ${d}/${n}`));
        }
      },
    });
    if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    console.log(`${name}: ${formatCheckReport(report)}`);
    console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    if (report.errors.length) failed = true;
  }
  return failed ? 1 : 0;
}

if (import.meta.main) await runCli(main);
