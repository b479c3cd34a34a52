/** The shipped configs: all load and validate; the seed recipe is the seed's; twins differ only as meant. */
import { deepStrictEqual } from "node:assert";
import { join, relative } from "node:path";
import {
  type Config,
  configDiff,
  configToYaml,
  describeConfigKeys,
  loadConfig,
  loadConfigText,
  loadRawConfig,
} from "../../lib/config/mod.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CONFIGS = join(ROOT, "configs");

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

const load = (rel: string) => loadConfig(relative(Deno.cwd(), join(ROOT, rel)));

Deno.test("every config under configs/ loads and validates (_base_ files: merge only)", async () => {
  const files = await yamlFiles(CONFIGS);
  assert(files.length >= 10, `only ${files.length} configs found`);
  for (const f of files) {
    const rel = relative(Deno.cwd(), f);
    if (f.includes("/_base_/")) {
      const raw = await loadRawConfig(rel); // partial by design (no model), but must parse and merge
      assert(Object.keys(raw).length > 0, `${rel} is empty`);
    } else {
      const c = await loadConfig(rel);
      // the resolved YAML reads back to the same config (what checkpoints store)
      deepStrictEqual(await loadConfigText(configToYaml(c), rel), c);
    }
  }
});

Deno.test("the seed recipe resolves to the seed's hyper-parameters exactly", async () => {
  const c = await load("configs/hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml");
  // expected values typed from justld/contrast_seg_paddle configs/HRNet_W48_cityscapes_1024x512_60k.yml
  // (HEAD 278a004) and docs/method.md §2, §4.1, §6.2, §7
  assertEquals(c.iters, 60000);
  assertEquals(c.batch_size, 2);
  deepStrictEqual(c.optimizer, { type: "sgd", momentum: 0.9, weight_decay: 0.0002 });
  deepStrictEqual(c.lr_scheduler, {
    type: "PolynomialDecay",
    learning_rate: 0.01,
    end_lr: 0,
    power: 0.9,
    warmup_iters: 0,
    warmup_start_lr: 0,
  });
  assertEquals(c.model.type, "HRNetW48Contrast");
  assert(c.model.type === "HRNetW48Contrast");
  assertEquals(c.model.backbone.type, "HRNet_W48");
  assertEquals(c.model.backbone.padding_mode, "paddle");
  assertEquals(c.model.backbone.align_corners, false);
  assertEquals(c.model.bb_channels, 720);
  assertEquals(c.model.num_classes, 19);
  assertEquals(c.model.drop_prob, 0.1);
  assertEquals(c.model.proj_dim, 720);
  deepStrictEqual(c.loss.coef, [1, 0.1]);
  deepStrictEqual(c.loss.types[0], { type: "CrossEntropyLoss", ignore_index: 255 });
  const pc = c.loss.types[1];
  assert(pc.type === "PixelContrastCrossEntropyLoss");
  assertEquals(
    [pc.temperature, pc.base_temperature, pc.ignore_index, pc.max_samples, pc.max_views, pc.warmup_iters],
    [0.1, 0.07, 255, 1024, 100, 0],
  );
  assertEquals(pc.contrast_group_size, 2);
  assertEquals(pc.memory.enabled, false);
  const tr = c.train_dataset!;
  assertEquals([tr.type, tr.mode], ["Cityscapes", "train"]);
  deepStrictEqual(tr.transforms, [
    { type: "ResizeStepScaling", min_scale_factor: 0.5, max_scale_factor: 2.0, scale_step_size: 0.25 },
    {
      type: "RandomPaddingCrop",
      crop_size: [1024, 512],
      im_padding_value: [127.5, 127.5, 127.5],
      label_padding_value: 255,
      category_max_ratio: 1,
      loop_times: 10,
      ignore_index: 255,
    },
    { type: "RandomHorizontalFlip", prob: 0.5 },
    {
      type: "RandomDistort",
      brightness_range: 0.4,
      brightness_prob: 0.5,
      contrast_range: 0.4,
      contrast_prob: 0.5,
      saturation_range: 0.4,
      saturation_prob: 0.5,
      hue_range: 18,
      hue_prob: 0.5,
      sharpness_range: 0.5,
      sharpness_prob: 0,
    },
    { type: "Normalize", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  ]);
  const va = c.val_dataset!;
  assertEquals([va.type, va.mode], ["Cityscapes", "val"]);
  deepStrictEqual(va.transforms, [{ type: "Normalize", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }]);
  // whole-image, single-scale evaluation (what produced 82.47)
  deepStrictEqual(c.test_config, {
    is_slide: false,
    aug_eval: false,
    scales: [1],
    flip_horizontal: false,
    flip_vertical: false,
  });
  assertEquals([c.train.do_eval, c.train.save_interval, c.train.log_iters], [true, 2000, 10]);
});

/** Differences between two configs, ignoring the given top-level or dotted prefixes. */
function diffOutside(a: Config, b: Config, ignore: string[]): string[] {
  return configDiff(a, b).filter((l) => !ignore.some((p) => l.startsWith(`${p}.`) || l.startsWith(`${p}:`)));
}

Deno.test("CE-only twins differ from their contrast configs only in model type, projection and loss", async () => {
  const pairs = [
    [
      "hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml",
      "hrnet_w48/hrnet_w48_cityscapes_1024x512_60k.yml",
    ],
    [
      "synthetic/hrnet_w18_small_v1_contrast_synthetic_256x128_1.5k.yml",
      "synthetic/hrnet_w18_small_v1_synthetic_256x128_1.5k.yml",
    ],
    [
      "camvid/hrnet_w18_small_v1_contrast_camvid_224x160_2k.yml",
      "camvid/hrnet_w18_small_v1_camvid_224x160_2k.yml",
    ],
    ["tests/tiny_contrast_synthetic.yml", "tests/tiny_ce_synthetic.yml"],
  ];
  for (const [contrastFile, ceFile] of pairs) {
    const a = await load(`configs/${contrastFile}`);
    const b = await load(`configs/${ceFile}`);
    assertEquals([a.model.type, b.model.type], ["HRNetW48Contrast", "HRNetW48"], ceFile);
    deepStrictEqual(b.loss, { types: [a.loss.types[0]], coef: [1] });
    const d = diffOutside(a, b, ["loss", "model.type", "model.proj_dim", "train.save_dir"]);
    deepStrictEqual(d, [], `${ceFile} differs from ${contrastFile} beyond the model head and loss`);
  }
});

Deno.test("CamVid and synthetic configs: data as documented", async () => {
  const cam = await load("configs/camvid/hrnet_w18_small_v1_contrast_camvid_224x160_2k.yml");
  assertEquals(cam.model.num_classes, 11);
  assertEquals(cam.loss.types.every((t) => t.ignore_index === 11), true);
  const tr = cam.train_dataset!;
  assert(tr.type === "Dataset");
  assertEquals([tr.dataset_root, tr.train_path], ["data/camvid", "data/camvid/train.txt"]); // data/camvid.tar
  const crop = tr.transforms.find((t) => t.type === "RandomPaddingCrop");
  assert(crop?.type === "RandomPaddingCrop");
  assertEquals([crop.label_padding_value, crop.ignore_index], [11, 11]); // padding is ignored
  const names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car"];
  for (const d of [tr, cam.val_dataset!]) {
    assert(d.type === "Dataset");
    assertEquals(d.class_names, [...names, "Pedestrian", "Bicyclist"]); // data/README.md's order
  }
  const syn = await load("configs/synthetic/hrnet_w18_small_v1_contrast_synthetic_256x128_1.5k.yml");
  assertEquals([syn.train_dataset!.type, syn.model.num_classes, syn.model.bb_channels], [
    "SyntheticCityscapes",
    19,
    240,
  ]);
  const tiny = await load("configs/tests/tiny_contrast_synthetic.yml");
  assertEquals(tiny.model.backbone.type, "HRNet_Tiny");
});

Deno.test("configToYaml writes every resolved key; configDiff lists changed keys", async () => {
  const c = await load("configs/tests/tiny_contrast_synthetic.yml");
  const text = configToYaml(c, { header: "resolved config\nline 2" });
  assert(text.startsWith("# resolved config\n# line 2\n"), text.slice(0, 80));
  for (const s of ["bb_channels: 60", "eval_interval: 2", "ignore_index: 255", "crop_size: [ 64, 32 ]"]) {
    assert(text.includes(s), `missing '${s}' in\n${text}`);
  }
  const d = await loadConfig(relative(Deno.cwd(), join(CONFIGS, "tests/tiny_contrast_synthetic.yml")), {
    overrides: ["iters=5", "loss.types.1.max_views=4"],
  });
  deepStrictEqual(configDiff(c, d), ["iters: 4 -> 5", "loss.types.1.max_views: 8 -> 4"]);
  deepStrictEqual(configDiff(c, structuredClone(c)), []);
});

Deno.test("every schema key is documented", () => {
  const keys = describeConfigKeys();
  const undocumented = keys.filter((k) => !k.doc && !k.path.endsWith(".type")).map((k) => k.path);
  deepStrictEqual(undocumented, []);
  const paths = new Set(keys.map((k) => k.path));
  for (
    const p of [
      "batch_size",
      "iters",
      "seed",
      "backend",
      "train_dataset[type=Cityscapes].dataset_root",
      "train_dataset[type=Dataset].separator",
      "train_dataset[type=SyntheticCityscapes].num_train",
      "train_dataset[type=Cityscapes].transforms[][type=RandomDistort].hue_range",
      "model[type=HRNetW48Contrast].proj_dim",
      "model[type=HRNetW48].backbone.padding_mode",
      "loss.types[][type=PixelContrastCrossEntropyLoss].memory.mining",
      "test_config.is_slide",
      "train.grad_accum",
      "train.precision",
    ]
  ) assert(paths.has(p), `no documented key ${p}`);
});

Deno.test("derived values: class-weight preset, loss alias, num_classes and ignore_index from the dataset", async () => {
  const { validateConfig } = await import("../../lib/config/mod.ts");
  const { resolveClassWeights } = await import("../../lib/losses/mod.ts");
  const { lossOptions } = await import("../../lib/run/options.ts");
  const c = validateConfig({
    iters: 1,
    train_dataset: { type: "SyntheticCityscapes" },
    model: { type: "HRNetW48", backbone: { type: "HRNet_W18_Small_V2" } },
    loss: { types: [{ type: "CrossEntropyLoss", weight: "torch_cityscapes" }], coef: [1] },
  });
  const ce = c.loss.types[0];
  assert(ce.type === "CrossEntropyLoss");
  assertEquals(ce.weight, "torch_cityscapes"); // the name is kept; the loss resolves it
  const resolved = resolveClassWeights(lossOptions(c.loss).ce.weight, 19)!;
  assertEquals(Math.fround(resolved[0]), Math.fround(0.8373)); // docs/method.md §3, class 0
  const badCount = () =>
    validateConfig({
      iters: 1,
      train_dataset: { type: "Dataset", dataset_root: ".", train_path: "x", num_classes: 11 },
      model: { type: "HRNetW48", backbone: { type: "HRNet_W18_Small_V2" } },
      loss: {
        types: [{ type: "CrossEntropyLoss", weight: "torch_cityscapes", ignore_index: 255 }],
        coef: [1],
      },
    });
  let message = "";
  try {
    badCount();
  } catch (e) {
    message = (e as Error).message;
  }
  assert(/19 class weights but the model has 11 classes/.test(message), message);
  assertEquals([c.model.num_classes, ce.ignore_index, c.model.bb_channels], [19, 255, 270]);
  const d = validateConfig({
    iters: 1,
    model: { type: "HRNetW48Contrast", backbone: { type: "HRNet_W18" }, num_classes: 2 },
    loss: {
      types: [{ type: "CrossEntropyLoss" }, { type: "PixelContrastLoss", max_views: 5 }],
      coef: [1, 0.5],
    },
  });
  const alias = validateConfig({ ...c, model: { type: "HRNetCE", backbone: { type: "HRNet_W18" } } });
  assertEquals(alias.model.type, "HRNetW48"); // alias
  const pc = d.loss.types[1];
  assert(pc.type === "PixelContrastCrossEntropyLoss"); // REPRO's name is an alias
  assertEquals([pc.max_views, pc.ignore_index], [5, 255]);
});
