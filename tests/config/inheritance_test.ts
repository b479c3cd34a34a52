/** `_base_` inheritance: PaddleSeg's merge rules (nested mappings merge, lists replace, `_inherited_`). */
import { deepStrictEqual } from "node:assert";
import { join } from "node:path";
import { loadConfig, loadRawConfig } from "../../lib/config/mod.ts";
import { assertEquals, assertRejects } from "../_helpers/assert.ts";
import { MINIMAL, writeFiles } from "./_files.ts";

const TRANSFORMS_BASE = `
train_dataset:
  type: Dataset
  dataset_root: data/x
  train_path: data/x/train.txt
  num_classes: 3
  transforms:
    - type: RandomHorizontalFlip
      prob: 0.3
    - type: Normalize
`;

Deno.test("nested mappings merge key by key, the child wins", async () => {
  const dir = await writeFiles({
    "base.yml": `${MINIMAL}
optimizer:
  type: sgd
  momentum: 0.8
  weight_decay: 0.001
lr_scheduler:
  type: PolynomialDecay
  learning_rate: 0.05
  power: 2.0
`,
    "child.yml": `_base_: base.yml
optimizer:
  weight_decay: 0.0002
model:
  backbone:
    type: HRNet_W48
`,
  });
  const c = await loadConfig(join(dir, "child.yml"));
  deepStrictEqual(c.optimizer, { type: "sgd", momentum: 0.8, weight_decay: 0.0002 });
  assertEquals(c.lr_scheduler.learning_rate, 0.05);
  assertEquals(c.lr_scheduler.power, 2);
  // model.backbone.type replaced, the rest of model (type, num_classes) inherited
  assertEquals(c.model.type, "HRNetW48");
  assertEquals(c.model.backbone.type, "HRNet_W48");
  assertEquals(c.model.num_classes, 3);
  assertEquals(c.model.bb_channels, 720);
});

Deno.test("lists are replaced, not merged", async () => {
  const dir = await writeFiles({
    "base.yml": MINIMAL + TRANSFORMS_BASE,
    "child.yml": `_base_: base.yml
train_dataset:
  transforms:
    - type: Normalize
      mean: [0.4, 0.4, 0.4]
loss:
  coef: [2]
`,
  });
  const c = await loadConfig(join(dir, "child.yml"));
  const t = c.train_dataset!.transforms;
  assertEquals(t.length, 1);
  deepStrictEqual(t[0], { type: "Normalize", mean: [0.4, 0.4, 0.4], std: [0.5, 0.5, 0.5] });
  // the mapping around the list still merged
  assertEquals(c.train_dataset!.type, "Dataset");
  deepStrictEqual(c.loss.coef, [2]);
  assertEquals(c.loss.types.length, 1);
});

Deno.test("multi-level inheritance: grandchild > child > base; _base_ is relative to each file", async () => {
  const dir = await writeFiles({
    "_base_/base.yml": `${MINIMAL}
batch_size: 8
seed: 1
train:
  log_iters: 5
  save_interval: 100
`,
    "mid/child.yml": `_base_: ../_base_/base.yml
batch_size: 4
train:
  save_interval: 200
`,
    "deep/er/grandchild.yml": `_base_: ../../mid/child.yml
seed: 3
train:
  keep_checkpoint_max: 2
`,
  });
  const c = await loadConfig(join(dir, "deep/er/grandchild.yml"));
  assertEquals(c.batch_size, 4);
  assertEquals(c.seed, 3);
  assertEquals(c.iters, 10);
  assertEquals(c.train.log_iters, 5);
  assertEquals(c.train.save_interval, 200);
  assertEquals(c.train.keep_checkpoint_max, 2);
  assertEquals(c.train.eval_interval, 200); // derived from save_interval
});

Deno.test("a list of bases: the first listed wins over later ones, the file over all (PaddleSeg order)", async () => {
  const dir = await writeFiles({
    "a.yml": "batch_size: 1\nseed: 11\n",
    "b.yml": `${MINIMAL}\nbatch_size: 2\nseed: 22\nbackend: cpu\n`,
    "child.yml": "_base_: [a.yml, b.yml]\nseed: 33\n",
  });
  const c = await loadConfig(join(dir, "child.yml"));
  assertEquals(c.seed, 33);
  assertEquals(c.batch_size, 1);
  assertEquals(c.backend, "cpu");
  assertEquals(c.iters, 10);
});

Deno.test("_inherited_: false replaces a mapping instead of merging it", async () => {
  const dir = await writeFiles({
    "base.yml": `
iters: 10
model:
  type: HRNetW48Contrast
  backbone:
    type: HRNet_W18
    align_corners: true
  num_classes: 3
  proj_dim: 64
loss:
  types:
    - type: CrossEntropyLoss
    - type: PixelContrastCrossEntropyLoss
  coef: [1, 0.1]
`,
    "merged.yml": `_base_: base.yml
model:
  type: HRNetW48
loss:
  types: [{type: CrossEntropyLoss}]
  coef: [1]
`,
    "replaced.yml": `_base_: base.yml
model:
  _inherited_: false
  type: HRNetW48
  backbone:
    type: HRNet_W32
  num_classes: 3
loss:
  types: [{type: CrossEntropyLoss}]
  coef: [1]
`,
  });
  // merging keeps the contrast model's proj_dim, which the CE-only model does not have
  await assertRejects(
    () => loadConfig(join(dir, "merged.yml")),
    `${join(dir, "base.yml")}: model.proj_dim: unknown key`,
  );
  const c = await loadConfig(join(dir, "replaced.yml"));
  assertEquals(c.model.type, "HRNetW48");
  assertEquals(c.model.backbone.type, "HRNet_W32");
  assertEquals(c.model.backbone.align_corners, false); // not inherited: back to the default
  assertEquals("proj_dim" in c.model, false);
  const raw = await loadRawConfig(join(dir, "replaced.yml"));
  assertEquals(JSON.stringify(raw).includes("_inherited_"), false);
});

Deno.test("_inherited_: false in a base also replaces that base's own bases", async () => {
  const dir = await writeFiles({
    "a.yml": `${MINIMAL}\ntrain:\n  log_iters: 7\n  save_dir: out_a\n`,
    "b.yml": "_base_: a.yml\ntrain:\n  _inherited_: false\n  save_dir: out_b\n",
    "c.yml": "_base_: b.yml\ntrain:\n  keep_checkpoint_max: 1\n",
  });
  const c = await loadConfig(join(dir, "c.yml"));
  assertEquals(c.train.save_dir, "out_b");
  assertEquals(c.train.log_iters, 10); // a's 7 dropped by b's _inherited_: false
  assertEquals(c.train.keep_checkpoint_max, 1);
});

Deno.test("null unsets a key: the schema default applies", async () => {
  const dir = await writeFiles({
    "base.yml": `${MINIMAL}\nseed: 5\ntrain:\n  save_dir: somewhere\n`,
    "child.yml": "_base_: base.yml\nseed: null\ntrain:\n  save_dir: ~\n",
  });
  const c = await loadConfig(join(dir, "child.yml"));
  assertEquals(c.seed, 0);
  assertEquals(c.train.save_dir, "output");
});
