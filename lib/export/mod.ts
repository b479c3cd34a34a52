/**
 * `deno task export --to paddleseg`: a config of ours (and optionally its weights) as a folder PaddleSeg
 * 2.8 trains from, with the commands to run and to come back.
 *
 *   const r = await exportToPaddleSeg({ configPath, config, outDir: "output/export", modelPath });
 *   // outDir/config.yml, outDir/model.pdparams (with weights), outDir/README.md
 *
 * Weights: `modelPath` (a checkpoint folder of ours, model.safetensors, .pdparams, .pth) or, without it,
 * the config's pretrained weights when they are here (the model our trainer would start from: pretrained
 * tensors plus our seeded initialisation of the rest). They go to `model.pdparams` under PaddleSeg's
 * names, which `model.pretrained` loads. Datasets in the Cityscapes layout get the train-id label files
 * PaddleSeg reads (automatically for our generated dataset, with `writeTrainIds` for others).
 * Nothing is written before the translation succeeded (refusals name every key at fault).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/mod.ts";
import { ensureSyntheticCityscapes } from "../data/synthetic.ts";
import { buildModel, paddleStateDict, savePdparams, type SegModel } from "../models/mod.ts";
import { modelFromConfig } from "../run/build.ts";
import { modelOptions } from "../run/options.ts";
import { loadTrainedModel } from "../run/trained_model.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { Rng } from "../util/rng.ts";
import { CE_TWIN_PROJ_DIM, translateConfig, type Translation, type WeightsPlan } from "./paddleseg.ts";
import { toPyYaml } from "./pyyaml.ts";
import { type ExportCommands, exportCommands, exportReadme } from "./readme.ts";
import { ensureTrainIds } from "./train_ids.ts";

export { ExportRefusedError, type Refusal, translateConfig, type Translation } from "./paddleseg.ts";
export { PyFloat, toPyYaml } from "./pyyaml.ts";
export { ensureTrainIds } from "./train_ids.ts";

export interface ExportOptions {
  /** The config file (for messages and the README's commands). */
  configPath: string;
  config: Config;
  outDir: string;
  modelPath?: string;
  /** Write *_gtFine_labelTrainIds.png into Cityscapes folders that lack them (our generated data: always). */
  writeTrainIds?: boolean;
  log?: (line: string) => void;
}

export interface ExportResult {
  translation: Translation;
  commands: ExportCommands;
  files: string[];
  /** Tensors in model.pdparams (0 when none was written). */
  tensors: number;
}

function weightFilesHere(config: Config): boolean {
  const paths = [config.model.backbone.pretrained, config.model.pretrained].filter((p): p is string => !!p);
  return paths.length > 0 && paths.every((p) => existsSync(p));
}

export async function exportToPaddleSeg(o: ExportOptions): Promise<ExportResult> {
  const log = o.log ?? console.log;
  const pdparams = join(o.outDir, "model.pdparams");
  const exportWeights = o.modelPath !== undefined || weightFilesHere(o.config);
  const plan: WeightsPlan = exportWeights ? { kind: "exported", pdparams } : { kind: "paths" };
  const saveDir = join(o.outDir, "output");
  const t = translateConfig(o.config, o.configPath, { weights: plan, saveDir, exists: existsSync });

  // datasets first: a missing train-id file is a refusal too, and must come before any write
  for (const d of t.datasets) {
    if (d.layout !== "cityscapes") continue;
    if (d.synthetic) {
      const ds = o.config[d.key];
      if (ds?.type !== "SyntheticCityscapes") continue;
      await ensureSyntheticCityscapes({ ...ds, progress: false });
    }
    if (!d.synthetic && !existsSync(d.root)) {
      // exported where the data is not (e.g. for a GPU machine): PaddleSeg's Cityscapes will need them there
      t.notes.push(
        `${d.key}.dataset_root ${d.root} is not here: PaddleSeg reads gtFine/${d.mode}/*/*_gtFine_labelTrainIds.png ` +
          "there (export there with --write_train_ids, or run cityscapesScripts' createTrainIdLabelImgs)",
      );
      continue;
    }
    const r = await ensureTrainIds(d.root, d.mode as "train" | "val" | "test", {
      write: d.synthetic || o.writeTrainIds === true,
      log,
    });
    if (r.missing.length) {
      throw new Error(
        `${d.key}.dataset_root: ${r.missing.length} label(s) under ${d.root}/gtFine/${d.mode} have no ` +
          `*_gtFine_labelTrainIds.png, which PaddleSeg's Cityscapes reads (e.g. ${r.missing[0]}); add ` +
          "--write_train_ids to write them beside the label ids (or run cityscapesScripts' createTrainIdLabelImgs)",
      );
    }
  }

  let tensors = 0;
  let source = "";
  if (exportWeights) {
    // the checkpoint at modelPath (which replaces the config's pretrained weights), or the model our trainer
    // would start from: the config's pretrained tensors plus our seeded initialisation of the rest
    let model: SegModel;
    if (o.modelPath) {
      const trained = await loadTrainedModel(o.config, o.modelPath, log, new Rng(o.config.seed));
      model = trained.model;
      source = trained.file;
    } else {
      model = await modelFromConfig(o.config, new Rng(o.config.seed), log);
      source = [o.config.model.backbone.pretrained, o.config.model.pretrained].filter(Boolean).join(" + ") +
        " (+ our initialisation of the rest)";
    }
    let extra: SegModel | null = null;
    try {
      const state = await paddleStateDict(model);
      if (t.ceTwin) {
        // the exported HRNetW48Contrast needs a projection head: ours, seeded (weighted 0 by the loss)
        extra = buildModel(
          { ...modelOptions(o.config.model), type: "HRNetW48Contrast", projDim: CE_TWIN_PROJ_DIM },
          new Rng(o.config.seed).fork("init"),
        );
        for (const [k, v] of await paddleStateDict(extra)) if (k.startsWith("proj_head.")) state.set(k, v);
      }
      await savePdparams(pdparams, state);
      tensors = state.size;
      log(`wrote ${pdparams} (${tensors} tensors from ${source})`);
    } finally {
      model.dispose();
      extra?.dispose();
    }
  }

  if (!exportWeights && !o.config.model.pretrained && !o.config.model.backbone.pretrained) {
    t.notes.push(
      "no weights given: PaddleSeg initialises the model its own way (pass --model_path to start from a " +
        "checkpoint of ours)",
    );
  }
  const facts = {
    configPath: o.configPath,
    outDir: o.outDir,
    saveDir,
    weights: exportWeights ? { source, tensors } : null,
    cwd: Deno.cwd(),
  };
  const header =
    `# PaddleSeg 2.8 config exported from ${o.configPath} by \`deno task export --to paddleseg\`.\n` +
    `# Paths are relative to the working directory of the export; see README.md beside this file.\n`;
  const files = [join(o.outDir, "config.yml"), join(o.outDir, "README.md")];
  await writeFileAtomic(files[0], header + toPyYaml(t.config));
  await writeFileAtomic(files[1], exportReadme(t, facts));
  if (exportWeights) files.push(pdparams);
  return { translation: t, commands: exportCommands(t, facts), files, tensors };
}
