/**
 * The embedded default dataset `SyntheticCityscapes`: street scenes from synthetic_scene.ts written in the
 * official Cityscapes layout (`leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png` and
 * `gtFine/.../*_gtFine_labelIds.png`, label ids, so the id -> trainId conversion path runs), packed as a
 * .tar beside the dataset folder and unpacked by the real unpack step (archive.ts).
 *
 * Deterministic: image k of a split is drawn from `new Rng(generator_seed).fork("<split>/<k>")`, entries
 * are written in a fixed order with a fixed mtime. Cached: the tar's sidecar `<tar>.json` records the
 * parameters; a matching tar is reused, and a dataset folder unpacked from another tar is replaced.
 */
import * as path from "node:path";
import { Buffer } from "node:buffer";
// @ts-types="@types/tar-stream"
import tarStream from "tar-stream";
import { Rng } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";
import { isUnpacked, unpackArchive } from "./archive.ts";
import { type Mode, openCityscapes, type SegDataset } from "./dataset.ts";
import { encodePngBytes, encodeRgbPngBytes } from "./image_io.ts";
import { renderStreetScene } from "./synthetic_scene.ts";
import type { TransformSpec } from "./transforms.ts";

export interface SyntheticParams {
  num_train: number;
  num_val: number;
  /** [width, height] */
  size: [number, number];
  generator_seed: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticParams = {
  num_train: 200,
  num_val: 50,
  size: [256, 128],
  generator_seed: 0,
};
export const SYNTHETIC_DEFAULT_ROOT = "data/synthetic_cityscapes";

const TRAIN_CITIES = ["arcadia", "bellhaven", "corvina"];
const VAL_CITIES = ["dunmore"];
/** Bumped when the renderer changes, so that cached tars from an older renderer are regenerated. */
export const RENDERER_VERSION = 2;

/** File stem of image k of a split (`<city>_<seq>_<frame>`), Cityscapes style. */
export function syntheticStem(split: "train" | "val", k: number): { city: string; stem: string } {
  const cities = split === "train" ? TRAIN_CITIES : VAL_CITIES;
  const city = cities[k % cities.length];
  const n = Math.floor(k / cities.length);
  const seq = String(Math.floor(n / 10)).padStart(6, "0");
  const frame = String((n % 10) * 19 + 19).padStart(6, "0");
  return { city, stem: `${city}_${seq}_${frame}` };
}

/** Renders image k of a split and encodes it: the leftImg8bit PNG and the gtFine labelIds PNG. */
export async function renderSyntheticPair(
  p: SyntheticParams,
  split: "train" | "val",
  k: number,
): Promise<{ image: Uint8Array; labelIds: Uint8Array }> {
  const rng = new Rng(p.generator_seed).fork(`${split}/${k}`);
  const [w, h] = p.size;
  const scene = renderStreetScene(rng, w, h);
  const image = await encodeRgbPngBytes({ data: scene.rgb, width: w, height: h });
  const labelIds = encodePngBytes({ data: scene.labelIds, width: w, height: h, channels: 1, depth: 8 });
  return { image, labelIds };
}

function checkParams(p: SyntheticParams): void {
  const [w, h] = p.size;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 32 || h < 16 || w > 8192 || h > 8192) {
    throw new Error(
      `SyntheticCityscapes: size must be [width, height] with 32 <= width, 16 <= height, got ${p.size}`,
    );
  }
  for (const k of ["num_train", "num_val"] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) {
      throw new Error(`SyntheticCityscapes: ${k} must be a positive integer`);
    }
  }
}

/** Default tar path for a dataset root: `<root>.tar` (e.g. data/synthetic_cityscapes.tar). */
export function syntheticTarPath(root: string): string {
  return `${root.replace(/[/\\]+$/, "")}.tar`;
}

interface Sidecar extends SyntheticParams {
  renderer: number;
  size_bytes: number;
}

async function sidecarMatches(tar: string, p: SyntheticParams): Promise<boolean> {
  try {
    const sc = JSON.parse(await Deno.readTextFile(`${tar}.json`)) as Sidecar;
    const st = await Deno.stat(tar);
    return sc.renderer === RENDERER_VERSION && sc.num_train === p.num_train && sc.num_val === p.num_val &&
      sc.size[0] === p.size[0] && sc.size[1] === p.size[1] && sc.generator_seed === p.generator_seed &&
      sc.size_bytes === st.size;
  } catch {
    return false;
  }
}

export interface GenerateOptions {
  /** Parallel render workers (default: min(4, cores)); 0 renders in this thread. */
  workers?: number;
  progress?: boolean;
}

/**
 * Writes the dataset tar (atomically: temp file, then rename) unless a tar with the same parameters
 * exists. Returns true when it generated one.
 */
export async function generateSyntheticTar(
  tar: string,
  params: Partial<SyntheticParams> = {},
  opts: GenerateOptions = {},
): Promise<boolean> {
  const p: SyntheticParams = { ...SYNTHETIC_DEFAULTS, ...params };
  checkParams(p);
  if (await sidecarMatches(tar, p)) return false;
  await Deno.mkdir(path.dirname(tar) || ".", { recursive: true });
  const jobs: Array<{ split: "train" | "val"; k: number }> = [];
  for (let k = 0; k < p.num_train; k++) jobs.push({ split: "train", k });
  for (let k = 0; k < p.num_val; k++) jobs.push({ split: "val", k });
  const progress = opts.progress === false
    ? null
    : new Progress({ total: jobs.length, label: `generate ${path.basename(tar)}`, unit: "img" });

  const tmp = `${tar}.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const pack = tarStream.pack();
  const mtime = new Date(Date.UTC(2021, 8, 4)); // fixed, so that the tar is byte-identical run to run
  const written = (async () => {
    for await (const chunk of pack) {
      const u8 = chunk as Uint8Array;
      let off = 0;
      while (off < u8.length) off += await file.write(u8.subarray(off));
    }
  })();
  const add = (name: string, data: Uint8Array) =>
    new Promise<void>((res, rej) =>
      pack.entry({ name, mtime, size: data.length }, Buffer.from(data), (e) => (e ? rej(e) : res()))
    );
  try {
    const readme =
      `Synthetic Cityscapes-like street scenes (lib/data/synthetic_scene.ts), renderer v${RENDERER_VERSION}.\n` +
      `Official Cityscapes layout; gtFine holds *_gtFine_labelIds.png (label ids, converted to train ids on load).\n` +
      `Parameters: ${JSON.stringify(p)}\n`;
    await add("README.txt", new TextEncoder().encode(readme));
    const render = makeRenderer(p, opts.workers);
    try {
      // render ahead in parallel, write in order (the tar's bytes do not depend on worker timing)
      const ahead = Math.max(2, render.parallel * 2);
      const pending: Array<Promise<{ image: Uint8Array; labelIds: Uint8Array }>> = [];
      for (let j = 0; j < Math.min(ahead, jobs.length); j++) pending.push(render.run(jobs[j]));
      for (let j = 0; j < jobs.length; j++) {
        const out = await pending[j];
        if (j + ahead < jobs.length) pending.push(render.run(jobs[j + ahead]));
        const { split, k } = jobs[j];
        const { city, stem } = syntheticStem(split, k);
        await add(`leftImg8bit/${split}/${city}/${stem}_leftImg8bit.png`, out.image);
        await add(`gtFine/${split}/${city}/${stem}_gtFine_labelIds.png`, out.labelIds);
        progress?.update(j + 1);
      }
    } finally {
      render.close();
    }
    pack.finalize();
    await written;
    file.close();
  } catch (e) {
    pack.destroy();
    try {
      file.close();
    } catch { /* closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  progress?.finish();
  await Deno.rename(tmp, tar);
  const st = await Deno.stat(tar);
  const sidecar: Sidecar = { ...p, renderer: RENDERER_VERSION, size_bytes: st.size };
  await Deno.writeTextFile(`${tar}.json.tmp`, JSON.stringify(sidecar, null, 2) + "\n");
  await Deno.rename(`${tar}.json.tmp`, `${tar}.json`);
  return true;
}

interface Renderer {
  parallel: number;
  run(job: { split: "train" | "val"; k: number }): Promise<{ image: Uint8Array; labelIds: Uint8Array }>;
  close(): void;
}

function makeRenderer(p: SyntheticParams, workers?: number): Renderer {
  const n = workers ?? Math.min(4, navigator.hardwareConcurrency || 1);
  if (n <= 0) return { parallel: 1, run: (j) => renderSyntheticPair(p, j.split, j.k), close: () => {} };
  const pool = Array.from(
    { length: n },
    () => new Worker(new URL("./synthetic_worker.ts", import.meta.url).href, { type: "module" }),
  );
  const waiting = new Map<
    number,
    { res: (v: { image: Uint8Array; labelIds: Uint8Array }) => void; rej: (e: Error) => void }
  >();
  let next = 0;
  for (const w of pool) {
    w.onmessage = (e: MessageEvent) => {
      const { id, image, labelIds, error } = e.data;
      const h = waiting.get(id);
      waiting.delete(id);
      if (error) h?.rej(new Error(error));
      else h?.res({ image, labelIds });
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      for (const h of waiting.values()) h.rej(new Error(`synthetic render worker failed: ${e.message}`));
      waiting.clear();
    };
  }
  return {
    parallel: n,
    run: (job) =>
      new Promise((res, rej) => {
        const id = next++;
        waiting.set(id, { res, rej });
        pool[id % n].postMessage({ id, params: p, ...job });
      }),
    close: () => pool.forEach((w) => w.terminate()),
  };
}

export interface SyntheticDatasetOptions extends Partial<SyntheticParams> {
  dataset_root?: string;
  mode?: Mode;
  transforms?: TransformSpec[];
  /** Defaults to `<dataset_root>.tar`. */
  archive?: string;
  progress?: boolean;
  workers?: number;
}

/**
 * Makes sure the synthetic dataset exists: generates the tar if needed, unpacks it into dataset_root if
 * needed (replacing a folder unpacked from another tar). Returns the paths.
 */
export function ensureSyntheticCityscapes(
  o: SyntheticDatasetOptions = {},
): Promise<{ root: string; archive: string; generated: boolean; unpacked: boolean }> {
  // one preparation at a time per dataset folder in this process (train and val datasets are often
  // opened together and name the same folder)
  const key = path.resolve(o.dataset_root ?? SYNTHETIC_DEFAULT_ROOT);
  const prev = inFlight.get(key) ?? Promise.resolve();
  const next = prev.catch(() => {}).then(() => ensureUnlocked(o));
  inFlight.set(key, next);
  return next;
}

const inFlight = new Map<string, Promise<unknown>>();

async function ensureUnlocked(
  o: SyntheticDatasetOptions,
): Promise<{ root: string; archive: string; generated: boolean; unpacked: boolean }> {
  const root = o.dataset_root ?? SYNTHETIC_DEFAULT_ROOT;
  const archive = o.archive ?? syntheticTarPath(root);
  const p: SyntheticParams = {
    num_train: o.num_train ?? SYNTHETIC_DEFAULTS.num_train,
    num_val: o.num_val ?? SYNTHETIC_DEFAULTS.num_val,
    size: o.size ?? SYNTHETIC_DEFAULTS.size,
    generator_seed: o.generator_seed ?? SYNTHETIC_DEFAULTS.generator_seed,
  };
  const generated = await generateSyntheticTar(archive, p, { progress: o.progress, workers: o.workers });
  if (await isUnpacked(archive, root)) return { root, archive, generated, unpacked: false };
  // a folder from another synthetic tar (other parameters): replace its content, never other files
  const marker = path.join(root, `.unpacked-${path.basename(archive)}.json`);
  if (await Deno.stat(marker).then(() => true, () => false)) {
    for (const sub of ["leftImg8bit", "gtFine", "README.txt"]) {
      await Deno.remove(path.join(root, sub), { recursive: true }).catch(() => {});
    }
    await Deno.remove(marker);
  }
  await unpackArchive(archive, root, { progress: o.progress });
  return { root, archive, generated, unpacked: true };
}

/** The synthetic dataset as a `SegDataset` (generated and unpacked on first use). */
export async function openSyntheticCityscapes(o: SyntheticDatasetOptions = {}): Promise<SegDataset> {
  const { root } = await ensureSyntheticCityscapes(o);
  const ds = await openCityscapes({ dataset_root: root, mode: o.mode ?? "train", transforms: o.transforms });
  return { ...ds, type: "SyntheticCityscapes" };
}
