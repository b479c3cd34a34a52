/** Every config error names the file (or override) at fault and the key path. */
import { join } from "node:path";
import { ConfigError, loadConfig, loadConfigText, validateConfig } from "../../lib/config/mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { MINIMAL, writeFiles } from "./_files.ts";

/** Loads `{"x.yml": text, ...}` (entry x.yml) and returns the error, which must name `expected`. */
async function failsWith(files: Record<string, string>, expected: (dir: string) => string, entry = "x.yml") {
  const dir = await writeFiles(files);
  const err = await assertRejects(() => loadConfig(join(dir, entry)), expected(dir));
  assert(err instanceof ConfigError, `expected a ConfigError, got ${err.name}`);
  return err as ConfigError;
}

Deno.test("unknown key: file and full key path, with a suggestion", async () => {
  const err = await failsWith(
    { "x.yml": MINIMAL.replace("type: HRNet_W18", "type: HRNet_W18\n    typo: 1\n    pretraind: w.bin") },
    (d) => `${join(d, "x.yml")}: model.backbone.typo: unknown key`,
  );
  assert(
    err.message.includes("model.backbone.pretraind: unknown key (did you mean 'pretrained'?)"),
    err.message,
  );
  assertEquals(err.issues.length, 2);
});

Deno.test("unknown key inherited from a base names the base file", async () => {
  await failsWith(
    { "base.yml": `${MINIMAL}\ntrian:\n  log_iters: 1\n`, "x.yml": "_base_: base.yml\nseed: 1\n" },
    (d) => `${join(d, "base.yml")}: trian: unknown key (did you mean 'train'?)`,
  );
});

Deno.test("unknown key inside a list item names the item index", async () => {
  await failsWith(
    {
      "x.yml": MINIMAL.replace(
        "- type: CrossEntropyLoss",
        "- type: CrossEntropyLoss\n      ignore_idx: 3",
      ),
    },
    (d) => `${join(d, "x.yml")}: loss.types.0.ignore_idx: unknown key (did you mean 'ignore_index'?)`,
  );
});

Deno.test("wrong types name the key, the expected type and the value", async () => {
  const err = await failsWith(
    { "x.yml": `${MINIMAL}\nbatch_size: two\nseed: 1.5\nbackend: gpu\ntrain:\n  do_eval: 1\n` },
    (d) => `${join(d, "x.yml")}: batch_size: expected a number, got "two"`,
  );
  const m = err.message;
  assert(m.includes("x.yml: seed: expected an integer, got 1.5"), m);
  assert(m.includes('x.yml: backend: got "gpu"'), m);
  assert(m.includes("x.yml: train.do_eval: expected a boolean, got 1"), m);
});

Deno.test("unknown type of a transform, loss or model lists the accepted types", async () => {
  await failsWith(
    {
      "x.yml": `${MINIMAL}
train_dataset:
  type: Cityscapes
  dataset_root: data/cityscapes
  transforms:
    - type: Normalize
    - type: RandomFlip
`,
    },
    (d) =>
      `${join(d, "x.yml")}: train_dataset.transforms.1.type: unknown type "RandomFlip"; expected one of: ` +
      "ResizeStepScaling, RandomPaddingCrop",
  );
  await failsWith(
    { "x.yml": MINIMAL.replace("type: HRNetW48", "type: HRNetW48Contrastt") },
    (d) =>
      `${join(d, "x.yml")}: model.type: unknown type "HRNetW48Contrastt" (did you mean 'HRNetW48Contrast'?)`,
  );
  await failsWith(
    { "x.yml": MINIMAL.replace("type: HRNet_W18", "type: HRNet_W99") },
    (d) => `${join(d, "x.yml")}: model.backbone.type: got "HRNet_W99"`,
  );
});

Deno.test("missing required keys are reported", async () => {
  await failsWith(
    { "x.yml": MINIMAL.replace("iters: 10", "") },
    (d) => `${join(d, "x.yml")}: iters: missing (required, a number)`,
  );
  await failsWith(
    { "x.yml": MINIMAL.replace("  num_classes: 3\n", "") },
    (d) => `${join(d, "x.yml")}: model.num_classes: required when no train_dataset or val_dataset`,
  );
});

Deno.test("missing _base_ file names the file that refers to it", async () => {
  await failsWith(
    { "x.yml": "_base_: ../nowhere/base.yml\n" + MINIMAL },
    (d) => `${join(d, "x.yml")}: _base_: file not found: ${join(d, "../nowhere/base.yml")}`,
  );
  await failsWith(
    { "x.yml": "_base_: [a.yml, missing.yml]\n", "a.yml": MINIMAL },
    (d) => `${join(d, "x.yml")}: _base_: file not found: ${join(d, "missing.yml")}`,
  );
});

Deno.test("missing config file and YAML syntax errors name the file", async () => {
  const dir = await writeFiles({ "bad.yml": "iters: [1, 2\nmodel: {" });
  await assertRejects(
    () => loadConfig(join(dir, "none.yml")),
    `${join(dir, "none.yml")}: config file not found`,
  );
  await assertRejects(() => loadConfig(join(dir, "bad.yml")), `${join(dir, "bad.yml")}: YAML syntax error`);
  const dup = await writeFiles({ "dup.yml": "iters: 1\niters: 2\n" });
  await assertRejects(() => loadConfig(join(dup, "dup.yml")), `${join(dup, "dup.yml")}: YAML syntax error`);
  const list = await writeFiles({ "list.yml": "- iters: 1\n" });
  await assertRejects(() => loadConfig(join(list, "list.yml")), "the top level must be a mapping");
});

Deno.test("inheritance cycles are detected and shown", async () => {
  await failsWith(
    { "a.yml": "_base_: b.yml\n", "b.yml": "_base_: sub/c.yml\n", "sub/c.yml": "_base_: ../a.yml\n" },
    (d) =>
      `${join(d, "sub/c.yml")}: _base_: inheritance cycle: ${join(d, "a.yml")} -> ${join(d, "b.yml")} -> ` +
      `${join(d, "sub/c.yml")} -> ${join(d, "a.yml")}`,
    "a.yml",
  );
  await failsWith(
    { "self.yml": "_base_: self.yml\n" },
    (d) => `${join(d, "self.yml")}: _base_: inheritance cycle`,
    "self.yml",
  );
});

Deno.test("malformed _base_ and _inherited_ values", async () => {
  await failsWith(
    { "x.yml": "_base_: {a: 1}\n" },
    (d) => `${join(d, "x.yml")}: _base_: expected a path or a list of paths`,
  );
  await failsWith(
    { "x.yml": MINIMAL.replace("model:\n", "model:\n  _inherited_: maybe\n") },
    (d) => `${join(d, "x.yml")}: model._inherited_: must be true or false`,
  );
});

Deno.test("cross-key rules name the key at fault", async () => {
  const ds = `
train_dataset:
  type: Dataset
  dataset_root: d
  train_path: d/train.txt
  num_classes: 11
  ignore_index: 11
`;
  // class count must agree with the dataset
  await failsWith(
    { "x.yml": MINIMAL + ds },
    (d) => `${join(d, "x.yml")}: model.num_classes: 3 does not match train_dataset (11 classes)`,
  );
  const noCls = MINIMAL.replace("  num_classes: 3\n", "");
  // loss ignore_index must agree with the dataset (PaddleSeg's rule)
  await failsWith(
    {
      "x.yml":
        noCls.replace("- type: CrossEntropyLoss", "- type: CrossEntropyLoss\n      ignore_index: 255") + ds,
    },
    (d) => `${join(d, "x.yml")}: loss.types.0.ignore_index: 255 differs from train_dataset's ignore_index 11`,
  );
  // a padding label that is neither a class nor ignored
  await failsWith(
    { "x.yml": noCls + ds + "  transforms:\n    - type: RandomPaddingCrop\n      crop_size: [32, 32]\n" },
    (d) => `${join(d, "x.yml")}: train_dataset.transforms.0.label_padding_value: 255 is neither a class`,
  );
  // the generic dataset needs the list file of its mode
  await failsWith(
    { "x.yml": noCls + ds.replace("  train_path: d/train.txt\n", "") },
    (d) => `${join(d, "x.yml")}: train_dataset.train_path: required for mode 'train'`,
  );
  // one class name per class
  await failsWith(
    { "x.yml": noCls + ds + "  class_names: [Sky, Road]\n" },
    (d) => `${join(d, "x.yml")}: train_dataset.class_names: 2 names for num_classes 11`,
  );
  // losses must match the model's outputs
  await failsWith(
    { "x.yml": MINIMAL.replace("type: HRNetW48", "type: HRNetW48Contrast") },
    (d) =>
      `${
        join(d, "x.yml")
      }: loss.types: model HRNetW48Contrast needs losses [CrossEntropyLoss, PixelContrastCrossEntropyLoss]`,
  );
  // PaddleSeg repeats a single loss type to coef's length; the contrast model needs two different ones
  await failsWith(
    {
      "x.yml": MINIMAL.replace("type: HRNetW48", "type: HRNetW48Contrast").replace(
        "coef: [1]",
        "coef: [1, 0.1]",
      ),
    },
    (d) =>
      `${join(d, "x.yml")}: loss.types: model HRNetW48Contrast needs losses [CrossEntropyLoss, ` +
      "PixelContrastCrossEntropyLoss] (one per model output, with as many coef), got [CrossEntropyLoss, CrossEntropyLoss]",
  );
  await failsWith(
    {
      "x.yml": MINIMAL.replace("coef: [1]", "coef: [1, 2, 3]").replace(
        "types:",
        "types:\n    - type: CrossEntropyLoss",
      ),
    },
    (d) => `${join(d, "x.yml")}: loss.coef: has 3 entries but loss.types has 2`,
  );
  // class weights must have one entry per class
  await failsWith(
    {
      "x.yml": MINIMAL.replace(
        "- type: CrossEntropyLoss",
        "- type: CrossEntropyLoss\n      weight: torch_cityscapes",
      ),
    },
    (d) => `${join(d, "x.yml")}: loss.types.0.weight: has 19 class weights but the model has 3 classes`,
  );
  // bb_channels must match the backbone
  await failsWith(
    { "x.yml": MINIMAL.replace("  num_classes: 3\n", "  num_classes: 3\n  in_channels: 720\n") },
    (d) => `${join(d, "x.yml")}: model.in_channels: 720 does not match backbone HRNet_W18 (270 channels)`,
  );
  // sliding-window evaluation needs its window
  await failsWith(
    { "x.yml": `${MINIMAL}\ntest_config:\n  is_slide: true\n  crop_size: [512, 512]\n` },
    (d) => `${join(d, "x.yml")}: test_config.stride: required when is_slide is true`,
  );
});

Deno.test("pretrained URLs are refused: nothing is downloaded at run time", async () => {
  await failsWith(
    {
      "x.yml": MINIMAL.replace(
        "type: HRNet_W18",
        "type: HRNet_W18\n    pretrained: https://bj.bcebos.com/w.tar.gz",
      ),
    },
    (d) =>
      `${join(d, "x.yml")}: model.backbone.pretrained: model.backbone.pretrained must be a local file path`,
  );
});

Deno.test("loadConfigText and validateConfig report with the given source name", async () => {
  await assertRejects(
    () => loadConfigText(MINIMAL + "bogus: 1\n", "ckpt/config.yml"),
    "ckpt/config.yml: bogus: unknown key",
  );
  assertThrows(() => validateConfig({ iters: 1 }, "inline"), "inline: model: missing");
});

Deno.test("several problems are all listed, one per line", async () => {
  const err = await failsWith(
    { "x.yml": `${MINIMAL}\nbatch_size: 0\nseed: -1\n` },
    (d) => `${join(d, "x.yml")}: batch_size: must be >= 1, got 0`,
  );
  assert(err.message.startsWith("2 problems in "), err.message);
  assert(err.message.includes("seed: must be >= 0, got -1"), err.message);
});
