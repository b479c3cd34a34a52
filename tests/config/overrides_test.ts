/** Command line: PaddleSeg `--opts key=value`, the common flags and their argv parser. */
import { deepStrictEqual } from "node:assert";
import { join } from "node:path";
import {
  applyCliFlags,
  cliFlagsToOverrides,
  configFlagsHelp,
  loadConfig,
  parseConfigArgs,
  parseOverrides,
} from "../../lib/config/mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { MINIMAL, writeFiles } from "./_files.ts";

const CONTRAST = `
iters: 100
model:
  type: HRNetW48Contrast
  backbone: {type: HRNet_W18_Small_V1}
  num_classes: 4
loss:
  types:
    - type: CrossEntropyLoss
    - type: PixelContrastCrossEntropyLoss
  coef: [1, 0.1]
`;

async function cfgFile(text = CONTRAST): Promise<string> {
  return join(await writeFiles({ "c.yml": text }), "c.yml");
}

Deno.test("parseOverrides: YAML values, list indices, PaddleSeg comma lists", () => {
  const ovs = parseOverrides([
    "iters=5",
    "model.backbone.pretrained=null",
    "loss.types.1.temperature=0.2",
    "test_config.scales=0.75,1.0,1.25",
    "loss.coef=[1, 0.5]",
    "train.save_dir=a=b",
    "backend=cpu",
    "train.do_eval=true",
  ]);
  deepStrictEqual(ovs.map((o) => o.path), [
    ["iters"],
    ["model", "backbone", "pretrained"],
    ["loss", "types", 1, "temperature"],
    ["test_config", "scales"],
    ["loss", "coef"],
    ["train", "save_dir"],
    ["backend"],
    ["train", "do_eval"],
  ]);
  deepStrictEqual(ovs.map((o) => o.value), [5, null, 0.2, [0.75, 1, 1.25], [1, 0.5], "a=b", "cpu", true]);
  assertEquals(ovs[0].label, "--opts iters=5");
});

Deno.test("parseOverrides: malformed items name the item", () => {
  assertThrows(() => parseOverrides(["iters"]), "--opts iters: expected key=value");
  assertThrows(() => parseOverrides(["=3"]), "--opts =3: expected key=value");
  assertThrows(() => parseOverrides(["model..type=x"]), "--opts model..type=x: bad key 'model..type'");
  assertThrows(
    () => parseOverrides(["loss.coef=[1, 2"]),
    "--opts loss.coef=[1, 2: loss.coef: bad value '[1, 2'",
  );
});

Deno.test("overrides set single keys, including keys absent from the file and list items", async () => {
  const c = await loadConfig(await cfgFile(), {
    overrides: [
      "iters=7",
      "loss.types.1.temperature=0.2",
      "loss.types.1.memory.enabled=true",
      "train.grad_accum=4",
      "test_config.scales=0.5,1",
      "model.backbone.type=HRNet_W32",
    ],
  });
  assertEquals(c.iters, 7);
  const pc = c.loss.types[1];
  assert(pc.type === "PixelContrastCrossEntropyLoss");
  assertEquals(pc.temperature, 0.2);
  assertEquals(pc.memory.enabled, true);
  assertEquals(pc.memory.pixel_update_freq, 10);
  assertEquals(c.train.grad_accum, 4);
  deepStrictEqual(c.test_config.scales, [0.5, 1]);
  assertEquals(c.model.bb_channels, 480);
});

Deno.test("an override can unset a key with null (back to the default)", async () => {
  const file = await cfgFile(CONTRAST + "seed: 9\n");
  assertEquals((await loadConfig(file, { overrides: ["seed=null"] })).seed, 0);
});

Deno.test("bad override key: the message names the override and the key", async () => {
  const file = await cfgFile();
  await assertRejects(
    () => loadConfig(file, { overrides: ["model.backbone.typo=3"] }),
    "--opts model.backbone.typo=3: model.backbone.typo: unknown key",
  );
  await assertRejects(
    () => loadConfig(file, { overrides: ["trian.log_iters=3"] }),
    "--opts trian.log_iters=3: trian: unknown key (did you mean 'train'?)",
  );
  await assertRejects(
    () => loadConfig(file, { overrides: ["loss.types.5.temperature=1"] }),
    "--opts loss.types.5.temperature=1: loss.types.5: loss.types is a list of 2 item(s)",
  );
  await assertRejects(
    () => loadConfig(file, { overrides: ["iters.value=1"] }),
    "--opts iters.value=1: iters.value: iters is a single value",
  );
});

Deno.test("bad override value: the message names the override, the key and the value", async () => {
  const file = await cfgFile();
  await assertRejects(
    () => loadConfig(file, { overrides: ["loss.types.1.temperature=warm"] }),
    '--opts loss.types.1.temperature=warm: loss.types.1.temperature: expected a number, got "warm"',
  );
  await assertRejects(
    () => loadConfig(file, { overrides: ["batch_size=0"] }),
    "--opts batch_size=0: batch_size: must be >= 1, got 0",
  );
  await assertRejects(
    () => loadConfig(file, { overrides: ["backend=cuda"] }),
    '--opts backend=cuda: backend: got "cuda"; expected one of: auto, tensorflow, wasm, webgpu, cpu',
  );
});

Deno.test("later overrides win; --opts wins over flags", async () => {
  const c = await loadConfig(await cfgFile(), {
    flags: { iters: 50, seed: 4 },
    overrides: ["iters=60", "iters=70"],
  });
  assertEquals(c.iters, 70);
  assertEquals(c.seed, 4);
});

Deno.test("flags map onto config keys", async () => {
  const c = await loadConfig(await cfgFile(), {
    flags: {
      iters: 20,
      batch_size: 4,
      learning_rate: 0.02,
      backend: "wasm",
      seed: 3,
      save_dir: "out/x",
      log_iters: 2,
      save_interval: 5,
      keep_checkpoint_max: 1,
      do_eval: true,
      grad_accum: 2,
      precision: "bf16",
      graph: "off",
      resume_model: "out/x/iter_5",
      aug_eval: true,
      scales: [0.75, 1.25],
      flip_horizontal: true,
      is_slide: true,
      crop_size: [64, 32],
      stride: [32, 16],
    },
  });
  assertEquals(c.iters, 20);
  assertEquals(c.batch_size, 4);
  assertEquals(c.lr_scheduler.learning_rate, 0.02);
  assertEquals(c.backend, "wasm");
  assertEquals(c.seed, 3);
  deepStrictEqual(c.train, {
    grad_accum: 2,
    lr_scaling: "none",
    recompute: false,
    precision: "bf16",
    graph: "off",
    log_iters: 2,
    save_interval: 5,
    keep_checkpoint_max: 1,
    do_eval: true,
    eval_interval: 5,
    save_dir: "out/x",
    resume_model: "out/x/iter_5",
  });
  deepStrictEqual(c.test_config, {
    is_slide: true,
    crop_size: [64, 32],
    stride: [32, 16],
    aug_eval: true,
    scales: [0.75, 1.25],
    flip_horizontal: true,
    flip_vertical: false,
  });
});

Deno.test("bad flag values name the flag", async () => {
  const file = await cfgFile();
  await assertRejects(
    () => loadConfig(file, { flags: { iters: 0 } }),
    "--iters 0: iters: must be >= 1, got 0",
  );
  await assertRejects(
    () => loadConfig(file, { flags: { batch_size: 3 } }),
    "loss.types.1.contrast_group_size: 2 does not divide batch_size 3",
  );
  assertThrows(
    () => cliFlagsToOverrides({ itres: 3 } as never),
    "--itres: unknown flag (did you mean 'iters'?)",
  );
});

Deno.test("applyCliFlags on a loaded config re-validates and keeps eval_interval tied to save_interval", async () => {
  const c = await loadConfig(await cfgFile());
  const d = applyCliFlags(c, { iters: 9, save_interval: 3, backend: "cpu" });
  assertEquals(d.iters, 9);
  assertEquals(d.backend, "cpu");
  assertEquals(d.train.save_interval, 3);
  assertEquals(d.train.eval_interval, 3);
  assertEquals(c.iters, 100); // the input is not modified
  assertThrows(
    () => applyCliFlags(c, { keep_checkpoint_max: -1 }),
    "--keep_checkpoint_max -1: train.keep_checkpoint_max",
  );
});

Deno.test("parseConfigArgs: PaddleSeg-style argv", () => {
  const a = parseConfigArgs(
    [
      "--config",
      "configs/x.yml",
      "--do_eval",
      "--log_iter",
      "5",
      "--iters=30",
      "--batch-size",
      "4",
      "--crop_size",
      "512",
      "256",
      "--stride=256,128",
      "--scales",
      "0.5",
      "1.0",
      "--flip",
      "--opts",
      "seed=1",
      "loss.coef=[1,0.2]",
      "--backend",
      "cpu",
      "--model_path",
      "out/best_model",
      "extra_positional",
    ],
    { model_path: { type: "string" } },
  );
  assertEquals(a.config, "configs/x.yml");
  deepStrictEqual(a.flags, {
    do_eval: true,
    log_iters: 5,
    iters: 30,
    batch_size: 4,
    crop_size: [512, 256],
    stride: [256, 128],
    scales: [0.5, 1],
    flip_horizontal: true,
    backend: "cpu",
  });
  deepStrictEqual(a.opts, ["seed=1", "loss.coef=[1,0.2]"]);
  deepStrictEqual(a.extra, { model_path: "out/best_model" });
  deepStrictEqual(a.positionals, ["extra_positional"]);
});

Deno.test("parseConfigArgs: errors name the flag", () => {
  assertThrows(() => parseConfigArgs(["--iter", "5"]), "--iter: unknown option (did you mean 'iters'?)");
  assertThrows(() => parseConfigArgs(["--iters", "five"]), "--iters: expected an integer, got 'five'");
  assertThrows(() => parseConfigArgs(["--iters", "2.5"]), "--iters: expected an integer, got '2.5'");
  assertThrows(() => parseConfigArgs(["--iters"]), "--iters: needs a value");
  assertThrows(() => parseConfigArgs(["--backend", "gpu"]), "--backend: unknown backend 'gpu'");
  assertThrows(
    () => parseConfigArgs(["--precision", "fp16"]),
    "--precision: unknown precision 'fp16' (did you mean 'fp32'?); expected one of: fp32, bf16, auto",
  );
  assertThrows(() => parseConfigArgs(["--crop_size", "512"]), "--crop_size: needs a value");
  assertThrows(() => parseConfigArgs(["--do_eval=maybe"]), "--do_eval: expected true or false, got 'maybe'");
  assertThrows(() => parseConfigArgs(["--opts"]), "--opts: needs key=value items");
});

Deno.test("configFlagsHelp documents every flag with its config key", () => {
  const help = configFlagsHelp();
  for (const s of ["--iters N", "-> iters", "--crop_size W H", "-> test_config.crop_size", "--opts k=v"]) {
    assert(help.includes(s), `help lacks '${s}':\n${help}`);
  }
});

Deno.test("the minimal config needs no flags", async () => {
  const c = await loadConfig(join(await writeFiles({ "m.yml": MINIMAL }), "m.yml"));
  assertEquals(c.backend, "auto");
  assertEquals(c.train.precision, "fp32");
});

Deno.test("train.precision: --precision (PaddleSeg's name) and the config key; bad values name the key", async () => {
  const dir = await writeFiles({ "m.yml": MINIMAL, "b.yml": MINIMAL + "train:\n  precision: auto\n" });
  assertEquals((await loadConfig(join(dir, "b.yml"))).train.precision, "auto");
  const flags = parseConfigArgs(["--precision", "bf16"]).flags;
  assertEquals(flags.precision, "bf16");
  assertEquals((await loadConfig(join(dir, "b.yml"), { flags })).train.precision, "bf16", "the flag wins");
  await assertRejects(
    () => loadConfig(join(dir, "m.yml"), { overrides: ["train.precision=fp16"] }),
    /train\.precision/,
  );
});
