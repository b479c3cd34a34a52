/**
 * `--model_path` as PaddleSeg's val.py/predict.py take it: one of our checkpoint folders (`iter_N`,
 * `best_model`), a PaddleSeg output folder (`iter_N/` or `best_model/` holding `model.pdparams`), our
 * `model.safetensors`, or foreign whole-model weights (PaddleSeg `.pdparams`, PyTorch `.pth`,
 * `.safetensors`) matched by name. Errors name the path.
 *
 * Foreign weights print the import report ("matched N/M tensors ...", then missing, mis-shaped and
 * unexpected tensors by name). A PaddleSeg folder is a whole checkpoint: every tensor of the model must
 * match (a missing or mis-shaped one fails, named); a bare weights file must match `minMatchedShare` of
 * the parameters (the config's `model.pretrained_min_match`).
 */
import { basename, dirname, join } from "node:path";
import { loadPretrained, loadWeights, type SegModel, WEIGHTS_FORMAT } from "../models/mod.ts";
import { findCheckpoint } from "../train/checkpoint.ts";

const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);

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
  let file = path;
  let minMatchedShare = o.minMatchedShare ?? 1;
  if (stat.isDirectory) {
    const ours = join(path, "model.safetensors");
    const paddle = join(path, "model.pdparams");
    if (await isFile(ours)) file = ours;
    else if (await isFile(paddle)) {
      file = paddle;
      minMatchedShare = 1;
    } else {
      throw new Error(
        `--model_path '${path}' is a folder without model.safetensors (ours: iter_N, best_model) or ` +
          "model.pdparams (PaddleSeg's iter_N, best_model)",
      );
    }
  }
  if (await isOurWeights(file)) {
    await loadWeights(model, file);
  } else {
    await loadPretrained(model, file, { scope: "full", minMatchedShare, log: o.log });
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
