/**
 * The contrast model: output shapes (G10 on small inputs), PaddleSeg parameter names and counts (exact
 * HRNet-W48 figures from docs/method.md §1.4), num_classes from options (a 3-class model trains a step, saves and
 * reloads), BN running-statistics driving, dropout reproducibility and tensor hygiene.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel, type ModelOptions, SegModel } from "../../lib/models/contrast.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { BACKBONE_NAMES, HRNET_CONFIGS } from "../../lib/models/hrnet.ts";
import { loadWeights, saveWeights } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";

await initBackend();

const TINY: ModelOptions = modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 });

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("shapes: training and eval outputs, odd sizes follow Paddle 'same' (ceil) arithmetic", () => {
  const model = buildModel(TINY, new Rng(1));
  const start = tf.memory().numTensors;
  for (const [h, w] of [[64, 96], [50, 70]]) {
    const x = tf.randomNormal([2, h, w, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const s4 = (v: number) => Math.ceil(Math.ceil(v / 2) / 2);
    for (const training of [true, false]) {
      const out = model.forward(x, { training, rng: new Rng(2) });
      assertEquals(out.logitsUp.shape, [2, h, w, 3]);
      assertEquals(out.logits4.shape, [2, s4(h), s4(w), 3]);
      assertEquals(out.embed!.shape, [2, s4(h), s4(w), 8]);
      const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(out.embed!), -1)).dataSync());
      assertClose(norms, new Float32Array(norms.length).fill(1), 0, 1e-5, "embeddings have unit norm");
      tf.dispose([out.logitsUp, out.logits4, out.embed!]);
    }
    const feats = model.backbone.branches(x, { training: false });
    assertEquals(feats.map((f) => f.shape.slice(1)), [
      [s4(h), s4(w), 4],
      [Math.ceil(s4(h) / 2), Math.ceil(s4(w) / 2), 8],
      [Math.ceil(s4(h) / 4), Math.ceil(s4(w) / 4), 16],
      [Math.ceil(s4(h) / 8), Math.ceil(s4(w) / 8), 32],
    ]);
    tf.dispose([x, ...feats]);
  }
  // training forwards queued one BN update per BN layer and forward; they are freed by discard
  const bnLayers = model.store.params.filter((p) => p.spec.role === "bn_mean").length;
  assertEquals(model.bnUpdates.size, 2 * bnLayers);
  model.discardBnUpdates();
  assertEquals(tf.memory().numTensors, start, "no tensors leak from forward passes");
  model.dispose();
});

Deno.test("HRNet-W48 contrast model: PaddleSeg counts (65,325,120 / 4,681,440 / 1,039,680 / 70,092,096)", () => {
  const shapeOnly = new SegModel(modelOptionsOf({ backbone: "HRNet_W48", numClasses: 19, projDim: 720 }), {
    materialise: false,
  });
  const c = shapeOnly.counts();
  assertEquals(c.trainable, { backbone: 65_325_120, cls_head: 4_681_440, proj_head: 1_039_680 });
  assertEquals(c.totalTrainable, 71_046_240);
  assertEquals(c.paddleFlopsTotal, 70_092_096);
  const convs = shapeOnly.store.params.filter((p) =>
    p.spec.name.startsWith("backbone.") && p.spec.role === "conv_weight"
  );
  assertEquals(convs.length, 305, "305 backbone convs");
  assertEquals(c.tensors.backbone, 1525, "REPRO log: 1525/1525 variables loaded into HRNet");
  const d256 = new SegModel(modelOptionsOf({ backbone: "HRNet_W48", numClasses: 19, projDim: 256 }), {
    materialise: false,
  })
    .counts();
  assertEquals(d256.trainable.proj_head, 705_136);
  assertEquals(d256.totalTrainable, 70_711_696);
});

Deno.test("HRNet-W48 with real variables: counts from the tensors the model holds, init, small-scale G10 shapes", () => {
  const model = buildModel(
    modelOptionsOf({ backbone: "HRNet_W48", numClasses: 19, projDim: 720 }),
    new Rng(0),
  );
  let trainable = 0, all = 0;
  for (const [name, v] of model.namedWeights()) {
    all += v.size;
    if (v.trainable) trainable += v.size;
    if (name.startsWith("proj_head.") && !v.trainable) all -= v.size; // paddle.flops: eval mode, no proj head
    if (name.startsWith("proj_head.") && v.trainable) all -= v.size;
  }
  assertEquals(trainable, 71_046_240);
  assertEquals(all, 70_092_096);
  const sum = [...model.trainableWeights().values()].reduce((a, v) => a + v.size, 0);
  assertEquals(sum, 71_046_240);
  // PaddleSeg init: backbone convs N(0, 0.001); head convs N(0, sqrt(2 / (k*k*Cin))); BN gamma 1, beta 0
  const w = model.namedWeights();
  const std = (name: string) => tf.tidy(() => tf.sqrt(tf.mean(tf.square(w.get(name)!))).dataSync()[0]);
  assertClose([std("backbone.st4.stage_st4_3.branches_func.bb_st4_3_branch_layer_4_4.conv2._conv.weight")], [
    0.001,
  ], 0.01);
  assertClose([std("cls_head.0._conv.weight")], [Math.sqrt(2 / (9 * 720))], 0.01);
  assertClose([std("proj_head.proj.1.weight")], [Math.sqrt(2 / 720)], 0.02);
  assertEquals(Array.from(w.get("cls_head.0._conv.bias")!.dataSync().slice(0, 3)), [0, 0, 0]);
  assertEquals(w.get("backbone.conv_layer1_1._batch_norm._variance")!.dataSync()[0], 1);
  // G10 shapes at a small scale (the 2x512x1024 input of G10 takes ~20 s per forward on two CPU cores)
  const x = tf.randomNormal([1, 32, 64, 3], 0, 1, "float32", 8) as tf.Tensor4D;
  const branches = model.backbone.branches(x, { training: false });
  const bshapes = branches.map((b) => b.shape.join("x"));
  assertEquals(bshapes, ["1x8x16x48", "1x4x8x96", "1x2x4x192", "1x1x2x384"]);
  const out = model.forward(x, { training: false });
  assertEquals([out.logitsUp.shape, out.logits4.shape, out.embed!.shape], [
    [1, 32, 64, 19],
    [1, 8, 16, 19],
    [1, 8, 16, 720],
  ]);
  const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(out.embed!), -1)).dataSync());
  assertClose(
    norms,
    new Float32Array(norms.length).fill(1),
    0,
    1e-6,
    "embeddings have unit norm (G10: +-1e-6)",
  );
  tf.dispose([x, ...branches, out.logitsUp, out.logits4, out.embed!]);
  model.dispose();
});

Deno.test("every PaddleSeg width builds; feature channels and name samples (PaddleSeg and PyTorch keys)", () => {
  for (const name of BACKBONE_NAMES) {
    const m = new SegModel(modelOptionsOf({ backbone: name, numClasses: 19 }), { materialise: false });
    const cfg = HRNET_CONFIGS[name];
    assertEquals(m.backbone.featChannels, cfg.stage4.numChannels.reduce((a, b) => a + b, 0), name);
  }
  const m = new SegModel(modelOptionsOf({ backbone: "HRNet_W48", numClasses: 19 }), { materialise: false });
  const byName = new Map(m.store.params.map((p) => [p.spec.name, p.spec]));
  const samples: [string, string, number[]][] = [
    ["backbone.conv_layer1_1._conv.weight", "conv1.weight", [3, 3, 3, 64]],
    ["backbone.conv_layer1_2._batch_norm._mean", "bn2.running_mean", [64]],
    ["backbone.la1.bb_layer2_1.conv_down._batch_norm._variance", "layer1.0.downsample.1.running_var", [256]],
    ["backbone.tr1.transition_tr1_layer_2._conv.weight", "transition1.1.0.0.weight", [3, 3, 256, 96]],
    ["backbone.tr3.transition_tr3_layer_4._batch_norm.weight", "transition3.3.0.1.weight", [384]],
    [
      "backbone.st3.stage_st3_4.branches_func.bb_st3_4_branch_layer_3_4.conv2._conv.weight",
      "stage3.3.branches.2.3.conv2.weight",
      [3, 3, 192, 192],
    ],
    [
      "backbone.st2.stage_st2_1.fuse_func.residual_st2_1_layer_1_2._conv.weight",
      "stage2.0.fuse_layers.0.1.0.weight",
      [
        1,
        1,
        96,
        48,
      ],
    ],
    [
      "backbone.st4.stage_st4_3.fuse_func.residual_st4_3_layer_4_1_2._conv.weight",
      "stage4.2.fuse_layers.3.0.1.0.weight",
      [3, 3, 48, 48],
    ],
    [
      "backbone.st4.stage_st4_3.fuse_func.residual_st4_3_layer_4_1_3._batch_norm.bias",
      "stage4.2.fuse_layers.3.0.2.1.bias",
      [384],
    ],
    ["cls_head.0._conv.bias", "cls_head.0.bias", [720]],
    ["cls_head.0._batch_norm._mean", "cls_head.1.0.running_mean", [720]],
    ["cls_head.2.weight", "cls_head.3.weight", [1, 1, 720, 19]],
    ["proj_head.proj.0._batch_norm.weight", "proj_head.proj.1.0.weight", [720]],
    ["proj_head.proj.1.bias", "proj_head.proj.2.bias", [720]],
  ];
  for (const [paddle, torch, shape] of samples) {
    const s = byName.get(paddle);
    assert(s, `missing parameter ${paddle}`);
    assertEquals([s.torchName, s.shape], [torch, shape], paddle);
  }
  assertEquals(
    byName.has("backbone.tr2.transition_tr2_layer_1._conv.weight"),
    false,
    "identity transitions have no conv",
  );
});

Deno.test("options: unknown backbone, bad num_classes and missing dropout Rng give clear errors", () => {
  const msg = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return "";
  };
  // the options' bounds are the config schema's (lib/run/options.ts checks them there), named by key
  assert(/model\.backbone\.type: got "HRNet_W99".*HRNet_W48/.test(
    msg(() =>
      new SegModel(modelOptionsOf({ backbone: "HRNet_W99" as "HRNet_W48", numClasses: 3 }), {
        materialise: false,
      })
    ),
  ));
  assert(/model\.num_classes: must be >= 1, got 0/.test(
    msg(() => new SegModel(modelOptionsOf({ backbone: "HRNet_W48", numClasses: 0 }), { materialise: false })),
  ));
  const m = buildModel(modelOptionsOf({ ...TINY, type: "HRNetCE" }), new Rng(0));
  assertEquals(m.hasProjection, false);
  assertEquals(m.store.params.some((p) => p.spec.name.startsWith("proj_head.")), false);
  const x = tf.zeros([1, 32, 32, 3]) as tf.Tensor4D;
  assert(/needs an Rng for dropout/.test(msg(() => m.forward(x, { training: true }))));
  assert(
    /must be \[N,H,W,3\]/.test(
      msg(() => m.forward(tf.zeros([1, 32, 32, 4]) as tf.Tensor4D, { training: false })),
    ),
  );
  const out = m.forward(x, { training: false });
  assertEquals(out.embed, undefined, "the CE-only model has no embeddings");
  tf.dispose([x, out.logitsUp, out.logits4]);
  m.dispose();
});

Deno.test("same seed, same model and same dropout; TORCH mode (symmetric padding, align corners) differs", () => {
  const x = tf.randomNormal([1, 32, 32, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const run = (o: Partial<ModelOptions>, dropSeed: number) => {
    const m = buildModel(modelOptionsOf({ ...TINY, ...o }), new Rng(42));
    const out = m.forward(x, { training: true, rng: new Rng(dropSeed) });
    m.discardBnUpdates();
    const v = out.logitsUp.clone();
    tf.dispose([out.logitsUp, out.logits4, out.embed!]);
    m.dispose();
    return v;
  };
  const a = run({}, 1),
    b = run({}, 1),
    c = run({}, 2),
    t = run({ paddingMode: "symmetric", alignCorners: true }, 1);
  assertEquals(maxAbs(a, b), 0, "bitwise reproducible from the seeds");
  assert(maxAbs(a, c) > 0, "another dropout seed gives another mask");
  assert(maxAbs(a, t) > 1e-4, "TORCH mode is a different network");
  tf.dispose([x, a, b, c, t]);
});

Deno.test("a 3-class model trains one step with a plain loss, updates BN statistics, saves and reloads", async () => {
  const rng = new Rng(3);
  const model = buildModel(TINY, rng.fork("init"));
  assertEquals(model.clsOut.weight.value.shape, [1, 1, 60, 3], "num_classes from the options");
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  const labels = tf.tensor3d(
    Int32Array.from({ length: 2 * 32 * 32 }, (_v, i) => (i >> 4) % 3),
    [2, 32, 32],
    "int32",
  );
  const onehot = tf.oneHot(labels, 3);
  const start = tf.memory().numTensors;
  const lossOf = (training: boolean, seed: number) => {
    const out = model.forward(x, { training, rng: new Rng(seed) });
    // plain pixel cross-entropy on the upsampled logits + a term that reaches the projection head
    return tf.add(
      tf.losses.softmaxCrossEntropy(onehot, out.logitsUp),
      tf.mul(0.1, tf.mean(tf.sum(tf.mul(out.embed!, out.embed!.slice([0, 0, 0, 0], [1, -1, -1, -1])), -1))),
    ) as tf.Scalar;
  };
  const rm = model.namedWeights().get("cls_head.0._batch_norm._mean")!;
  const rm0 = rm.dataSync().slice();
  const before = tf.tidy(() => lossOf(true, 11).dataSync()[0]);
  model.discardBnUpdates();
  const { value, grads } = model.variableGrads(() => lossOf(true, 11));
  assertEquals(
    Object.keys(grads).length,
    model.trainableVariables().length,
    "a gradient for every parameter",
  );
  assert(
    Object.keys(grads).every((k) => model.trainableWeights().has(k)),
    "gradients keyed by parameter name",
  );
  assert(grads["proj_head.proj.1.weight"] !== undefined, "the projection head gets gradients");
  const nBn = model.store.params.filter((p) => p.spec.role === "bn_mean").length;
  assertEquals(model.commitBnUpdates(), nBn, "one running-stat update per BN layer");
  assert(rm.dataSync().some((v, i) => v !== rm0[i]), "running mean moved");
  // finite-difference check of a few gradients through the whole network (same dropout mask)
  const params = model.trainableWeights();
  for (
    const [name, h] of [["cls_head.2.weight", 1e-3], ["backbone.conv_layer1_1._conv.weight", 2e-5]] as const
  ) {
    const v = params.get(name)!, g = grads[name].dataSync(), vals = v.dataSync().slice();
    let i = 0;
    for (let k = 1; k < g.length; k++) if (Math.abs(g[k]) > Math.abs(g[i])) i = k;
    const at = (d: number) => {
      const nv = vals.slice();
      nv[i] += d;
      tf.tidy(() => v.assign(tf.tensor(nv, v.shape)));
      const l = tf.tidy(() => lossOf(true, 11).dataSync()[0]);
      model.discardBnUpdates();
      return l;
    };
    const numeric = (at(h) - at(-h)) / (2 * h);
    tf.tidy(() => v.assign(tf.tensor(vals, v.shape)));
    assertClose([g[i]], [numeric], 0.05, 1e-3, `dL/d${name}[${i}] vs finite differences`);
  }
  // one plain SGD step along -grad; backbone convs start at N(0, 0.001) under BN, so their gradients are
  // large relative to the weights and the step must be small: take the first of a few rates that helps.
  const saved = new Map([...params].map(([k, v]) => [k, v.clone()]));
  let after = Infinity, usedLr = 0;
  for (const lr of [1e-5, 1e-6, 1e-7]) {
    tf.tidy(() => {
      for (const [k, g] of Object.entries(grads)) params.get(k)!.assign(tf.sub(saved.get(k)!, tf.mul(lr, g)));
    });
    after = tf.tidy(() => lossOf(true, 11).dataSync()[0]);
    model.discardBnUpdates();
    usedLr = lr;
    if (after < before) break;
  }
  tf.dispose([value, ...Object.values(grads), ...saved.values()]);
  assert(after < before, `an SGD step along -grad lowers the loss (${before} -> ${after}, lr ${usedLr})`);
  assertEquals(tf.memory().numTensors, start, "no tensors leak from a training step");

  const dir = await Deno.makeTempDir();
  const path = `${dir}/tiny.safetensors`;
  await saveWeights(model, path, { iter: 1, note: "3 classes" });
  const reloaded = new SegModel(TINY, { rng: new Rng(99) });
  const { meta, modelOptions, report } = await loadWeights(reloaded, path);
  assertEquals(meta, { iter: 1, note: "3 classes" });
  assertEquals((modelOptions as { numClasses: number }).numClasses, 3);
  assertEquals(report.matched.length, model.store.params.length);
  const p1 = model.predict(x), p2 = reloaded.predict(x);
  assertEquals(maxAbs(p1, p2), 0, "reloaded model predicts identically");
  tf.dispose([p1, p2, x, labels, onehot]);
  model.dispose();
  reloaded.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("gradient checkpointing (recompute): same loss, gradients and BN updates, fewer live bytes, no leaks", () => {
  const model = buildModel(TINY, new Rng(3));
  const x = tf.randomNormal([2, 32, 32, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  const start = tf.memory().numTensors;
  const step = (recompute: boolean) => {
    let liveBytes = 0;
    const r = model.variableGrads(() => {
      const o = model.forward(x, { training: true, rng: new Rng(1), recompute });
      liveBytes = tf.memory().numBytes; // activations held for the backward pass, after the forward
      return tf.add(tf.mean(tf.square(o.logitsUp)), tf.mean(o.embed!)) as tf.Scalar;
    });
    const queued = model.bnUpdates.size;
    model.discardBnUpdates();
    return { ...r, queued, liveBytes };
  };
  const plain = step(false), ck = step(true);
  assertEquals(ck.value.dataSync()[0], plain.value.dataSync()[0], "same loss");
  assertEquals(ck.queued, plain.queued, "BN statistics queued once per layer, not again by the recompute");
  assertEquals(Object.keys(ck.grads).sort(), Object.keys(plain.grads).sort());
  for (const k of Object.keys(plain.grads)) {
    assertClose(ck.grads[k].dataSync(), plain.grads[k].dataSync(), 1e-5, 1e-7, `gradient of ${k}`);
  }
  assert(
    ck.liveBytes < plain.liveBytes,
    `fewer bytes held after the forward (${ck.liveBytes} < ${plain.liveBytes})`,
  );
  tf.dispose([plain.value, ck.value, ...Object.values(plain.grads), ...Object.values(ck.grads)]);
  assertEquals(tf.memory().numTensors, start, "no leaks");
  tf.dispose(x);
  model.dispose();
});
