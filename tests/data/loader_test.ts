/**
 * The loader: seeded order, determinism whatever the number of workers, resume from state(), drop_last,
 * validation batches, error propagation, clean shutdown; and the synthetic dataset it usually reads.
 */
import * as path from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import {
  type Batch,
  checkDataset,
  DataLoader,
  ensureSyntheticCityscapes,
  openCityscapes,
  openDataset,
  type SegDataset,
} from "../../lib/data/mod.ts";
import { unpackArchive } from "../../lib/data/archive.ts";
import { tmpDir } from "./_tmp.ts";

const TRAIN = [
  { type: "ResizeStepScaling", min_scale_factor: 0.5, max_scale_factor: 2.0, scale_step_size: 0.25 },
  { type: "RandomPaddingCrop", crop_size: [48, 24] },
  { type: "RandomHorizontalFlip" },
  { type: "RandomDistort", brightness_range: 0.4, contrast_range: 0.4, saturation_range: 0.4 },
  { type: "Normalize" },
];

const root = await tmpDir("pc-loader-");
const small = {
  dataset_root: path.join(root, "syn"),
  num_train: 7,
  num_val: 3,
  size: [64, 32] as [number, number],
  progress: false,
  workers: 0,
};
await ensureSyntheticCityscapes(small);

async function trainSet(): Promise<SegDataset> {
  return await openDataset({ type: "SyntheticCityscapes", ...small, mode: "train", transforms: TRAIN });
}

async function take(loader: DataLoader, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for (let k = 0; k < n; k++) out.push(await loader.next());
  return out;
}

function same(a: Batch, b: Batch, what: string) {
  assertEquals(a.indices, b.indices, `${what}: indices`);
  assertEquals(a.shape, b.shape, `${what}: shape`);
  assert(a.image.every((v, i) => v === b.image[i]), `${what}: image bytes`);
  assert(a.label.every((v, i) => v === b.label[i]), `${what}: label bytes`);
}

Deno.test("batches are identical with 0, 1 and 3 workers (per-sample generators), across epochs", async () => {
  const ds = await trainSet();
  const runs: Batch[][] = [];
  for (const workers of [0, 1, 3]) {
    const loader = new DataLoader(ds, { batchSize: 2, seed: 7, workers, prefetch: 3 });
    assertEquals(loader.batchesPerEpoch, 3, "7 samples, batch 2, drop_last");
    runs.push(await take(loader, 7)); // 2 epochs + 1
    loader.close();
  }
  for (let k = 0; k < 7; k++) {
    same(runs[0][k], runs[1][k], `batch ${k}, 0 vs 1 worker`);
    same(runs[0][k], runs[2][k], `batch ${k}, 0 vs 3 workers`);
  }
  const b = runs[0][0];
  assertEquals(b.shape, [2, 24, 48]);
  assertEquals(b.labelShape, [2, 24, 48]);
  assertEquals([b.image.length, b.label.length], [2 * 24 * 48 * 3, 2 * 24 * 48]);
  assert(b.image.every((v) => v >= -1 && v <= 1), "normalised to [-1, 1]");
  assert(b.label.every((v) => (v >= 0 && v < 19) || v === 255), "train ids or 255");
  // each epoch is a permutation (6 of 7 used with drop_last), different per epoch
  const e0 = runs[0].slice(0, 3).flatMap((x) => x.indices),
    e1 = runs[0].slice(3, 6).flatMap((x) => x.indices);
  assertEquals(new Set(e0).size, 6);
  assertEquals(new Set(e1).size, 6);
  assert(e0.join() !== e1.join(), "reshuffled each epoch");
  assertEquals([runs[0][3].epoch, runs[0][3].batch], [1, 0]);
});

Deno.test("state() resumes exactly; another seed gives another order", async () => {
  const ds = await trainSet();
  const a = new DataLoader(ds, { batchSize: 2, seed: 3, workers: 1 });
  await take(a, 4);
  const st = a.state();
  assertEquals(st, { seed: 3, epoch: 1, batch: 1 });
  const rest = await take(a, 3);
  a.close();
  const b = new DataLoader(ds, { batchSize: 2, workers: 0, state: JSON.parse(JSON.stringify(st)) });
  const resumed = await take(b, 3);
  b.close();
  for (let k = 0; k < 3; k++) same(rest[k], resumed[k], `resumed batch ${k}`);
  const c = new DataLoader(ds, { batchSize: 2, seed: 4, workers: 0 });
  const other = await take(c, 3);
  c.close();
  assert(
    other.map((x) => x.indices.join()).join() !== (await (async () => {
      const d = new DataLoader(ds, { batchSize: 2, seed: 3, workers: 0 });
      const r = await take(d, 3);
      d.close();
      return r.map((x) => x.indices.join()).join();
    })()),
    "seed changes the order",
  );
});

Deno.test("validation: no shuffle, no drop, labels raw at full size, one pass with epoch()", async () => {
  const ds = await openDataset({
    type: "SyntheticCityscapes",
    ...small,
    mode: "val",
    transforms: [{ type: "Normalize" }],
  });
  const loader = new DataLoader(ds, { batchSize: 2, workers: 1 });
  assertEquals(loader.batchesPerEpoch, 2);
  const got: Batch[] = [];
  for await (const b of loader.epoch()) got.push(b);
  loader.close();
  assertEquals(got.map((b) => b.indices), [[0, 1], [2]]);
  assertEquals(got[0].shape, [2, 32, 64]);
  assertEquals(got[0].labelShape, [2, 32, 64]);
  const direct = await checkDataset(ds);
  const counted = new Array(19).fill(0);
  for (const b of got) for (const v of b.label) if (v !== 255) counted[v]++;
  assertEquals(counted, direct.classPixels, "batch labels = the dataset's labels");
});

Deno.test("errors: a corrupt image rejects next() naming the file; bad options; close()", async () => {
  const dir = await tmpDir("pc-loader-bad-");
  await unpackArchive(`${small.dataset_root}.tar`, dir, { progress: false });
  const ds0 = await openCityscapes({ dataset_root: dir, transforms: TRAIN });
  const victim = ds0.items[ds0.items.length - 1].image;
  await Deno.writeFile(victim, (await Deno.readFile(victim)).subarray(0, 100));
  const loader = new DataLoader(ds0, { batchSize: 7, workers: 1, shuffle: false });
  await assertRejects(() => loader.next(), path.basename(victim));
  loader.close();
  await assertRejects(() => loader.next(), /after close/);
  const ds = await trainSet();
  assertThrows(() => new DataLoader(ds, { batchSize: 8 }), /no complete batch of 8/);
  assertThrows(
    () => new DataLoader({ ...ds, transforms: [{ type: "Blur" }] }, { batchSize: 1, workers: 0 }),
    /unknown transform type 'Blur'/,
  );
  assertThrows(
    () =>
      new DataLoader({
        ...ds,
        ignoreIndex: 11,
        numClasses: 11,
        transforms: [{ type: "RandomPaddingCrop", crop_size: [8, 8] }],
      }, {
        batchSize: 1,
        workers: 0,
      }),
    /pads labels with 255.*label_padding_value: 11/,
  );
});

Deno.test("synthetic dataset: deterministic tar bytes; regenerated when parameters change", async () => {
  const a = path.join(root, "a", "syn"), b = path.join(root, "b", "syn");
  const opts = { num_train: 3, num_val: 1, size: [48, 24] as [number, number], progress: false, workers: 0 };
  await ensureSyntheticCityscapes({ ...opts, dataset_root: a });
  await ensureSyntheticCityscapes({ ...opts, dataset_root: b, workers: 2 });
  const ta = await Deno.readFile(`${a}.tar`), tb = await Deno.readFile(`${b}.tar`);
  assert(ta.length === tb.length && ta.every((v, i) => v === tb[i]), "byte-identical tars (0 vs 2 workers)");
  const again = await ensureSyntheticCityscapes({ ...opts, dataset_root: a });
  assert(!again.generated && !again.unpacked, "cached");
  const bigger = await ensureSyntheticCityscapes({ ...opts, num_train: 4, dataset_root: a });
  assert(bigger.generated && bigger.unpacked, "regenerated for new parameters");
  assertEquals((await openCityscapes({ dataset_root: a })).items.length, 4);
  const ds = await openCityscapes({ dataset_root: a });
  assertEquals(ds.items[0].labelKind, "labelIds", "written as label ids, converted on load");
});

const defaultRoot = new URL("../../data/synthetic_cityscapes", import.meta.url).pathname;
const hasDefault = await Deno.stat(path.join(defaultRoot, "leftImg8bit")).then(() => true, () => false);
if (!hasDefault) {
  console.log(
    "loader_test: data/synthetic_cityscapes absent (run `deno task setup`): its class test is skipped",
  );
}

Deno.test({
  name: "the default synthetic dataset has all 19 classes with a Cityscapes-like imbalance",
  ignore: !hasDefault,
  fn: async () => {
    const ds = await openCityscapes({ dataset_root: defaultRoot, mode: "train" });
    const r = await checkDataset(ds, { decodeImages: false });
    assertEquals(r.errors, []);
    const total = r.classPixels.reduce((x, y) => x + y, 0);
    const share = r.classPixels.map((p) => p / total);
    assert(share.every((s) => s > 0), `every class present: ${share.map((s) => s.toFixed(4))}`);
    const order = share.map((s, c) => [s, c]).sort((x, y) => y[0] - x[0]).map(([, c]) => c);
    assert(
      order.slice(0, 3).includes(0) && order.slice(0, 3).includes(2),
      `road and building among the largest: ${order}`,
    );
    for (const rare of [6, 12, 16, 17]) assert(share[rare] < 0.01, `class ${rare} rare: ${share[rare]}`);
  },
});

Deno.test("train and val synthetic datasets opened together share one preparation", async () => {
  const dir = await tmpDir("pc-loader-par-");
  const o = {
    type: "SyntheticCityscapes",
    dataset_root: path.join(dir, "syn"),
    num_train: 2,
    num_val: 1,
    size: [48, 24] as [number, number],
  };
  const [tr, va] = await Promise.all([
    openDataset({ ...o, mode: "train" }, { progress: false }),
    openDataset({ ...o, mode: "val" }, { progress: false }),
  ]);
  assertEquals([tr.items.length, va.items.length], [2, 1]);
  assertEquals(tr.type, "SyntheticCityscapes");
});
