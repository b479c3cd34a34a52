/**
 * `deno task bench data [--n N] [--python PY]`: data pipeline throughput (images/s), decode + PaddleSeg
 * training augmentation, for
 *   1. 1024x512 crops from 2048x1024 PNGs (Cityscapes-sized frames rendered into bench/out/, cached), the
 *      seed's pipeline: ResizeStepScaling(0.5, 2, 0.25), RandomPaddingCrop(1024x512), flip, RandomDistort,
 *      Normalize;
 *   2. the default synthetic config (configs/synthetic/..._256x128_1.5k.yml: 256x128 frames and crops).
 * Each is measured single-threaded (one `processSample` after another), through the DataLoader with its
 * workers (batch 2), and, as the baseline in the same run, as PaddleSeg does it in Python (cv2 + PIL,
 * single process: bench/data_baseline.py) when a Python with numpy and Pillow is found (`--python`,
 * `$PC_BENCH_PYTHON`, `.venv/bin/python`, `python3`).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../lib/util/rng.ts";
import {
  DataLoader,
  defaultWorkers,
  encodePngBytes,
  encodeRgbPngBytes,
  ID_TO_TRAIN_ID,
  loadItem,
  openCityscapes,
  openDataset,
  type SegDataset,
  type TransformSpec,
} from "../lib/data/mod.ts";
import { processSample, sampleRngState } from "../lib/data/pipeline.ts";
import { buildTransforms } from "../lib/data/transforms.ts";
import { renderStreetScene } from "../lib/data/synthetic_scene.ts";
import { ensureSyntheticCityscapes } from "../lib/data/synthetic.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const OUT = path.join(ROOT, "bench", "out", "data");

const SEED_PIPELINE: TransformSpec[] = [
  { type: "ResizeStepScaling", min_scale_factor: 0.5, max_scale_factor: 2.0, scale_step_size: 0.25 },
  { type: "RandomPaddingCrop", crop_size: [1024, 512] },
  { type: "RandomHorizontalFlip" },
  { type: "RandomDistort", brightness_range: 0.4, contrast_range: 0.4, saturation_range: 0.4 },
  { type: "Normalize" },
];

/** Renders `n` 2048x1024 frames (1 sample per pixel) with labelTrainIds, as PaddleSeg's Cityscapes reads. */
async function bigFrames(n: number): Promise<string> {
  const root = path.join(OUT, "cityscapes_2048x1024");
  const img = path.join(root, "leftImg8bit", "train", "bench"),
    gt = path.join(root, "gtFine", "train", "bench");
  await Deno.mkdir(img, { recursive: true });
  await Deno.mkdir(gt, { recursive: true });
  for (let k = 0; k < n; k++) {
    const stem = `bench_000000_${String(k).padStart(6, "0")}`;
    const ip = path.join(img, `${stem}_leftImg8bit.png`),
      lp = path.join(gt, `${stem}_gtFine_labelTrainIds.png`);
    if (await Deno.stat(lp).then(() => true, () => false)) continue;
    console.log(`bench data: rendering 2048x1024 frame ${k + 1}/${n} into ${path.relative(ROOT, root)}`);
    const s = renderStreetScene(new Rng(500 + k), 2048, 1024, 1);
    const train = s.labelIds.map((v) => ID_TO_TRAIN_ID[v]);
    await Deno.writeFile(ip, await encodeRgbPngBytes({ data: s.rgb, width: 2048, height: 1024 }));
    await Deno.writeFile(
      lp,
      encodePngBytes({ data: train, width: 2048, height: 1024, channels: 1, depth: 8 }),
    );
  }
  return root;
}

async function listFile(ds: SegDataset, name: string): Promise<string> {
  const p = path.join(OUT, `${name}.txt`);
  await Deno.writeTextFile(p, ds.items.map((i) => `${i.image} ${i.label}`).join("\n") + "\n");
  return p;
}

async function singleThread(
  ds: SegDataset,
  n: number,
): Promise<{ ips: number; decodeMs: number; totalMs: number }> {
  const ts = buildTransforms(ds.transforms);
  for (let k = 0; k < Math.min(n, 8); k++) {
    await processSample(ds, ts, k % ds.items.length, sampleRngState(2, 0, k)); // warm-up (JIT, sharp)
  }
  let decode = 0;
  for (let k = 0; k < Math.min(n, 4); k++) {
    const t = performance.now();
    await loadItem(ds, k % ds.items.length);
    decode += performance.now() - t;
  }
  const t0 = performance.now();
  for (let k = 0; k < n; k++) await processSample(ds, ts, k % ds.items.length, sampleRngState(1, 0, k));
  const dt = performance.now() - t0;
  return { ips: (n / dt) * 1000, decodeMs: decode / Math.min(n, 4), totalMs: dt / n };
}

async function throughLoader(ds: SegDataset, n: number, workers: number): Promise<number> {
  const loader = new DataLoader(ds, {
    batchSize: 2,
    seed: 1,
    workers,
    prefetch: Math.max(2, workers * 2),
    shuffle: true,
    dropLast: true,
  });
  try {
    for (let k = 0; k < Math.min(4, Math.ceil(n / 4)); k++) await loader.next(); // workers start, JIT warm-up
    // many more batches than are prepared ahead, so that the rate is the steady state, not the prefetch
    const batches = Math.max(Math.ceil(n / 2), 5 * loader.prefetch);
    const t0 = performance.now();
    for (let k = 0; k < batches; k++) await loader.next();
    return ((batches * 2) / (performance.now() - t0)) * 1000;
  } finally {
    loader.close();
  }
}

async function findPython(given?: string): Promise<string | null> {
  const candidates = [
    given,
    Deno.env.get("PC_BENCH_PYTHON"),
    path.join(ROOT, ".venv", "bin", "python"),
    "python3",
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      const r = await new Deno.Command(c, {
        args: ["-c", "import numpy, PIL"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (r.success) return c;
    } catch { /* not there */ }
  }
  return null;
}

async function python(py: string | null, list: string, cw: number, ch: number, n: number) {
  if (!py) return null;
  const r = await new Deno.Command(py, {
    args: [path.join(ROOT, "bench", "data_baseline.py"), list, String(cw), String(ch), String(n)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    console.log(
      `bench data: Python baseline failed: ${new TextDecoder().decode(r.stderr).trim().split("\n").at(-1)}`,
    );
    return null;
  }
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!) as {
    images_per_s: number;
    backend: string;
  };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { n: { type: "string" }, python: { type: "string" } } });
  const n = Number(values.n ?? 12);
  const py = await findPython(values.python);
  const workers = defaultWorkers();
  const cores = navigator.hardwareConcurrency;
  console.log(
    `bench data: ${cores} cores, loader workers ${workers} (default: cores - 1, max 4), ${n} / ${
      n * 8
    } samples per figure`,
  );
  console.log(
    py
      ? `bench data: Python baseline with ${py}`
      : "bench data: no Python with numpy+Pillow found: no baseline",
  );
  const rows: string[][] = [];
  const cases: Array<{ name: string; ds: SegDataset; crop: [number, number]; n: number }> = [];
  const big = await bigFrames(4);
  cases.push({
    name: "2048x1024 PNG -> 1024x512 crop",
    ds: await openCityscapes({ dataset_root: big, transforms: SEED_PIPELINE }),
    crop: [1024, 512],
    n,
  });
  let synTransforms: TransformSpec[] | null = null;
  try {
    const { loadConfig } = await import("../lib/config/mod.ts");
    const cfg = await loadConfig(
      path.join(ROOT, "configs", "synthetic", "hrnet_w18_small_v1_synthetic_256x128_1.5k.yml"),
    );
    synTransforms = (cfg.train_dataset?.transforms ?? null) as TransformSpec[] | null;
  } catch (e) {
    console.log(`bench data: default synthetic config not loadable (${(e as Error).message.split("\n")[0]})`);
  }
  if (synTransforms) {
    const { root } = await ensureSyntheticCityscapes({
      dataset_root: path.join(ROOT, "data", "synthetic_cityscapes"),
    });
    const ds = await openDataset({
      type: "Cityscapes",
      dataset_root: root,
      mode: "train",
      transforms: synTransforms,
    });
    cases.push({ name: "default synthetic config (256x128)", ds, crop: [256, 128], n: n * 8 });
  }
  for (const c of cases) {
    const st = await singleThread(c.ds, c.n);
    const viaLoader = await throughLoader(c.ds, c.n, workers);
    const viaLoader2 = workers === 2 ? viaLoader : await throughLoader(c.ds, c.n, 2);
    const base = await python(
      py,
      await listFile(c.ds, c.name.replace(/[^a-z0-9]+/gi, "_")),
      c.crop[0],
      c.crop[1],
      c.n,
    );
    rows.push([
      c.name,
      `${st.ips.toFixed(2)} (${st.totalMs.toFixed(0)} ms/img, decode ${st.decodeMs.toFixed(0)} ms)`,
      viaLoader.toFixed(2),
      viaLoader2.toFixed(2),
      base ? `${base.images_per_s.toFixed(2)} (${base.backend})` : "none",
      base ? `${(st.ips / base.images_per_s).toFixed(2)}x` : "-",
    ]);
  }
  const head = [
    "case",
    "ours, 1 thread img/s",
    `loader ${workers}w img/s`,
    "loader 2w img/s",
    "Python img/s",
    "1-thread ratio",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i])).join(" | ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

if (import.meta.main) await run(Deno.args);
