/**
 * lib/backend/native_bf16.ts: bf16 compute for convolutions and matmuls on the native `tensorflow` backend.
 *
 * "Really bf16" is checked bit by bit: inside a bf16 scope every conv/matmul output (and every conv gradient)
 * is the float32 cast of a bfloat16, so its low 16 bits are zero, and it equals the float32 op on the
 * bf16-rounded inputs up to that output rounding; it differs from the float32 op by a bf16-sized amount. The
 * master weights stay float32 through a train step. The precision choice (`auto`, fallbacks) is tested without
 * the backend. The native tests skip, with a message, where the binding is not built.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend, probeBackend } from "../../lib/backend/mod.ts";
import {
  bf16OpCounts,
  computePrecision,
  cpuBf16Flags,
  DEFAULT_BF16_POLICY,
  opCost,
  resolvePrecision,
  setBf16Policy,
  withComputePrecision,
} from "../../lib/backend/native_bf16.ts";
import { buildModel } from "../../lib/models/mod.ts";
import { lossOptionsOf, modelOptionsOf } from "../../lib/run/options.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { trainStep } from "../../lib/train/step.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { relError, roundBf16 } from "./_compare.ts";

const native = (await probeBackend("tensorflow")).available;
if (native) await initBackend("tensorflow", { quiet: true });
else console.warn("SKIPPING native bf16 tests: the tensorflow backend is not available here");

const EVERY_OP = { minFlops: 0, minIntensity: 0 };

function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => scale * r.normal()), shape);
}

/** How many values have mantissa bits below bfloat16's (i.e. are not a bf16 value). */
function nonBf16Count(v: Float32Array): number {
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let n = 0;
  for (const x of u) if ((x & 0xffff) !== 0) n++;
  return n;
}

function withPolicy<T>(p: { minFlops: number; minIntensity: number }, f: () => T): T {
  const before = setBf16Policy(p);
  try {
    return f();
  } finally {
    setBf16Policy(before);
  }
}

const nativeHandles = () =>
  (tf.backend() as unknown as { binding: { getNumOfTensors(): number } }).binding.getNumOfTensors();

Deno.test({
  name: "bf16 conv2d: bf16 outputs, equal to fp32 on bf16-rounded inputs, a bf16-sized step away from fp32",
  ignore: !native,
  fn() {
    const x = randn([2, 12, 10, 16], 1), w = randn([3, 3, 16, 24], 2, 0.1);
    const y32 = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"); // also uploads x and w
    const handles = nativeHandles(), tensors = tf.memory().numTensors;
    const before = bf16OpCounts.get("Conv2D") ?? 0;
    const yBf = withPolicy(
      EVERY_OP,
      () => withComputePrecision("bf16", () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same")),
    );
    assertEquals(yBf.dtype, "float32");
    assertEquals(bf16OpCounts.get("Conv2D"), before + 1, "one Conv2D ran in bf16");
    const got = yBf.dataSync() as Float32Array;
    assertEquals(nonBf16Count(got), 0, "every output is a bf16 value");
    const xr = tf.tensor(roundBf16(x.dataSync() as Float32Array), x.shape);
    const wr = tf.tensor(roundBf16(w.dataSync() as Float32Array), w.shape);
    const yRounded = tf.conv2d(xr as tf.Tensor4D, wr as tf.Tensor4D, 1, "same");
    const onRounded = yRounded.dataSync() as Float32Array, fp32 = y32.dataSync() as Float32Array;
    // the only difference from the fp32 conv of rounded inputs is the output rounding (2^-8 relative)
    const eRounded = relError(got, onRounded), eFp32 = relError(got, fp32);
    assert(eRounded <= 2 ** -8, `bf16 conv vs fp32 conv of the rounded inputs: ${eRounded}`);
    assert(eFp32 > 1e-4 && eFp32 < 2e-2, `bf16 vs fp32 conv: relative error ${eFp32} is not bf16-sized`);
    assert(computePrecision() === "fp32", "the scope ended");
    tf.dispose([yBf, xr, wr, yRounded]);
    assertEquals(tf.memory().numTensors, tensors, "TF.js tensors");
    assertEquals(nativeHandles(), handles, "native handles (the bf16 intermediates are deleted)");
    tf.dispose([x, w, y32]);
  },
});

Deno.test({
  name: "bf16 conv gradients: bf16 for 'same' padding, fp32 for explicit padding (Eigen), close to fp32",
  ignore: !native,
  fn() {
    const x = randn([2, 9, 12, 8], 3), w1 = randn([3, 3, 8, 16], 4, 0.2), w2 = randn([3, 3, 16, 8], 5, 0.2);
    const r = randn([2, 5, 6, 8], 6);
    const f = (xi: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
      // PaddleSeg's symmetric pad for a stride-2 conv: the explicit-padding backprop kernels of native_kernels.ts
      const h = tf.relu(tf.conv2d(xi as tf.Tensor4D, a as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]));
      return tf.sum(tf.mul(tf.conv2d(h, b as tf.Tensor4D, 1, "same"), r));
    };
    const counts = () => ["Conv2DBackpropInput", "Conv2DBackpropFilter"].map((k) => bf16OpCounts.get(k) ?? 0);
    const before = counts();
    const g32 = tf.grads(f)([x, w1, w2]);
    const gBf = withPolicy(EVERY_OP, () => withComputePrecision("bf16", () => tf.grads(f)([x, w1, w2])));
    const after = counts();
    assert(after[0] > before[0] && after[1] > before[1], `backprops in bf16: ${before} -> ${after}`);
    ["dx", "dw1", "dw2"].forEach((name, i) => {
      assertEquals(gBf[i].dtype, "float32");
      const a = gBf[i].dataSync() as Float32Array, b = g32[i].dataSync() as Float32Array;
      // the explicitly padded conv's backprops (dx, dw1) stay fp32: Eigen runs them, not oneDNN
      if (name === "dw2") assertEquals(nonBf16Count(a), 0, `${name} is the cast of a bf16 op output`);
      else assert(nonBf16Count(a) > 0, `${name}: an explicit-padding backprop ran in bf16`);
      const e = relError(a, b);
      assert(e > 1e-5 && e < 3e-2, `${name}: relative error to fp32 ${e}`);
    });
    tf.dispose([x, w1, w2, r, ...g32, ...gBf]);
  },
});

Deno.test({
  name: "bf16 matMul (plain and transposed) and its gradient",
  ignore: !native,
  fn() {
    const a = randn([40, 64], 7), b = randn([50, 64], 8);
    const f = (p: tf.Tensor, q: tf.Tensor) =>
      tf.sum(tf.square(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, false, true)));
    const y32 = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true).dataSync() as Float32Array;
    const [yBf, ga, gb] = withPolicy(
      EVERY_OP,
      () =>
        withComputePrecision(
          "bf16",
          () => [tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true), ...tf.grads(f)([a, b])],
        ),
    );
    const v = yBf.dataSync() as Float32Array;
    assertEquals(nonBf16Count(v), 0, "matmul output is bf16");
    const e = relError(v, y32);
    assert(e > 1e-5 && e < 1e-2, `matmul relative error ${e}`);
    const [ga32, gb32] = tf.grads(f)([a, b]);
    assert(relError(ga.dataSync() as Float32Array, ga32.dataSync() as Float32Array) < 3e-2, "dA");
    assert(relError(gb.dataSync() as Float32Array, gb32.dataSync() as Float32Array) < 3e-2, "dB");
    tf.dispose([a, b, yBf, ga, gb, ga32, gb32]);
  },
});

Deno.test({
  name: "bf16 policy: small or memory-bound ops stay fp32, big compute-bound ones go bf16",
  ignore: !native,
  fn() {
    // 18-channel 3x3 conv on 32x32: 6 MFLOP, below minFlops -> exactly the fp32 result
    const x = randn([1, 32, 32, 18], 9), w = randn([3, 3, 18, 18], 10, 0.1);
    const conv = () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same");
    const a = withComputePrecision("bf16", conv), b = conv();
    assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()), "small conv stays fp32");
    // 512x512x512 matmul: 268 MFLOP at 341 FLOPs per element -> bf16
    const p = randn([512, 512], 11), q = randn([512, 512], 12);
    const m = withComputePrecision("bf16", () => tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D));
    assertEquals(nonBf16Count(m.dataSync() as Float32Array), 0, "big matmul runs in bf16");
    // a resize-like matmul with K = 16 is memory-bound (31 FLOPs per element): fp32 even with minFlops 0
    const r = randn([1024, 16], 13), s = randn([16, 1024], 14);
    const lowK = withPolicy(
      { minFlops: 0, minIntensity: DEFAULT_BF16_POLICY.minIntensity },
      () => withComputePrecision("bf16", () => tf.matMul(r as tf.Tensor2D, s as tf.Tensor2D)),
    );
    assert(nonBf16Count(lowK.dataSync() as Float32Array) > 0, "memory-bound matmul stays fp32");
    tf.dispose([x, w, a, b, p, q, m, r, s, lowK]);
  },
});

Deno.test("opCost: FLOPs and elements of convs (all three) and batched matmuls", () => {
  const t = (shape: number[]) => ({ shape, dtype: "float32" }) as unknown as tf.TensorInfo;
  // 3x3 conv 64->128, stride 2 'same' on 1x32x32: output 1x16x16x128
  const fwd = opCost("Conv2D", { x: t([1, 32, 32, 64]), filter: t([3, 3, 64, 128]) }, {
    strides: 2,
    pad: "same",
    dilations: 1,
  });
  assertEquals(fwd, {
    flops: 2 * 16 * 16 * 128 * 9 * 64,
    elements: 32 * 32 * 64 + 16 * 16 * 128 + 9 * 64 * 128,
  });
  const bi = opCost("Conv2DBackpropInput", { dy: t([1, 16, 16, 128]), filter: t([3, 3, 64, 128]) }, {
    inputShape: [1, 32, 32, 64],
  });
  const bf = opCost("Conv2DBackpropFilter", { x: t([1, 32, 32, 64]), dy: t([1, 16, 16, 128]) }, {
    filterShape: [3, 3, 64, 128],
  });
  assertEquals(bi, fwd);
  assertEquals(bf, fwd);
  const mm = opCost("BatchMatMul", { a: t([4, 30, 20]), b: t([1, 50, 20]) }, {
    transposeA: false,
    transposeB: true,
  });
  assertEquals(mm, { flops: 2 * 4 * 30 * 50 * 20, elements: 4 * 600 + 1000 + 4 * 1500 });
});

Deno.test({
  name: "withComputePrecision: restores on return and on throw, refuses async work",
  ignore: !native,
  async fn() {
    assertEquals(computePrecision(), "fp32");
    withComputePrecision("bf16", () => {
      assertEquals(computePrecision(), "bf16");
      withComputePrecision("fp32", () => assertEquals(computePrecision(), "fp32"));
      assertEquals(computePrecision(), "bf16");
    });
    assertThrows(() =>
      withComputePrecision("bf16", () => {
        throw new Error("boom");
      }), "boom");
    assertEquals(computePrecision(), "fp32");
    const p = Promise.resolve(1);
    assertThrows(() => withComputePrecision("bf16", () => p), "synchronous");
    await assertRejects(async () => {
      await p;
      throw new Error("done");
    });
    assertEquals(computePrecision(), "fp32");
  },
});

Deno.test({
  name: "trainStep with precision bf16: convs and matmuls in bf16, master weights and their update in fp32",
  ignore: !native,
  async fn() {
    const contrast = lossOptionsOf({
      types: [
        { type: "CrossEntropyLoss" },
        { type: "PixelContrastCrossEntropyLoss", max_samples: 64, max_views: 8, contrast_group_size: 2 },
      ],
      coef: [1, 0.1],
    });
    const ceOnly = lossOptionsOf({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
    const n = 2, h = 32, w = 64;
    const rng = new Rng(4);
    const image = Float32Array.from({ length: n * h * w * 3 }, () => rng.normal());
    const label = Int32Array.from(
      { length: n * h * w },
      (_, i) => ((i % w) < w / 2 ? 0 : 1) + (i % (h * w) >= (h * w * 3) / 4 ? 1 : 0),
    );
    /** One step from the same init; returns the loss and the update (weights after - before) of every weight. */
    const run = async (precision: "fp32" | "bf16", ce: boolean) => {
      const model = buildModel(
        modelOptionsOf(
          ce
            ? { type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 3, dropProb: 0 }
            : { type: "HRNetW48Contrast", backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 },
        ),
        new Rng(5),
      );
      const before = model.trainableVariables().map((v) => v.dataSync() as Float32Array);
      const optimizer = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
      const policy = setBf16Policy(EVERY_OP);
      let r;
      try {
        r = await trainStep([{ image, label, shape: [n, h, w] }], {
          model,
          optimizer,
          loss: ce ? ceOnly : contrast,
          rng: new Rng(6),
          iter: 0,
          lr: 0.05,
          precision,
        });
      } finally {
        setBf16Policy(policy);
      }
      const weights = model.trainableVariables();
      for (const v of weights) assertEquals(v.dtype, "float32", "master weights are float32");
      const after = Float32Array.from(weights.flatMap((v) => Array.from(v.dataSync())));
      const update = Float32Array.from(
        weights.flatMap((v, i) => Array.from(v.dataSync(), (x, j) => x - before[i][j])),
      );
      model.dispose();
      optimizer.dispose();
      return { loss: r.loss, after, update };
    };
    const ops = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "BatchMatMulV2"];
    const counts = () => ops.map((k) => bf16OpCounts.get(k) ?? 0);
    const c0 = counts();
    const bf = await run("bf16", false);
    const c1 = counts();
    ops.forEach((k, i) => assert(c1[i] > c0[i], `${k} ran in bf16 in the step (${c0[i]} -> ${c1[i]})`));
    assert(Number.isFinite(bf.loss), `bf16 loss ${bf.loss}`);
    // updated fp32 weights: nearly all are not bf16 values (a bf16 master copy would make them all so)
    const nonBf = nonBf16Count(bf.after);
    assert(nonBf > 0.9 * bf.after.length, `${nonBf} of ${bf.after.length} weights are not bf16 values`);
    await run("fp32", false);
    assertEquals(counts(), c1, "an fp32 step runs nothing in bf16");

    // CE only (the contrast sampler's anchors follow the predictions, which bf16 may flip): the same step's loss
    // within 1e-2 and an update in the same direction. Not elementwise: at HRNet's N(0, 0.001) init the first
    // update differs by up to ~0.2 of its largest element (PyTorch 2.15's bf16 autocast gave 0.47 on
    // timm's hrnet_w18_small in the same comparison) while the whole update vector keeps its direction.
    const a = await run("fp32", true), b = await run("bf16", true);
    const lossErr = Math.abs(b.loss - a.loss) / Math.abs(a.loss);
    assert(lossErr > 0 && lossErr < 1e-2, `bf16 vs fp32 loss: ${b.loss} vs ${a.loss}`);
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.update.length; i++) {
      dot += a.update[i] * b.update[i];
      na += a.update[i] ** 2;
      nb += b.update[i] ** 2;
    }
    const cosine = dot / Math.sqrt(na * nb), ratio = Math.sqrt(nb / na);
    assert(cosine > 0.9 && cosine < 1, `cosine of the bf16 and fp32 updates: ${cosine}`);
    assert(ratio > 0.8 && ratio < 1.25, `norm ratio of the updates: ${ratio}`);
  },
});

Deno.test("resolvePrecision: fp32 stays; bf16/auto only on tensorflow with a bf16 CPU, else fp32 and one line why", () => {
  assertEquals(resolvePrecision("fp32", "tensorflow", ["avx512_bf16"]).precision, "fp32");
  const ok = resolvePrecision("auto", "tensorflow", ["avx512_bf16"]);
  assertEquals(ok.precision, "bf16");
  assert(
    ok.line.startsWith("precision: bf16 for convolutions and matmuls") && ok.line.includes("avx512_bf16"),
    ok.line,
  );
  // in the graph step grappler, not our size policy, picks the bf16 ops: the line says so
  const graphed = resolvePrecision("bf16", "tensorflow", ["avx512_bf16"], true);
  assertEquals(graphed.precision, "bf16");
  assert(
    /^precision: bf16 \(CPU avx512_bf16\); in the graph step grappler's/.test(graphed.line),
    graphed.line,
  );
  assertEquals(resolvePrecision("bf16", "tensorflow", ["amx_bf16"]).precision, "bf16");
  for (const req of ["bf16", "auto"] as const) {
    const noCpu = resolvePrecision(req, "tensorflow", []);
    assertEquals(noCpu.precision, "fp32");
    assert(/no native bf16/.test(noCpu.line) && !noCpu.line.includes("\n"), noCpu.line);
    const wasm = resolvePrecision(req, "wasm", ["avx512_bf16"]);
    assertEquals(wasm.precision, "fp32");
    assert(wasm.line.includes("wasm") && wasm.line.includes(req), wasm.line);
  }
});

Deno.test("cpuBf16Flags reads the flags line of a cpuinfo file", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const f = join(dir, "cpuinfo");
    writeFileSync(f, "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 avx512_vnni\n");
    assertEquals(cpuBf16Flags(f), ["avx512_bf16"]);
    writeFileSync(f, "processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 avx512_bf16\n");
    assertEquals(cpuBf16Flags(f), ["avx512_bf16", "amx_bf16"]);
    writeFileSync(f, "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_bf16x\n");
    assertEquals(cpuBf16Flags(f), []);
    assertEquals(cpuBf16Flags(join(dir, "missing")), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
