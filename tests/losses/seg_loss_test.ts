/** G12 (loss assembly, docs/method.md §11), warm-up, diagnostics and the config mapping. */
import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { type Tensor4D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { Tape } from "../../lib/backend/tape.ts";
import { Rng } from "../../lib/util/rng.ts";
import { crossEntropyLoss } from "../../lib/losses/cross_entropy.ts";
import { pixelContrastLoss } from "../../lib/losses/pixel_contrast.ts";
import { readLossDiagnostics, segmentationLoss } from "../../lib/losses/seg_loss.ts";
import { MemoryBank, memoryBankFromOptions } from "../../lib/losses/memory_bank.ts";
import { type LossOptions, TORCH_CE_WEIGHTS } from "../../lib/losses/options.ts";
import {
  contrastOptionsOf,
  crossEntropyOptionsOf,
  lossOptions,
  lossOptionsOf,
} from "../../lib/run/options.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { disposeBatch, makeBatch } from "./_batch.ts";

await initBackend();

const contrast = contrastOptionsOf({ maxViews: 5, maxSamples: 40, draw: "identity" });
const seed: LossOptions = {
  ce: { ignoreIndex: 255, weight: null, alignCorners: false },
  contrast,
  coef: [1, 0.1],
};

function upLogits(logits4: Tensor4D, H: number, W: number) {
  return tf.image.resizeBilinear(logits4, [H, W], false, true) as Tensor4D;
}

Deno.test("G12: total = CE + 0.1 * contrast; with a 5000-step warm-up the contrast part is 0 before k = 5000", async () => {
  const b = makeBatch({ seed: 21 });
  const logitsUp = upLogits(b.logits4, 16, 16);
  const inputs = { logitsUp, logits4: b.logits4, embed: b.embed, labels: b.labels };
  const ce = tf.tidy(() => crossEntropyLoss(logitsUp, b.labels, crossEntropyOptionsOf()).dataSync()[0]);
  const conR = await pixelContrastLoss(inputs, contrast);
  const con = (await conR.loss.data())[0];
  conR.loss.dispose();
  conR.stats?.dispose();
  assert(ce > 0 && con > 0);
  const run = async (o: LossOptions, iter: number) => {
    const r = await segmentationLoss(inputs, o, { iter });
    const t = (await r.total.data())[0];
    r.total.dispose();
    return { t, d: await readLossDiagnostics(r) };
  };
  const seedRun = await run(seed, 0);
  assert(
    Math.abs(seedRun.t - (ce + 0.1 * con)) <= 1e-6 * seedRun.t,
    `total ${seedRun.t} vs ${ce} + 0.1 * ${con}`,
  );
  assertEquals([seedRun.d.warmup, seedRun.d.contrastWeight], [false, 0.1]);
  assert(Math.abs(seedRun.d.contrastShareOfLoss! - (0.1 * con) / seedRun.t) < 1e-6, "share of the loss");
  const torch: LossOptions = { ...seed, contrast: { ...contrast, warmupIters: 5000 } };
  const early = await run(torch, 4999);
  assert(Math.abs(early.t - ce) <= 1e-6 * ce, `k = 4999: ${early.t} vs CE ${ce}`);
  assertEquals([early.d.warmup, early.d.contrastWeight, early.d.contrast, early.d.contrastDetail], [
    true,
    0,
    0,
    null,
  ]);
  const late = await run(torch, 5000);
  assert(Math.abs(late.t - seedRun.t) <= 1e-6 * late.t, "k = 5000: contrast on");
  const ceOnly = await run({ ...seed, contrast: null, coef: [1, 0] }, 0);
  assert(Math.abs(ceOnly.t - ce) <= 1e-6 * ce, "CE only");
  tf.dispose(logitsUp);
  disposeBatch(b);
});

Deno.test("gradient share: norms equal autodiff at the loss inputs; no leaks", async () => {
  const b = makeBatch({ seed: 22 });
  const lv = tf.variable(upLogits(b.logits4, 16, 16), true, "lossTestLogitsUp");
  const ev = tf.variable(b.embed.clone(), true, "lossTestEmbed");
  const before = tf.memory().numTensors;
  const tape = new Tape();
  const r = await segmentationLoss(
    { logitsUp: lv as Tensor4D, logits4: b.logits4, embed: ev as Tensor4D, labels: b.labels },
    seed,
    {
      iter: 0,
      gradientShare: true,
      tape,
    },
  );
  const { value, grads } = tf.variableGrads(() => tape.replay(r.total), [lv, ev]);
  const diag = await readLossDiagnostics(r);
  const gl = tf.tidy(() => tf.norm(grads[lv.name]).dataSync()[0]);
  const ge = tf.tidy(() => tf.norm(grads[ev.name]).dataSync()[0]);
  assert(Math.abs(diag.grad!.ceLogits - gl) <= 1e-5 * gl, `CE grad norm ${diag.grad!.ceLogits} vs ${gl}`);
  assert(
    Math.abs(diag.grad!.contrastEmbed - ge) <= 1e-5 * ge,
    `contrast grad norm ${diag.grad!.contrastEmbed} vs ${ge}`,
  );
  assert(Math.abs(diag.grad!.contrastShare - ge / (ge + gl)) < 1e-6);
  assert(
    Math.abs(diag.total! - value.dataSync()[0]) < 1e-6 * diag.total!,
    "diagnostic total = returned total",
  );
  tf.dispose([value, ...Object.values(grads)]);
  assert(tf.memory().numTensors === before, `leaked ${tf.memory().numTensors - before}`);
  tf.dispose([lv, ev]);
  disposeBatch(b);
});

Deno.test("config mapping: the seed's YAML and a TORCH-style config", async () => {
  const cfgPath = new URL(
    "../../configs/hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml",
    import.meta.url,
  );
  const cfg = await loadConfig(cfgPath.pathname).catch((e) => {
    throw new Error(`could not load the seed config: ${e.message}`);
  });
  const o = lossOptions(cfg.loss);
  assertEquals(o.coef, [1, 0.1]);
  assertEquals(o.ce, { ignoreIndex: 255, weight: null, alignCorners: false });
  const c = o.contrast!;
  assertEquals(
    [
      c.temperature,
      c.baseTemperature,
      c.ignoreIndex,
      c.maxSamples,
      c.maxViews,
      c.contrastGroupSize,
      c.warmupIters,
    ],
    [0.1, 0.07, 255, 1024, 100, 2, 0],
  );
  assertEquals([c.memory.enabled, c.memory.mining, c.memory.reproducePublicCode], [false, "none", false]);
  const torch = lossOptionsOf({
    types: [
      { type: "CrossEntropyLoss", weight: "torch_cityscapes" },
      {
        type: "PixelContrastLoss",
        warmup_iters: 5000,
        contrast_group_size: 2,
        memory: {
          enabled: true,
          pixel_size: 5000,
          segment_size: 5000,
          pixel_update_freq: 10,
          mining: "hardest",
          reproduce_public_code: true,
        },
      },
    ],
    coef: [1, 1],
  });
  assertEquals(torch.ce.weight, "torch_cityscapes");
  assertEquals([
    torch.contrast!.warmupIters,
    torch.contrast!.memory.mining,
    torch.contrast!.memory.reproducePublicCode,
  ], [5000, "hardest", true]);
  const bank = memoryBankFromOptions(
    contrastOptionsOf({ memory: { pixelSize: 7, segmentSize: 3 } }),
    19,
    4,
    new Rng(1),
  );
  assertEquals([bank.slotsPerClass, bank.contrastLabels().length], [10, 190]);
  bank.dispose();
  assertThrows(
    () => lossOptionsOf({ types: [{ type: "PixelContrastLoss" }], coef: [1] }),
    "CrossEntropyLoss",
  );
  assertThrows(
    () =>
      lossOptionsOf({
        types: [{ type: "CrossEntropyLoss" }, { type: "PixelContrastCrossEntropyLoss", max_views: 0 }],
        coef: [1, 0.1],
      }),
    "max_views",
  );
  assertEquals(TORCH_CE_WEIGHTS[18], 1.0507);
});

Deno.test("memory bank during the warm-up: no contrast term, but the queues are filled", async () => {
  const b = makeBatch({ seed: 23 });
  const logitsUp = upLogits(b.logits4, 16, 16);
  const o: LossOptions = {
    ...seed,
    contrast: contrastOptionsOf({
      ...contrast,
      warmupIters: 10,
      memory: { enabled: true, pixelSize: 4, segmentSize: 2 },
    }),
  };
  const bank = new MemoryBank({
    numClasses: 4,
    dim: 4,
    pixelSize: 4,
    segmentSize: 2,
    pixelUpdateFreq: 10,
    reproducePublicCode: false,
    publicLabelStride: 8,
    ignoreIndex: 255,
  }, new Rng(2));
  const r = await segmentationLoss({ logitsUp, logits4: b.logits4, embed: b.embed, labels: b.labels }, o, {
    iter: 3,
    memory: bank,
    rng: new Rng(3),
  });
  const ce = tf.tidy(() => crossEntropyLoss(logitsUp, b.labels, crossEntropyOptionsOf()).dataSync()[0]);
  assert(Math.abs((await r.total.data())[0] - ce) < 1e-6 * ce);
  assertEquals(
    Array.from(bank.segmentPtr),
    [1, 0, 0, 1],
    "class 0 and 3 once, 1 and 2 twice (segment queue of 2)",
  );
  r.total.dispose();
  r.values?.dispose();
  bank.dispose();
  tf.dispose(logitsUp);
  disposeBatch(b);
});
