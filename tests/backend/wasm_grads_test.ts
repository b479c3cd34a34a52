/**
 * The wasm backend trains: every op a segmentation train step uses (conv in all HRNet stride/padding forms,
 * batch norm, resize, cross-entropy, gather, the pixel-contrast loss's pieces) gives the same values and
 * gradients on `wasm` as on the `cpu` reference, to 1e-5 relative.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend, wasmKernelPatches } from "../../lib/backend/mod.ts";
import { conv2dBackpropFilterOps, conv2dBackpropInputOps } from "../../lib/backend/wasm_grads.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { type Arr, assertSameOutputs, ints, pattern, runOn } from "./_compare.ts";

const TOL = 1e-5;
const prev = tf.getBackend();
await initBackend("cpu");
await initBackend("wasm");
if (prev) await tf.setBackend(prev);

/** value and gradients of a scalar loss with respect to the first `nDiff` inputs */
function vg(nDiff: number, loss: (...xs: tf.Tensor[]) => tf.Scalar): (...xs: tf.Tensor[]) => tf.Tensor[] {
  return (...xs) => {
    const rest = xs.slice(nDiff);
    const { value, grads } = tf.valueAndGrads((...d: tf.Tensor[]) => loss(...d, ...rest))(xs.slice(0, nDiff));
    return [value, ...grads];
  };
}

/**
 * Outputs of `f` on wasm vs cpu. For `vg` functions output 0 is the scalar loss, a sum of many signed terms
 * that partly cancel, so it gets `lossTol`; every gradient (and any plain output) gets TOL.
 */
async function same(what: string, inputs: Arr[], f: (...xs: tf.Tensor[]) => tf.Tensor[], lossTol = 1e-4) {
  const ref = await runOn("cpu", inputs, f);
  const got = await runOn("wasm", inputs, f);
  const isLoss = ref[0].shape.length === 0 && ref.length > 1;
  if (isLoss) assertSameOutputs(got.slice(0, 1), ref.slice(0, 1), lossTol, `${what} (loss)`);
  return assertSameOutputs(isLoss ? got.slice(1) : got, isLoss ? ref.slice(1) : ref, TOL, what);
}

/** weighted sum: a loss whose gradient is a fixed, non-uniform pattern */
function wsum(y: tf.Tensor, seed = 9): tf.Scalar {
  const w = tf.tensor(pattern(y.shape, seed).values as Float32Array, y.shape);
  return tf.sum(tf.mul(y, w));
}

type Pad = "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]];
const TORCH1: Pad = [[0, 0], [1, 1], [1, 1], [0, 0]];
const convCases: { x: number[]; w: number[]; s: number | [number, number]; pad: Pad; bias?: boolean }[] = [
  { x: [2, 9, 11, 3], w: [3, 3, 3, 5], s: 1, pad: "same" },
  { x: [2, 9, 11, 3], w: [3, 3, 3, 5], s: 1, pad: "same", bias: true },
  { x: [2, 10, 12, 3], w: [3, 3, 3, 5], s: 2, pad: "same" }, // TF 'same' s2: pad 0 top, 1 bottom
  { x: [1, 9, 11, 4], w: [3, 3, 4, 6], s: 2, pad: "same", bias: true },
  { x: [1, 8, 8, 4], w: [1, 1, 4, 6], s: 1, pad: "same" },
  { x: [1, 8, 8, 4], w: [1, 1, 4, 6], s: 1, pad: "valid", bias: true },
  { x: [1, 8, 9, 4], w: [1, 1, 4, 6], s: 2, pad: "same" }, // stride > kernel: wasm's own 'same' is wrong here
  { x: [1, 10, 10, 4], w: [3, 3, 4, 6], s: 1, pad: TORCH1 },
  { x: [1, 10, 10, 4], w: [3, 3, 4, 6], s: 2, pad: TORCH1 }, // torch-style stride-2 conv
  { x: [1, 11, 9, 4], w: [3, 3, 4, 6], s: 2, pad: TORCH1 },
  { x: [1, 9, 9, 4], w: [3, 3, 4, 6], s: 2, pad: "valid" },
  { x: [1, 10, 10, 4], w: [3, 3, 4, 6], s: 1, pad: [[0, 0], [2, 0], [0, 3], [0, 0]] },
  { x: [1, 10, 10, 4], w: [3, 3, 4, 6], s: 2, pad: [[0, 0], [3, 0], [0, 3], [0, 0]] },
  { x: [1, 10, 10, 4], w: [5, 5, 4, 2], s: 3, pad: "same" },
  { x: [1, 12, 12, 4], w: [3, 3, 4, 6], s: 4, pad: "same" },
  { x: [1, 7, 10, 4], w: [2, 3, 4, 2], s: [2, 1], pad: "same" },
  { x: [1, 10, 10, 2], w: [7, 7, 2, 3], s: 2, pad: [[0, 0], [3, 3], [3, 3], [0, 0]] },
];

for (const c of convCases) {
  const name = `wasm conv2d grads: x[${c.x}] w[${c.w}] stride ${c.s} pad ${JSON.stringify(c.pad)}${
    c.bias ? " +bias+relu" : ""
  }`;
  Deno.test(name, async () => {
    const inputs = [pattern(c.x, 1), pattern(c.w, 2, 0.5)];
    if (c.bias) inputs.push(pattern([c.w[3]], 3, 0.1));
    await same(
      name,
      inputs,
      vg(inputs.length, (x, w, b) => {
        const y = b
          ? tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: w as tf.Tensor4D,
            strides: c.s,
            pad: c.pad,
            bias: b,
            activation: "relu",
          })
          : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.pad);
        return wsum(tf.mul(y, tf.sin(y)));
      }),
    );
  });
}

Deno.test("wasm backprop kernels agree with direct formulas on a larger HRNet-like shape", async () => {
  // 32 channels, 3x3 stride 2 'same' (asymmetric pad): exercises the phase split at a realistic size
  const x = pattern([1, 16, 24, 32], 4), w = pattern([3, 3, 32, 16], 5, 0.2);
  const dy = pattern([1, 8, 12, 16], 6);
  const f = (xt: tf.Tensor, wt: tf.Tensor, dyt: tf.Tensor) => [
    conv2dBackpropFilterOps(xt as tf.Tensor4D, dyt as tf.Tensor4D, [3, 3, 32, 16], 2, "same"),
    conv2dBackpropInputOps(dyt as tf.Tensor4D, wt as tf.Tensor4D, [1, 16, 24, 32], 2, "same"),
  ];
  const ref = await runOn("cpu", [x, w, dy], (xt, wt, dyt) => {
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")
    );
    const [dx, dw] = g([xt, wt], dyt);
    return [dw, dx];
  });
  // our formulas on cpu and on wasm against cpu's own kernels
  assertSameOutputs(await runOn("cpu", [x, w, dy], f), ref, TOL, "formulas on cpu");
  assertSameOutputs(await runOn("wasm", [x, w, dy], f), ref, TOL, "formulas on wasm");
});

Deno.test("wasm batch norm via moments, relu, concat, add", async () => {
  await same(
    "bn",
    [pattern([2, 5, 6, 4], 1, 2), pattern([4], 2), pattern([4], 3)],
    vg(3, (x, gamma, beta) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta);
      const z = tf.concat([tf.relu(y), tf.add(y, x)], 3);
      return wsum(z);
    }),
  );
  await same(
    "tf.batchNorm (FusedBatchNorm)",
    [pattern([2, 5, 6, 4], 1, 2), pattern([4], 4), pattern([4], 5)],
    vg(3, (x, gamma, beta) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return wsum(tf.batchNorm(x, mean, variance, beta, gamma, 1e-5));
    }),
  );
});

Deno.test("wasm dropout with a seed matches cpu", async () => {
  await same("dropout", [pattern([2, 6, 6, 3], 1)], vg(1, (x) => wsum(tf.dropout(x, 0.3, undefined, 7))));
});

for (
  const mode of [{ align: false, half: true }, { align: true, half: false }, { align: false, half: false }]
) {
  Deno.test(`wasm resizeBilinear grads (alignCorners ${mode.align}, halfPixelCenters ${mode.half})`, async () => {
    for (const [from, to] of [[[5, 7], [11, 16]], [[12, 10], [5, 4]], [[4, 4], [16, 16]]]) {
      await same(
        `resize ${from} -> ${to}`,
        [pattern([2, from[0], from[1], 3], 2)],
        vg(
          1,
          (x) =>
            wsum(tf.image.resizeBilinear(x as tf.Tensor4D, to as [number, number], mode.align, mode.half)),
        ),
      );
    }
  });
}

Deno.test("wasm softmax cross-entropy (with ignore mask), argMax, oneHot", async () => {
  const labels = ints([2, 4, 5], 6);
  (labels.values as Int32Array)[3] = 255; // ignore index
  await same(
    "ce",
    [pattern([2, 4, 5, 5], 1, 3), labels],
    vg(1, (logits, lab) => {
      const valid = tf.cast(tf.notEqual(lab, 255), "float32");
      const safe = tf.where(tf.notEqual(lab, 255), lab, tf.zerosLike(lab));
      const logp = tf.logSoftmax(logits);
      const picked = tf.sum(tf.mul(logp, tf.oneHot(safe as tf.Tensor, 5)), -1);
      return tf.div(tf.neg(tf.sum(tf.mul(picked, valid))), tf.maximum(tf.sum(valid), 1)) as tf.Scalar;
    }),
  );
  await same(
    "losses.softmaxCrossEntropy",
    [pattern([6, 5], 2, 3), ints([6], 5)],
    vg(
      1,
      (logits, lab) => tf.losses.softmaxCrossEntropy(tf.oneHot(lab as tf.Tensor1D, 5), logits) as tf.Scalar,
    ),
  );
  await same(
    "argMax/oneHot forward",
    [pattern([2, 4, 5, 5], 3, 3)],
    (
      x,
    ) => [tf.cast(tf.argMax(x, -1), "float32"), tf.oneHot(tf.argMax(x, 3) as tf.Tensor, 5), tf.argMax(x, 1)],
  );
});

Deno.test("wasm gather / gatherND / unsortedSegmentSum grads (duplicate indices)", async () => {
  const idx: Arr = { shape: [7], values: new Int32Array([0, 3, 3, 5, 1, 0, 3]), dtype: "int32" };
  await same("gather axis 0", [pattern([6, 4], 1), idx], vg(1, (x, i) => wsum(tf.gather(x, i))));
  await same("gather axis 1", [pattern([3, 6, 2], 1), idx], vg(1, (x, i) => wsum(tf.gather(x, i, 1))));
  const nd: Arr = { shape: [5, 2], values: new Int32Array([0, 1, 2, 3, 0, 1, 1, 1, 2, 0]), dtype: "int32" };
  await same("gatherND", [pattern([3, 4, 5], 2), nd], vg(1, (x, i) => wsum(tf.gatherND(x, i))));
  const seg: Arr = { shape: [6], values: new Int32Array([2, 0, 2, 7, -1, 1]), dtype: "int32" };
  await same("unsortedSegmentSum (ids outside [0,4) dropped)", [pattern([6, 3], 3), seg], (x, s) => [
    tf.unsortedSegmentSum(x, s as tf.Tensor1D, 4),
  ]);
});

Deno.test("wasm l2 normalisation, matMul, pad, slice, reductions, exp/log, where, pooling", async () => {
  await same(
    "l2norm + matMul",
    [pattern([8, 6], 1), pattern([6, 5], 2), pattern([4, 6], 3)],
    vg(3, (a, b, c) => {
      const n = tf.div(a, tf.sqrt(tf.add(tf.sum(tf.square(a), -1, true), 1e-12)));
      return tf.add(wsum(tf.matMul(n, b)), wsum(tf.matMul(c, n, false, true))) as tf.Scalar;
    }),
  );
  await same(
    "pad/slice/mean/sum/max/exp/log/where",
    [pattern([2, 5, 6, 3], 1)],
    vg(1, (x) => {
      const p = tf.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]]);
      const s = tf.slice(p, [0, 1, 1, 0], [2, 5, 5, 2]);
      const m = tf.add(tf.mean(s, [1, 2]), tf.max(s, [1, 2]));
      const e = tf.log(tf.add(tf.exp(s), 1));
      const w = tf.where(tf.greater(s, 0), e, tf.mul(s, 0.5));
      return tf.add(tf.add(wsum(m), wsum(w)), tf.sum(tf.max(x, -1))) as tf.Scalar;
    }),
  );
  await same(
    "pooling, sigmoid, tanh, transpose",
    [pattern([1, 8, 8, 3], 2)],
    vg(1, (x) => {
      const a = tf.avgPool(x as tf.Tensor4D, 2, 2, "same"), b = tf.maxPool(x as tf.Tensor4D, 3, 2, "same");
      return tf.add(wsum(tf.sigmoid(a)), wsum(tf.transpose(tf.tanh(b), [0, 3, 1, 2]))) as tf.Scalar;
    }),
  );
});

Deno.test("wasm pixel-contrast-style loss (normalise, gather anchors, similarity, masked log-softmax)", async () => {
  const labels = ints([40], 3, 2);
  await same(
    "contrast",
    [pattern([2, 5, 4, 8], 1), {
      shape: [10],
      values: new Int32Array([0, 3, 7, 9, 12, 18, 22, 27, 31, 39]),
      dtype: "int32",
    }, labels],
    vg(1, (emb, pick, lab) => {
      const flat = tf.reshape(emb, [-1, 8]);
      const z = tf.div(flat, tf.norm(flat, "euclidean", -1, true));
      const a = tf.gather(z, pick); // anchors [10, 8]
      const y = tf.gather(lab, pick);
      const logits = tf.div(tf.matMul(a, a, false, true), 0.1);
      const stable = tf.sub(logits, tf.max(logits, 1, true)); // shift-invariant: its gradient path cancels
      const same = tf.cast(tf.equal(tf.expandDims(y, 1), tf.expandDims(y, 0)), "float32");
      const eye = tf.eye(10);
      const pos = tf.sub(same, eye), neg = tf.sub(1, same);
      const expL = tf.exp(stable);
      const negSum = tf.sum(tf.mul(expL, neg), 1, true);
      const logProb = tf.sub(stable, tf.log(tf.add(expL, negSum)));
      const perAnchor = tf.div(tf.sum(tf.mul(logProb, pos), 1), tf.maximum(tf.sum(pos, 1), 1));
      return tf.neg(tf.mean(perAnchor)) as tf.Scalar;
    }),
  );
});

Deno.test("wasm kernel registry: all training kernels present after patching", () => {
  const wasm = new Set(tf.getKernelsForBackend("wasm").map((k) => k.kernelName));
  for (
    const k of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "UnsortedSegmentSum", "ResizeBilinearGrad"]
  ) {
    assert(wasm.has(k), `wasm lacks ${k}`);
  }
  const patched = wasmKernelPatches().map((p) => p.kernel);
  assert(patched.includes("Conv2DBackpropFilter") && patched.includes("UnsortedSegmentSum"), "patch list");
  // nothing the cpu backend can do is missing, except complex/string/canvas kernels wasm has no dtype for
  const missing = tf.getKernelsForBackend("cpu").map((k) => k.kernelName).filter((k) => !wasm.has(k)).sort();
  assertEquals(missing, [
    "Complex",
    "ComplexAbs",
    "Draw",
    "FFT",
    "IFFT",
    "Imag",
    "Real",
    "StaticRegexReplace",
  ]);
});
