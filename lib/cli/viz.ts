/**
 * `deno task viz embed --config X --model_path P [--compare_with Q] [--compare_config Y]
 *                      [--layer proj|decoder] [--pixels N] [--images N] [--method pca|umap] [--seed S]
 *                      [--out F.html] [--backend B] [--opts k=v ...]`
 *
 * The paper's picture of the feature space: pixel features of one model (or two side by side, e.g. the
 * CE-only model and the contrast model) on the first `--images` validation images of X's `val_dataset`,
 * a class-balanced seeded sample of `--pixels` grid cells per class (the same cells for both models),
 * projected to 2-D (PCA, or UMAP), coloured with the official class colours, each panel captioned with
 * its structure measures, written as one offline HTML file. The measures are printed too.
 *
 * `--layer decoder` (default): the HRNet representation both heads read (every model has it);
 * `--layer proj`: the projection head's embeddings (contrast models only). The model at Q is built from
 * `--compare_config`, else from the config saved in Q's checkpoint folder, else from X.
 */
import { join } from "node:path";
import { configFlagsHelp, loadConfig, parseConfigArgs } from "../config/mod.ts";
import { initBackend, resolveBackendRequest } from "../backend/mod.ts";
import { datasetFromConfig } from "../run/build.ts";
import { trainedFeatureSpace, type TrainedSubject } from "../run/feature_space.ts";
import { checkpointConfig } from "../run/trained_model.ts";
import { FEATURE_LAYERS, type FeatureLayer, modelKind } from "../eval/features.ts";
import {
  featureSpaceFigure,
  featureSpaceTable,
  formatMeasures,
  type ReportFigure,
  writeFiguresHtml,
} from "../viz/mod.ts";
import { runCli, UsageError } from "./common.ts";

const USAGE =
  `usage: deno task viz embed --config FILE --model_path P [--compare_with Q] [--compare_config FILE]
                           [--layer proj|decoder] [--pixels N] [--images N] [--method pca|umap]
                           [--seed S] [--out F.html] [--backend B] [--opts key=value ...]

  --model_path P      checkpoint folder (iter_N, best_model), model.safetensors, .pdparams or .pth
  --compare_with Q    a second model drawn beside the first (e.g. the CE-only twin)
  --compare_config F  config of Q (default: the one saved in Q's checkpoint folder, else --config)
  --layer L           decoder (default; the HRNet representation, every model) or proj (projection
                      head embeddings, contrast models only)
  --pixels N          pixels per class in the class-balanced sample (default 200)
  --images N          validation images read (default 50)
  --method M          pca (default, fast) or umap
  --seed S            sample / UMAP seed (default 0)
  --out F.html        output file (default output/viz/embed_<layer>_<method>.html)`;

export async function main(argv: string[]): Promise<number> {
  const args = parseConfigArgs(argv, {
    model_path: { type: "string" },
    compare_with: { type: "string" },
    compare_config: { type: "string" },
    layer: { type: "string" },
    pixels: { type: "number" },
    images: { type: "number" },
    method: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean" },
  });
  if (args.extra.help) {
    console.log(`${USAGE}\n\n${configFlagsHelp()}`);
    return 0;
  }
  const [command, ...rest] = args.positionals;
  if (command !== "embed" || rest.length) {
    throw new UsageError(
      `expected the subcommand 'embed'${command ? `, got '${args.positionals.join(" ")}'` : ""}\n${USAGE}`,
    );
  }
  if (!args.config) throw new UsageError("--config is required");
  if (!args.extra.model_path) {
    throw new UsageError("--model_path is required (a checkpoint folder or weights file)");
  }
  const layer = String(args.extra.layer ?? "decoder") as FeatureLayer;
  if (!FEATURE_LAYERS.includes(layer)) {
    throw new UsageError(`--layer must be proj or decoder, got '${layer}'`);
  }
  const method = String(args.extra.method ?? "pca");
  if (method !== "pca" && method !== "umap") {
    throw new UsageError(`--method must be pca or umap, got '${method}'`);
  }
  const perClass = positiveInt("pixels", args.extra.pixels ?? 200);
  const images = positiveInt("images", args.extra.images ?? 50);
  const seed = args.flags.seed ?? 0;
  const out = String(args.extra.out ?? join("output", "viz", `embed_${layer}_${method}.html`));

  const config = await loadConfig(args.config, { flags: args.flags, overrides: args.opts });
  await initBackend(resolveBackendRequest({ flag: args.flags.backend, config: config.backend }).request);
  const subjects: TrainedSubject[] = [
    { title: "", config, path: String(args.extra.model_path), layers: [layer] },
  ];
  if (args.extra.compare_with) {
    const q = String(args.extra.compare_with);
    const qConfig = args.extra.compare_config
      ? await loadConfig(String(args.extra.compare_config), { overrides: args.opts })
      : (await checkpointConfig(q)) ?? config;
    subjects.push({ title: "", config: qConfig, path: q, layers: [layer] });
  }
  for (const s of subjects) {
    s.title = `${modelKind(s.config)} (${s.path})`;
    if (layer === "proj" && s.config.model.type !== "HRNetW48Contrast") {
      throw new UsageError(
        `--layer proj: ${s.path} is a ${s.config.model.type} model without a projection head; ` +
          "use --layer decoder (the HRNet representation every model has)",
      );
    }
  }

  const ds = await datasetFromConfig(config, "val_dataset");
  const space = await trainedFeatureSpace(subjects, {
    dataset: ds,
    images,
    perClass,
    seed,
    projections: [method],
    log: (line) => console.log(line),
    onSelection: (sel) =>
      console.log(
        `${sel.labels.length} pixels (≤${perClass} per class, ${
          sel.available.filter((v) => v > 0).length
        } classes) from ${sel.grids.length} images of ${ds.source}, seed ${seed}`,
      ),
    onFeatures: (s, f) => console.log(`${s.title}: ${layer} features, ${f.dim}-d`),
  });
  const { selection: sel } = space;
  // One figure per width: side by side when the models' widths agree.
  const figures: ReportFigure[] = space.views.map((v) => ({
    heading: `Pixel features (${layer} layer, ${method.toUpperCase()})`,
    figure: featureSpaceFigure(v, method, { classNames: ds.classNames ?? undefined }),
    note:
      `${sel.labels.length} pixels, ≤${perClass} per class, from ${sel.grids.length} validation images; ` +
      `labels taken at label[4i, 4j] of each stride-4 grid cell; features scaled to unit length (cosine ` +
      `geometry). Measures on the full-dimensional features.`,
  }));
  const table = featureSpaceTable(space);
  console.log(table.toString());
  writeFiguresHtml(
    out,
    "Feature space: pixel embeddings coloured by class",
    figures,
    `config ${args.config}; layer ${layer}; ${method.toUpperCase()}; seed ${seed}. ` +
      space.views.flatMap((v) => v.panels).map((p) => `${p.title}: ${formatMeasures(p.measures)}`).join(
        "; ",
      ) +
      ".",
  );
  console.log(`written: ${out}`);
  return 0;
}

function positiveInt(flag: string, v: unknown): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, got '${v}'`);
  return n;
}

if (import.meta.main) await runCli(main);
