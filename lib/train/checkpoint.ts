/**
 * Training checkpoints: `save_dir/iter_N/` and `save_dir/best_model/`, each a folder with
 *
 *   model.safetensors      model weights incl. BN running statistics (what `val`/`predict` load)
 *   train_state.safetensors optimizer velocities and memory-bank queues (resume only)
 *   state.json             iteration, generator and loader state, best mIoU, the resolved config
 *
 * A folder is written under a temporary name (state.json last) and swapped into place by `replaceDir`
 * (lib/util/fs.ts), so a crash (or SIGKILL) never leaves a checkpoint that looks complete but is not,
 * and at every instant either the old or the new complete copy exists: under its name, or — killed
 * between the two renames of a swap — as a leftover that `findCheckpoint` reads and `repairSaveDir`
 * (the trainer, at start) renames back. `listCheckpoints` ignores anything incomplete.
 */
import { join } from "node:path";
import { readFileBounded, recoverDir, replaceDir, writeFileAtomic } from "../util/fs.ts";
import { leftoverTargets } from "./run_dir.ts";
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
  /** Identifies the run (kept across resumes): pruning only ever removes this run's checkpoints. */
  runId?: string;
  /** Memory-bank pointers (queues are in train_state.safetensors). */
  memory?: Omit<MemoryBankState, "segmentQueue" | "pixelQueue" | "segmentPtr" | "pixelPtr"> & {
    segmentPtr: number[];
    pixelPtr: number[];
  };
  savedAt: string;
}

async function raw(t: Float32Array | tf.Tensor, shape?: number[]): Promise<RawTensor> {
  const data = t instanceof Float32Array ? t : ((await t.data()) as Float32Array);
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

async function isFile(p: string): Promise<boolean> {
  return await Deno.stat(p).then((st) => st.isFile, () => false);
}

/** A complete checkpoint folder: its three files, state.json (written last) readable and of our format. */
export async function isCompleteCheckpoint(dir: string): Promise<boolean> {
  if (
    !(await isFile(join(dir, "model.safetensors"))) || !(await isFile(join(dir, "train_state.safetensors")))
  ) {
    return false;
  }
  try {
    const st = JSON.parse(
      new TextDecoder().decode(await readFileBounded(join(dir, "state.json"), STATE_MAX)),
    );
    return st?.format === CHECKPOINT_FORMAT;
  } catch {
    return false;
  }
}

/** state.json holds the config, generator and loader state: kilobytes; bounded all the same. */
const STATE_MAX = 64 << 20;

/**
 * The complete copy of checkpoint folder `dir` (read-only): `dir` itself, or the leftover of a swap that
 * was killed between its renames; null when there is none. `note` says when a leftover is used.
 */
export async function findCheckpoint(dir: string): Promise<{ dir: string; note: string | null } | null> {
  const r = await recoverDir(dir, isCompleteCheckpoint);
  if (!r.path) return null;
  return {
    dir: r.path,
    note: r.from
      ? `'${dir}' was being replaced when its writer stopped; using its complete copy '${r.from}'`
      : null,
  };
}

/** Restores every checkpoint folder of `saveDir` from leftovers of interrupted swaps; removes the rest. */
export async function repairSaveDir(saveDir: string, log: (line: string) => void = () => {}): Promise<void> {
  for (const name of await leftoverTargets(saveDir)) {
    const r = await recoverDir(join(saveDir, name), isCompleteCheckpoint, { repair: true });
    if (r.from) log(`restored ${join(saveDir, name)} from ${r.from} (left by an interrupted run)`);
  }
}

export interface SaveInputs {
  model: SegModel;
  optimizer: MomentumSGD;
  memory?: MemoryBank | null;
  state: Omit<TrainState, "format" | "savedAt" | "memory">;
}

/**
 * The weights became NaN or Inf (e.g. BN running variances overflowing while the loss is still finite):
 * no checkpoint is written, so the previous one stays the last loadable state of the run.
 */
export class NonFiniteWeightsError extends Error {
  override name = "NonFiniteWeightsError";
}

/** Names of model weights holding NaN or Inf values. */
export async function nonFiniteWeights(model: SegModel): Promise<string[]> {
  const params = model.store.params;
  // One flag per tensor, read back once and asynchronously (webgpu refuses synchronous reads).
  const flags = tf.tidy(() =>
    tf.stack(params.map((p) => tf.any(tf.logicalNot(tf.isFinite(p.value))).cast("int32")))
  );
  try {
    const v = await flags.data();
    return params.filter((_, i) => v[i] !== 0).map((p) => p.spec.name);
  } finally {
    flags.dispose();
  }
}

/**
 * Writes a complete checkpoint folder at `dir`, replacing any old one crash-safely (`replaceDir`).
 * Refuses (NonFiniteWeightsError) weights holding NaN or Inf: such a checkpoint could never be loaded.
 */
export async function saveCheckpoint(dir: string, s: SaveInputs): Promise<void> {
  const bad = await nonFiniteWeights(s.model);
  if (bad.length) {
    throw new NonFiniteWeightsError(
      `weights hold NaN or infinite values at iteration ${s.state.iter} (${bad.length} tensor(s): ` +
        `${bad.slice(0, 5).join(", ")}${bad.length > 5 ? ", ..." : ""}): training stopped without writing ` +
        `${dir}. Lower the learning rate, or resume from the last checkpoint.`,
    );
  }
  await Deno.mkdir(join(dir, ".."), { recursive: true });
  await replaceDir(dir, async (tmp) => {
    await saveWeights(s.model, join(tmp, "model.safetensors"), { iter: s.state.iter });
    const extra = new Map<string, RawTensor>();
    for (const [name, v] of await s.optimizer.state()) extra.set(`velocity/${name}`, await raw(v));
    let memory: TrainState["memory"];
    if (s.memory) {
      const m = s.memory.getState();
      extra.set("memory/segment_queue", await raw(m.segmentQueue, [m.numClasses, m.segmentSize, m.dim]));
      extra.set("memory/pixel_queue", await raw(m.pixelQueue, [m.numClasses, m.pixelSize, m.dim]));
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
    await writeFileAtomic(join(tmp, "state.json"), JSON.stringify(state, null, 1)); // last: marks it complete
  });
}

/** Reads `state.json` of a checkpoint folder, with errors naming the file. */
export async function readTrainState(dir: string): Promise<TrainState> {
  const path = join(dir, "state.json");
  let text: string;
  try {
    text = new TextDecoder().decode(await readFileBounded(path, STATE_MAX));
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
      if (e.isDirectory && m && await isFile(join(saveDir, e.name, "state.json"))) {
        out.push({ iter: Number(m[1]), dir: join(saveDir, e.name) });
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.iter - b.iter);
}

/**
 * Removes all but the newest `keep` iteration checkpoints OF RUN `runId` up to iteration `upTo` (best_model
 * is never touched). Checkpoints of other runs, of unknown runs, and of this run's abandoned future
 * (iterations past `upTo` before a resume from an earlier checkpoint) are never removed nor counted.
 */
export async function pruneCheckpoints(
  saveDir: string,
  keep: number,
  runId: string,
  upTo: number,
): Promise<void> {
  const ours: { iter: number; dir: string }[] = [];
  for (const c of await listCheckpoints(saveDir)) {
    if (c.iter > upTo) continue;
    const state = await readTrainState(c.dir).catch(() => null);
    if (state?.runId === runId) ours.push(c);
  }
  for (const c of ours.slice(0, Math.max(0, ours.length - keep))) {
    await Deno.remove(c.dir, { recursive: true });
  }
}
