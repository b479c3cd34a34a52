/**
 * `--model_path` as PaddleSeg's val.py/predict.py take it: one of our checkpoint folders (`iter_N`,
 * `best_model`), our `model.safetensors`, or foreign whole-model weights (PaddleSeg `.pdparams`, PyTorch
 * `.pth`, `.safetensors`) matched by name. Errors name the path.
 */
import { basename, dirname, join } from "node:path";
import { loadPretrained, loadWeights, type SegModel, WEIGHTS_FORMAT } from "../models/mod.ts";
import { findCheckpoint } from "./checkpoint.ts";

export async function loadModelPath(
  model: SegModel,
  path: string,
  o: { minMatchedShare?: number; log?: (line: string) => void } = {},
): Promise<string> {
  // a checkpoint folder (or its model.safetensors) whose swap was interrupted: its complete leftover copy
  const asFolder = basename(path) === "model.safetensors" ? dirname(path) : path;
  const found = await findCheckpoint(asFolder).catch(() => null);
  if (found?.note) {
    (o.log ?? console.log)(`note: ${found.note}`);
    path = found.dir;
  }
  const stat = await Deno.stat(path).catch(() => null);
  if (!stat) throw new Error(`--model_path '${path}' does not exist`);
  const file = stat.isDirectory ? join(path, "model.safetensors") : path;
  if (stat.isDirectory && !(await Deno.stat(file).catch(() => null))) {
    throw new Error(
      `--model_path '${path}' is a folder without model.safetensors (expected iter_N or best_model)`,
    );
  }
  if (await isOurWeights(file)) {
    await loadWeights(model, file);
  } else {
    await loadPretrained(model, file, { scope: "full", minMatchedShare: o.minMatchedShare ?? 1, log: o.log });
  }
  return file;
}

async function isOurWeights(file: string): Promise<boolean> {
  if (!file.endsWith(".safetensors")) return false;
  // not a regular file (a FIFO would block the open): the weight reader refuses it with its path
  if (!(await Deno.stat(file).then((st) => st.isFile, () => false))) return false;
  const f = await Deno.open(file);
  try {
    const head = new Uint8Array(4096);
    const n = (await f.read(head)) ?? 0;
    return new TextDecoder().decode(head.subarray(0, n)).includes(WEIGHTS_FORMAT);
  } finally {
    f.close();
  }
}
