/**
 * `deno task predict --config X --model_path P --image_path I --save_dir D [mode flags] [--backend B]`
 *
 * PaddleSeg's predict.py: segments one image, every image of a folder, or the images of a list file,
 * with the config's validation transforms and `test_config` mode, and writes under D the trainId PNGs,
 * colour masks and overlays in the dataset's palette (Cityscapes colours for 19 classes).
 */
import { join } from "node:path";
import { configFlagsHelp, loadConfig, parseConfigArgs } from "../config/mod.ts";
import { initBackend, resolveBackendRequest } from "../backend/mod.ts";
import { tf } from "../backend/tf.ts";
import { applyTransforms, buildTransforms, readImageRgb } from "../data/mod.ts";
import { evalModeFromConfig, exportPrediction, predictClasses, resolveEvalMode } from "../eval/mod.ts";
import { loadTrainedModel } from "../run/trained_model.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { runCli, UsageError } from "./common.ts";
import { FileCheckError, readFileBounded } from "../util/fs.ts";

const IMAGE_EXT = /\.(png|jpe?g)$/i;

async function listImages(path: string): Promise<string[]> {
  const stat = await Deno.stat(path).catch(() => null);
  if (!stat) throw new Error(`--image_path '${path}' does not exist`);
  if (stat.isDirectory) {
    const out: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        const p = join(dir, e.name);
        if (e.isDirectory) await walk(p);
        else if (IMAGE_EXT.test(e.name)) out.push(p);
      }
    };
    await walk(path);
    if (!out.length) throw new Error(`--image_path '${path}' holds no .png/.jpg images`);
    return out.sort();
  }
  if (IMAGE_EXT.test(path)) return [path];
  // a list file: the first field of each line is an image path, relative to the list file's folder
  // a regular file of bounded size (a list of image paths is kilobytes; /dev/zero or a FIFO never ends)
  const text = new TextDecoder().decode(
    await readFileBounded(path, 64 << 20).catch((e) => {
      throw new Error(
        `--image_path list file ${e instanceof FileCheckError ? e.message : `'${path}': ${e.message}`}`,
      );
    }),
  );
  const dir = join(path, "..");
  return text.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean).map((p) => join(dir, p));
}

export async function main(argv: string[]): Promise<number> {
  const args = parseConfigArgs(argv, {
    model_path: { type: "string", doc: "checkpoint folder, model.safetensors, .pdparams or .pth" },
    image_path: { type: "string", doc: "an image, a folder of images, or a list file" },
    help: { type: "boolean" },
  });
  if (args.extra.help) {
    console.log(
      `usage: deno task predict --config FILE --model_path P --image_path I --save_dir D\n\n${configFlagsHelp()}`,
    );
    return 0;
  }
  for (const k of ["model_path", "image_path"]) {
    if (!args.extra[k]) throw new UsageError(`--${k} is required`);
  }
  if (!args.config) throw new UsageError("--config is required");
  if (!args.flags.save_dir) throw new UsageError("--save_dir is required (where the predictions go)");
  const config = await loadConfig(args.config, { flags: args.flags, overrides: args.opts });
  await initBackend(resolveBackendRequest({ flag: args.flags.backend, config: config.backend }).request);
  const images = await listImages(String(args.extra.image_path));
  const { model } = await loadTrainedModel(config, String(args.extra.model_path), console.log);
  const transforms = buildTransforms(
    config.val_dataset?.transforms ?? [{ type: "Normalize" }],
    "val_dataset.transforms",
  );
  const mode = resolveEvalMode(evalModeFromConfig(config));
  const progress = new Progress({ total: images.length, label: "predict", unit: "img" });
  for (const path of images) {
    const rgb = await readImageRgb(path);
    const s = applyTransforms(transforms, {
      image: rgb.data,
      width: rgb.width,
      height: rgb.height,
      label: null,
    }, new Rng(0));
    const predT = tf.tidy(() => {
      const x = tf.tensor4d(s.image, [1, s.height, s.width, 3]);
      return predictClasses(model, x, mode, [rgb.height, rgb.width], model.numClasses);
    });
    // asynchronous read: works on every backend, webgpu included
    const pred = (await predT.data()) as Int32Array;
    predT.dispose();
    await exportPrediction(
      { name: path, pred, height: rgb.height, width: rgb.width, numClasses: model.numClasses, rgb: rgb.data },
      { dir: args.flags.save_dir, trainIds: true, color: true, overlay: true },
    );
    progress.tick();
  }
  progress.finish();
  console.log(
    `${images.length} prediction(s) written under ${args.flags.save_dir} (trainIds/, color/, overlay/)`,
  );
  model.dispose();
  return 0;
}

if (import.meta.main) await runCli(main);
