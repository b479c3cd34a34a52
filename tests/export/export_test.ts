/**
 * `deno task export --to paddleseg` without Paddle: the PyYAML-safe writer, the .pdparams writer read back
 * by our reader (OIHW layout, BN statistics), the translation key by key, refusals that name every key at
 * fault, and the CLI's refusals (exit 2, nothing written; a non-empty --out; a link where a train-id label
 * would go). PaddleSeg itself reads the results in paddleseg_test.ts.
 */
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { initBackend } from "../../lib/backend/mod.ts";
import { tf } from "../../lib/backend/tf.ts";
import { type Config, loadConfig } from "../../lib/config/mod.ts";
import {
  ensureTrainIds,
  ExportRefusedError,
  PyFloat,
  toPyYaml,
  translateConfig,
} from "../../lib/export/mod.ts";
import { pyFloatText, type PyValue } from "../../lib/export/pyyaml.ts";
import { buildModel, encodePdparams, paddleStateDict, parseWeightFile } from "../../lib/models/mod.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { TORCH_CE_WEIGHTS } from "../../lib/losses/options.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { tmpDir } from "../data/_tmp.ts";

await initBackend();

const TINY_PADDLE = "configs/tests/tiny_paddleseg_synthetic.yml";
const opts = { weights: { kind: "paths" as const }, saveDir: "out/x", exists: () => false };

function refusalsOf(fn: () => unknown): { key: string; why: string }[] {
  try {
    fn();
  } catch (e) {
    assert(e instanceof ExportRefusedError, `expected ExportRefusedError, got ${e}`);
    for (const r of e.refusals) assert(e.message.includes(`${r.key}: `), `message names ${r.key}`);
    return e.refusals;
  }
  throw new Error("expected the export to be refused");
}

Deno.test("PyYAML writer: floats keep a '.' and a signed exponent, strings are quoted, nesting round-trips", () => {
  assertEquals(pyFloatText(0), "0.0");
  assertEquals(pyFloatText(1), "1.0");
  assertEquals(pyFloatText(0.0002), "0.0002");
  assertEquals(pyFloatText(2e-7), "2.0e-7");
  assertEquals(pyFloatText(1.5e-7), "1.5e-7");
  assertEquals(pyFloatText(1e21), "1.0e+21");
  const doc: { [key: string]: PyValue } = {
    a: 1,
    b: new PyFloat(2e-7),
    c: "yes", // a YAML 1.1 boolean if unquoted
    d: [new PyFloat(1), 2],
    e: { f: [{ type: "Normalize", mean: [new PyFloat(0.5)] }, { type: "X" }], g: {} },
    h: null,
    i: true,
  };
  const text = toPyYaml(doc);
  assert(text.includes("b: 2.0e-7\n") && text.includes('c: "yes"\n') && text.includes("d: [1.0, 2]\n"), text);
  assertEquals(parseYaml(text), {
    a: 1,
    b: 2e-7,
    c: "yes",
    d: [1, 2],
    e: { f: [{ type: "Normalize", mean: [0.5] }, { type: "X" }], g: {} },
    h: null,
    i: true,
  });
});

Deno.test(".pdparams writer: our reader gets every tensor back under PaddleSeg names, OIHW, BN statistics included", async () => {
  const model = buildModel(modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 3, projDim: 4 }), new Rng(3));
  try {
    const state = await paddleStateDict(model);
    assertEquals(state.size, model.store.params.length);
    const bytes = encodePdparams(state);
    assertEquals([bytes[0], bytes[1]], [0x80, 4], "pickle protocol 4");
    const file = await parseWeightFile(bytes, "x.pdparams");
    assertEquals(file.format, "paddle");
    assertEquals([...file.tensors.keys()], model.store.params.map((p) => p.spec.name));
    const conv = model.store.params.find((p) => p.spec.role === "conv_weight" && p.spec.shape[0] === 3)!;
    const [kh, kw, cin, cout] = conv.spec.shape;
    const t = file.tensors.get(conv.spec.name)!;
    assertEquals(t.dtype, "float32");
    assertEquals(t.shape, [cout, cin, kh, kw], "conv weights are OIHW in the file");
    const ours = conv.value.dataSync() as Float32Array;
    const theirs = new Float32Array(t.data.slice().buffer);
    // element (o, i, y, x) of the file is element (y, x, i, o) of ours
    for (const [o, i, y, x] of [[0, 0, 0, 0], [cout - 1, cin - 1, kh - 1, kw - 1], [1, 2, 1, 0]]) {
      assertEquals(theirs[((o * cin + i) * kh + y) * kw + x], ours[((y * kw + x) * cin + i) * cout + o]);
    }
    const mean = model.store.params.find((p) => p.spec.role === "bn_mean")!;
    mean.value.assign(tf.fill(mean.spec.shape, 0.25));
    const again = await parseWeightFile(encodePdparams(await paddleStateDict(model)), "y.pdparams");
    assert(new Float32Array(again.tensors.get(mean.spec.name)!.data.slice().buffer).every((v) => v === 0.25));
  } finally {
    model.dispose();
  }
});

Deno.test("translation: the tiny config becomes PaddleSeg's keys, values and train.py flags", async () => {
  const config = await loadConfig(TINY_PADDLE, {
    overrides: [
      "optimizer.weight_decay=0.0003",
      "loss.types.0.weight=torch_cityscapes",
      "test_config.aug_eval=true",
      "test_config.scales=[0.75,1.0]",
      "test_config.flip_horizontal=true",
      "lr_scheduler.warmup_iters=2",
      "lr_scheduler.warmup_start_lr=0.001",
    ],
  });
  const t = translateConfig(config, TINY_PADDLE, opts);
  const c = parseYaml(toPyYaml(t.config));
  assertEquals(c.model, {
    type: "HRNetW48Contrast",
    backbone: { type: "HRNet_W18_Small_V1", align_corners: false, padding_same: true },
    bb_channels: 240,
    num_classes: 19,
    drop_prob: 0,
    proj_dim: 16,
    align_corners: false,
  });
  assertEquals(c.optimizer, { type: "SGD", momentum: 0.9, weight_decay: 0.0003 });
  assertEquals(c.lr_scheduler, {
    type: "PolynomialDecay",
    learning_rate: 0.01,
    end_lr: 0,
    power: 0.9,
    warmup_iters: 2,
    warmup_start_lr: 0.001,
  });
  assertEquals(c.loss.coef, [1, 0.1]);
  assertEquals(c.loss.types[0], {
    type: "CrossEntropyLoss",
    ignore_index: 255,
    weight: [...TORCH_CE_WEIGHTS],
  });
  assertEquals(c.loss.types[1], {
    type: "PixelContrastCrossEntropyLoss",
    temperature: 0.1,
    base_temperature: 0.07,
    ignore_index: 255,
    max_samples: 64,
    max_views: 8,
  });
  assertEquals(c.train_dataset.type, "Cityscapes");
  assertEquals(c.train_dataset.dataset_root, "data/synthetic_cityscapes_tiny");
  assertEquals(c.test_config, {
    aug_eval: true,
    scales: [0.75, 1],
    flip_horizontal: true,
    flip_vertical: false,
  });
  assertEquals(t.valFlags, ["--aug_eval", "--scales", "0.75", "1", "--flip_horizontal"]);
  assertEquals(t.trainFlags, [
    "--do_eval",
    "--save_interval",
    "5",
    "--log_iters",
    "1",
    "--keep_checkpoint_max",
    "2",
    "--seed",
    "0",
    "--save_dir",
    "out/x",
  ]);
  assert(/weight_decay: 0\.0003\n/.test(toPyYaml(t.config)), "a float, as PaddleSeg asserts");
  assertEquals(t.datasets.map((d) => [d.key, d.layout, d.synthetic, d.mode]), [
    ["train_dataset", "cityscapes", true, "train"],
    ["val_dataset", "cityscapes", true, "val"],
  ]);
  assert(t.dropped.some((d) => d.key === "backend"));
  // exported weights replace the config's pretrained paths
  const w = translateConfig(config, TINY_PADDLE, {
    ...opts,
    weights: { kind: "exported", pdparams: "D/model.pdparams" },
  });
  assertEquals((w.config.model as Record<string, unknown>).pretrained, "D/model.pdparams");
});

Deno.test("translation: the CE twin becomes HRNetW48Contrast with a 0-weighted contrast term; list files as PaddleSeg opens them", async () => {
  const dir = await tmpDir("pc-export-ce-");
  const cfg = join(dir, "ce.yml");
  await Deno.writeTextFile(
    cfg,
    `_base_: ${join(Deno.cwd(), TINY_PADDLE)}
model:
  _inherited_: false
  type: HRNetW48
  backbone:
    type: HRNet_W48
    padding_mode: torch
    align_corners: true
loss:
  types:
    - type: CrossEntropyLoss
  coef: [1]
train_dataset:
  _inherited_: false
  type: Dataset
  dataset_root: ${dir}
  train_path: train.txt
  num_classes: 3
  class_names: [a, b, c]
  transforms:
    - type: RandomPaddingCrop
      crop_size: [64, 32]
      im_padding_value: 0
val_dataset:
  _inherited_: false
  type: Dataset
  dataset_root: ${dir}
  val_path: ${dir}/val.txt
  num_classes: 3
`,
  );
  const config: Config = await loadConfig(cfg);
  // train.txt exists only under dataset_root: PaddleSeg needs the rooted path
  const exists = (p: string) => p === `${dir}/train.txt` || p === `${dir}/val.txt`;
  const t = translateConfig(config, cfg, { ...opts, exists });
  const c = parseYaml(toPyYaml(t.config));
  assert(t.ceTwin);
  assertEquals(c.model.type, "HRNetW48Contrast");
  assertEquals(c.model.proj_dim, 256);
  assertEquals(c.model.align_corners, true);
  assertEquals(c.model.backbone, { type: "HRNet_W48", align_corners: true, padding_same: false });
  assertEquals(c.loss.coef, [1, 0]);
  assertEquals(c.loss.types.map((x: { type: string }) => x.type), [
    "CrossEntropyLoss",
    "PixelContrastCrossEntropyLoss",
  ]);
  assertEquals(c.train_dataset.train_path, `${dir}/train.txt`);
  assertEquals(c.val_dataset.val_path, `${dir}/val.txt`);
  assertEquals(c.train_dataset.transforms[0].im_padding_value, 0);
  assertEquals(c.train_dataset.num_classes, 3);
  assert(t.notes.some((n) => n.includes("HRNetW48 (CE only) -> HRNetW48Contrast")), t.notes.join("\n"));
  assert(t.dropped.some((d) => d.key === "train_dataset.class_names"));
  assertEquals(t.datasets.map((d) => d.layout), ["list", "list"]);
});

Deno.test("translation refuses what PaddleSeg cannot express, naming every key and why", async () => {
  const config = await loadConfig("configs/tests/tiny_contrast_synthetic.yml", {
    overrides: [
      "batch_size=4",
      "loss.types.1.memory.enabled=true",
      "loss.types.1.warmup_iters=3",
      "train.grad_accum=2",
      "train.recompute=true",
      "train.lr_scaling=linear",
      "train.eval_interval=3",
      "train.resume_model=output/x/iter_2",
      "train_dataset.transforms.0.category_max_ratio=0.75",
      "train_dataset.transforms.0.im_padding_value=[1,2,3]",
      "model.backbone.pretrained=weights/hrnet.pth",
    ],
  });
  const keys = refusalsOf(() => translateConfig(config, "x.yml", opts)).map((r) => r.key).sort();
  assertEquals(
    keys,
    [
      "loss.types[1].contrast_group_size", // 2 != batch_size 4
      "loss.types[1].memory.enabled",
      "loss.types[1].warmup_iters",
      "model.backbone.pretrained", // a .pth that is not here to convert
      "model.backbone.type", // HRNet_Tiny
      "train.eval_interval",
      "train.grad_accum",
      "train.lr_scaling",
      "train.recompute",
      "train.resume_model",
      "train_dataset.transforms[0].category_max_ratio",
      "train_dataset.transforms[0].im_padding_value",
    ].sort(),
  );
  const why = Object.fromEntries(
    refusalsOf(() => translateConfig(config, "x.yml", opts)).map((r) => [r.key, r.why]),
  );
  assert(/differs from batch_size 4/.test(why["loss.types[1].contrast_group_size"]));
  assert(/memory bank/.test(why["loss.types[1].memory.enabled"]));
  assert(/64-channel stem/.test(why["model.backbone.type"]));
});

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/cli/export.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("deno task export: a refused config exits 2 naming the keys and writes nothing; a non-empty --out is refused", async () => {
  const dir = await tmpDir("pc-export-cli-");
  const out = join(dir, "exp");
  const r = await cli([
    "--config",
    "configs/tests/tiny_contrast_synthetic.yml",
    "--to",
    "paddleseg",
    "--out",
    out,
    "--opts",
    "loss.types.1.memory.enabled=true",
  ]);
  assertEquals(r.code, 2, r.out);
  assert(r.out.includes("model.backbone.type: HRNet_Tiny is ours"), r.out);
  assert(r.out.includes("loss.types[1].memory.enabled: the pixel/segment memory bank is ours"), r.out);
  assert(!(await Deno.stat(out).then(() => true, () => false)), "nothing written");
  await Deno.mkdir(out);
  await Deno.writeTextFile(join(out, "config.yml"), "# an earlier export\n");
  const busy = await cli(["--config", TINY_PADDLE, "--to", "paddleseg", "--out", out]);
  assertEquals(busy.code, 2, busy.out);
  assert(busy.out.includes(`--out '${out}' is not empty`), busy.out);
  assertEquals(await Deno.readTextFile(join(out, "config.yml")), "# an earlier export\n");
  const to = await cli(["--config", TINY_PADDLE, "--to", "mmseg", "--out", join(dir, "y")]);
  assertEquals(to.code, 2);
  assert(to.out.includes("--to must be paddleseg (got 'mmseg')"), to.out);
});

Deno.test("train-id labels: written beside the label ids with the official table, never over an existing path", async () => {
  const root = await tmpDir("pc-export-ids-");
  const city = join(root, "gtFine", "val", "x");
  await Deno.mkdir(city, { recursive: true });
  await Deno.mkdir(join(root, "leftImg8bit", "val", "x"), { recursive: true });
  const { writePng, readLabelImage } = await import("../../lib/data/image_io.ts");
  for (const stem of ["x_000000_000001", "x_000000_000002"]) {
    await writePng(join(root, "leftImg8bit", "val", "x", `${stem}_leftImg8bit.png`), {
      data: new Uint8Array(4 * 2 * 3),
      width: 4,
      height: 2,
      channels: 3,
      depth: 8,
    });
    // label ids: 7 road -> 0, 26 car -> 13, 0 unlabeled -> 255, 33 bicycle -> 18
    await writePng(join(city, `${stem}_gtFine_labelIds.png`), {
      data: new Uint8Array([7, 26, 0, 33, 7, 7, 26, 0]),
      width: 4,
      height: 2,
      channels: 1,
      depth: 8,
    });
  }
  const dry = await ensureTrainIds(root, "val", { write: false });
  assertEquals(dry.missing.length, 2);
  const r = await ensureTrainIds(root, "val", { write: true });
  assertEquals([r.written, r.present], [2, 0]);
  const img = await readLabelImage(join(city, "x_000000_000001_gtFine_labelTrainIds.png"));
  assertEquals([...img.data], [0, 13, 255, 18, 0, 0, 13, 255]);
  assertEquals((await ensureTrainIds(root, "val", { write: true })).present, 2, "second run: nothing to do");
  // a dangling link where a train-id file would go is never followed or replaced
  const stem3 = "x_000000_000003";
  await writePng(join(root, "leftImg8bit", "val", "x", `${stem3}_leftImg8bit.png`), {
    data: new Uint8Array(4 * 2 * 3),
    width: 4,
    height: 2,
    channels: 3,
    depth: 8,
  });
  await Deno.copyFile(
    join(city, "x_000000_000001_gtFine_labelIds.png"),
    join(city, `${stem3}_gtFine_labelIds.png`),
  );
  const outside = join(root, "outside.png");
  await Deno.symlink(outside, join(city, `${stem3}_gtFine_labelTrainIds.png`));
  let err = "";
  await ensureTrainIds(root, "val", { write: true }).catch((e) => (err = (e as Error).message));
  assert(err.includes(`${stem3}_gtFine_labelTrainIds.png' exists`), err);
  assert(!(await Deno.stat(outside).then(() => true, () => false)), "nothing written through the link");
});

Deno.test("the way back: a PaddleSeg folder whose model.pdparams lacks a tensor or holds a mis-shaped one fails naming both", async () => {
  const dir = await tmpDir("pc-export-back-");
  const config = await loadConfig("configs/tests/tiny_contrast_synthetic.yml");
  const model = buildModel(
    modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 19, projDim: 16 }),
    new Rng(1),
  );
  const state = await paddleStateDict(model);
  model.dispose();
  const missing = "backbone.conv_layer1_2._batch_norm._variance";
  const misShaped = "cls_head.2.weight";
  assert(state.delete(missing), "the tensor exists");
  const w = state.get(misShaped)!;
  state.set(misShaped, {
    ...w,
    shape: [w.shape[0] - 1, ...w.shape.slice(1)],
    data: w.data.slice(0, -4 * w.shape[1]),
  });
  const folder = join(dir, "best_model");
  await Deno.mkdir(folder);
  await Deno.writeFile(join(folder, "model.pdparams"), encodePdparams(state));
  const val = async (modelPath: string) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "lib/cli/val.ts",
        "--config",
        "configs/tests/tiny_contrast_synthetic.yml",
        "--model_path",
        modelPath,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  };
  assertEquals(config.model.pretrained_min_match, 0.9);
  // the folder is a whole checkpoint: everything must match
  const strict = await val(folder);
  assertEquals(strict.code, 1, strict.out);
  assert(strict.out.includes(`missing (1): ${missing}`), strict.out);
  assert(strict.out.includes(`shape mismatch (1): ${misShaped} (file '${misShaped}'`), strict.out);
  assert(/matched \d+\/\d+ tensors/.test(strict.out) && !strict.out.includes("[EVAL"), strict.out);
  // a bare weights file: the same report, then the config's pretrained_min_match decides
  const lenient = await val(join(folder, "model.pdparams"));
  assert(lenient.out.includes(`missing (1): ${missing}`), lenient.out);
  assert(lenient.out.includes(`shape mismatch (1): ${misShaped}`), lenient.out);
});
