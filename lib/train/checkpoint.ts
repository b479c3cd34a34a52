/**
 * Training checkpoints: `save_dir/iter_N/` and `save_dir/best_model/`, each a folder with
 *
 *   model.safetensors      model weights incl. BN running statistics (what `val`/`predict` load)
 *   train_state.safetensors optimizer velocities and memory-bank queues (resume only)
 *   state.json             iteration, generator and loader state, best mIoU, the resolved config
 *
 * A folder is written under a temporary name and renamed into place, so a crash (or SIGKILL) never leaves
 * a checkpoint that looks complete but is not; `listCheckpoints` ignores anything else.
 */
import { join } from "node:path";
import { tf } from "../backend/tf.ts";
import { loadWeights, saveWeights, type SegModel } from "../models/mod.ts";
import { readSafetensors, readWeightBytes, writeSafetensors } from "../models/mod.ts";
import type { RawTensor } from "../models/mod.ts";
import type { MemoryBank, MemoryBankState } from "../losses/mod.ts";
import type { LoaderState } from "../data/mod.ts";
import type { RngState } from "../util/rng.ts";
import type { MomentumSGD } from "./optimizer.ts";

export const CHECKPOINT_FORMAT = "pixel-contrast-ts/checkpoint-v1";

export interface TrainState {
  format: typeof CHECKPOINT_FORMAT;
  /** Optimizer steps done. */
  iter: number;
  rng: RngState;
  loader: LoaderState;
  bestMIoU: number;
  bestIter: number;
  /** The resolved config (YAML) the run used; resume refuses a different one. */
  configYaml: string;
  /** Memory-bank pointers (queues are in train_state.safetensors). */
  memory?: Omit<MemoryBankState, "segmentQueue" | "pixelQueue" | "segmentPtr" | "pixelPtr"> & {
    segmentPtr: number[];
    pixelPtr: number[];
  };
  savedAt: string;
}

function raw(t: Float32Array | tf.Tensor, shape?: number[]): RawTensor {
  const data = t instanceof Float32Array ? t : (t.dataSync() as Float32Array);
  return {
    dtype: "float32",
    shape: shape ?? (t as tf.Tensor).shape,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function f32(t: RawTensor, what: string): Float32Array {
  if (t.dtype !== "float32") throw new Error(`${what}: expected float32, found ${t.dtype}`);
  const copy = new Uint8Array(t.data.byteLength);
  copy.set(t.data);
  return new Float32Array(copy.buffer);
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

/** Replaces folder `dest` by folder `tmp` (both in the same parent) as atomically as the OS allows. */
async function swapIntoPlace(tmp: string, dest: string): Promise<void> {
  if (await exists(dest)) {
    const old = `${dest}.old-${Deno.pid}`;
    await Deno.rename(dest, old);
    await Deno.rename(tmp, dest);
    await Deno.remove(old, { recursive: true });
  } else {
    await Deno.rename(tmp, dest);
  }
}

export interface SaveInputs {
  model: SegModel;
  optimizer: MomentumSGD;
  memory?: MemoryBank | null;
  state: Omit<TrainState, "format" | "savedAt" | "memory">;
}

/** Writes a complete checkpoint folder at `dir` (atomically). */
export async function saveCheckpoint(dir: string, s: SaveInputs): Promise<void> {
  const parent = join(dir, "..");
  await Deno.mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${dir.split("/").pop()}.tmp-${Deno.pid}`);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp);
  try {
    await saveWeights(s.model, join(tmp, "model.safetensors"), { iter: s.state.iter });
    const extra = new Map<string, RawTensor>();
    for (const [name, v] of s.optimizer.state()) extra.set(`velocity/${name}`, raw(v));
    let memory: TrainState["memory"];
    if (s.memory) {
      const m = s.memory.getState();
      extra.set("memory/segment_queue", raw(m.segmentQueue, [m.numClasses, m.segmentSize, m.dim]));
      extra.set("memory/pixel_queue", raw(m.pixelQueue, [m.numClasses, m.pixelSize, m.dim]));
      const { segmentQueue: _s, pixelQueue: _p, segmentPtr, pixelPtr, ...rest } = m;
      memory = { ...rest, segmentPtr: Array.from(segmentPtr), pixelPtr: Array.from(pixelPtr) };
    }
    await writeSafetensors(join(tmp, "train_state.safetensors"), extra, { format: CHECKPOINT_FORMAT });
    const state: TrainState = {
      format: CHECKPOINT_FORMAT,
      ...s.state,
      memory,
      savedAt: new Date().toISOString(),
    };
    await Deno.writeTextFile(join(tmp, "state.json"), JSON.stringify(state, null, 1));
    await swapIntoPlace(tmp, dir);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Reads `state.json` of a checkpoint folder, with errors naming the file. */
export async function readTrainState(dir: string): Promise<TrainState> {
  const path = join(dir, "state.json");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(
      `resume: '${dir}' is not a checkpoint folder (cannot read ${path}: ${(e as Error).message})`,
    );
  }
  let state: TrainState;
  try {
    state = JSON.parse(text);
  } catch (e) {
    throw new Error(`resume: ${path} is corrupt: ${(e as Error).message}`);
  }
  if (state.format !== CHECKPOINT_FORMAT) {
    throw new Error(`resume: ${path} has format '${state.format}', expected '${CHECKPOINT_FORMAT}'`);
  }
  return state;
}

/** Restores model, optimizer and memory bank from a checkpoint folder; returns its state. */
export async function loadCheckpoint(
  dir: string,
  t: { model: SegModel; optimizer: MomentumSGD; memory?: MemoryBank | null },
): Promise<TrainState> {
  const state = await readTrainState(dir);
  await loadWeights(t.model, join(dir, "model.safetensors"));
  const path = join(dir, "train_state.safetensors");
  const { tensors } = readSafetensors(await readWeightBytes(path), path);
  const params = t.model.trainableWeights();
  const velocity = new Map<string, tf.Tensor>();
  for (const [name, rt] of tensors) {
    if (!name.startsWith("velocity/")) continue;
    velocity.set(name.slice("velocity/".length), tf.tensor(f32(rt, `${path}: ${name}`), rt.shape));
  }
  try {
    t.optimizer.loadState(velocity, params);
  } finally {
    for (const v of velocity.values()) v.dispose();
  }
  if (t.memory) {
    const seg = tensors.get("memory/segment_queue"), pix = tensors.get("memory/pixel_queue");
    if (!state.memory || !seg || !pix) {
      throw new Error(`resume: ${dir} has no memory-bank state, but the config enables the memory bank`);
    }
    t.memory.setState({
      ...state.memory,
      segmentQueue: f32(seg, `${path}: memory/segment_queue`),
      pixelQueue: f32(pix, `${path}: memory/pixel_queue`),
      segmentPtr: Int32Array.from(state.memory.segmentPtr),
      pixelPtr: Int32Array.from(state.memory.pixelPtr),
    });
  } else if (state.memory) {
    throw new Error(`resume: ${dir} holds a memory bank, but the config does not enable one`);
  }
  return state;
}

/** Complete `iter_N` checkpoint folders under `saveDir`, ascending by N. */
export async function listCheckpoints(saveDir: string): Promise<{ iter: number; dir: string }[]> {
  const out: { iter: number; dir: string }[] = [];
  try {
    for await (const e of Deno.readDir(saveDir)) {
      const m = /^iter_(\d+)$/.exec(e.name);
      if (e.isDirectory && m && await exists(join(saveDir, e.name, "state.json"))) {
        out.push({ iter: Number(m[1]), dir: join(saveDir, e.name) });
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.iter - b.iter);
}

/** Removes all but the newest `keep` iteration checkpoints (best_model is never touched). */
export async function pruneCheckpoints(saveDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(saveDir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(c.dir, { recursive: true });
}
