/**
 * Every available backend trains the same small segmentation net (conv stride 2 with PaddleSeg's explicit
 * padding, batch norm from batch moments, ReLU, conv 'same', 1x1 conv + bias, bilinear upsampling with half-pixel
 * centres, softmax cross-entropy with an ignore label) for a few SGD steps, and its losses, first-step
 * gradients and final weights agree with the `cpu` reference.
 */
import { tf } from "../../lib/backend/tf.ts";
import { BACKEND_NAMES, type BackendName, initBackend, probeBackend } from "../../lib/backend/mod.ts";
import { setBf16Policy, withComputePrecision } from "../../lib/backend/native_bf16.ts";
import { assert } from "../_helpers/assert.ts";
import { type Arr, assertSameOutputs, ints, pattern, roundBf16, runOn } from "./_compare.ts";

/**
 * Agreement with cpu (relative to each tensor's largest value): float32 sums in another order (oneDNN, XNNPACK,
 * shaders) differ in the last bits; measured here (CPU, llvmpipe) at <= 1.3e-6. TensorFlow on a GPU uses TF32
 * for convolutions by default (10-bit mantissa), hence its wider bound there.
 */
const TOLERANCE: Record<BackendName, number> = { cpu: 0, wasm: 1e-5, tensorflow: 5e-5, webgpu: 1e-4 };
/**
 * tensorflow with `precision: bf16` (lib/backend/native_bf16.ts; here every conv in bf16, as the net's convs are
 * too small for the default policy), against two references:
 * - the same bf16 arithmetic emulated on cpu (inputs and outputs of each conv and backprop rounded to bf16):
 *   only the fp32 accumulation order differs; largest error measured here 3.6e-7. Another CPU's kernels (AMX)
 *   may flip a bf16 rounding (2^-8 on one element, which batch norm's backward can amplify), hence
 *   BF16_EMULATED = 1e-2: still well below what a run without bf16 gives (the fp32 run is 9e-2 to 2.5e-1 away);
 * - fp32 on cpu: bf16's own error, which batch norm's mean subtraction amplifies in the gradients below it. The
 *   first-step gradients differ by up to 0.25 of their largest element (dw2; db1 0.24, dg1 0.13, dw1 0.092),
 *   the losses by 5e-5 and the weights after 3 steps by 1.8e-3. PyTorch 2.15's `torch.autocast("cpu",
 *   dtype=torch.bfloat16)` on this same net and data gives the same figures to two digits (dw2 0.250, db1 0.242,
 *   dg1 0.129, dw1 0.091, dg2 3.1e-3, dw3 4.2e-3). Tolerance BF16_VS_FP32; the error must also exceed the fp32
 *   bound, or the run was not bf16.
 */
const BF16_EMULATED = 1e-2;
const BF16_VS_FP32 = 0.4;

// Initialise outside the tests (the WebGPU adapter is a long-lived resource); tensorflow is tried first as it
// must load before WebGPU is touched.
const prev = tf.getBackend();
const backends: BackendName[] = [];
for (const name of BACKEND_NAMES) {
  const p = await probeBackend(name);
  if (!p.available) {
    console.log(`cross_backend_test: ${name} not available here (${p.detail}); not tested`);
    continue;
  }
  try {
    const info = await initBackend(name, { quiet: true });
    if (name === "tensorflow" && / on GPU /.test(info.detail)) TOLERANCE.tensorflow = 3e-3;
    backends.push(name);
  } catch (e) {
    console.log(`cross_backend_test: ${name} could not be initialised (${(e as Error).message}); not tested`);
  }
}
if (prev) await tf.setBackend(prev);

const N = 2, H = 16, W = 16, C = 5, STEPS = 3, LR = 0.1;
const PARAMS: [string, number[], number][] = [
  ["w1", [3, 3, 3, 8], 0.4],
  ["g1", [8], 0],
  ["b1", [8], 0],
  ["w2", [3, 3, 8, 8], 0.2],
  ["g2", [8], 0],
  ["b2", [8], 0],
  ["w3", [1, 1, 8, C], 0.3],
  ["c3", [C], 0.1],
];

function inputs(): Arr[] {
  const labels = ints([N, H, W], C, 3);
  const v = labels.values as Int32Array;
  for (let i = 0; i < v.length; i += 11) v[i] = 255; // ignored pixels
  const ps = PARAMS.map(([, shape, scale], i) => {
    if (scale > 0) return pattern(shape, 10 + i, scale);
    const n = shape.reduce((a, b) => a * b, 1); // gamma 1, beta 0 (+ a small pattern to make them matter)
    const base = PARAMS[i][0].startsWith("g") ? 1 : 0;
    return { shape, values: Float32Array.from({ length: n }, (_, j) => base + 0.05 * Math.sin(j + i)) };
  });
  return [pattern([N, H, W, 3], 1), labels, ...ps];
}

function batchNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gamma), beta) as tf.Tensor4D;
}

type Pad = Parameters<typeof tf.conv2d>[3];
type Conv = (x: tf.Tensor4D, w: tf.Tensor4D, strides: number, pad: Pad) => tf.Tensor4D;

const r16 = (t: tf.Tensor) => tf.tensor(roundBf16(t.dataSync() as Float32Array), t.shape);

/**
 * What lib/backend/native_bf16.ts does, emulated in float32 (for the cpu backend): the conv and its two
 * backprops each take bf16-rounded inputs and give a bf16-rounded output (the backprops of an explicitly padded
 * conv stay fp32).
 */
const convBf16Emulated: Conv = (x, w, strides, pad) =>
  tf.customGrad((a, b, save) => {
    const [ta, tb] = [a as tf.Tensor4D, b as tf.Tensor4D];
    (save as tf.GradSaveFunc)([ta, tb]);
    return {
      value: r16(tf.conv2d(r16(ta) as tf.Tensor4D, r16(tb) as tf.Tensor4D, strides, pad)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // explicitly padded: the backprops stay fp32 (native_bf16.ts leaves them to Eigen in fp32)
        const r = typeof pad === "string" ? r16 : (t: tf.Tensor) => t;
        const [ra, rb, rdy] = [r(saved[0]), r(saved[1]), r(dy)];
        const attrs = { strides, pad, dataFormat: "NHWC", dimRoundingMode: undefined };
        const run = (kernel: string, inputs: tf.NamedTensorMap, extra: Record<string, unknown>) =>
          tf.engine().runKernel(
            kernel,
            inputs,
            { ...attrs, ...extra } as unknown as tf.NamedAttrMap,
          ) as tf.Tensor;
        return [
          r(run("Conv2DBackpropInput", { dy: rdy, filter: rb }, { inputShape: ra.shape })),
          r(run("Conv2DBackpropFilter", { x: ra, dy: rdy }, { filterShape: rb.shape })),
        ];
      },
    };
  })(x, w) as tf.Tensor4D;

/** mean cross-entropy over non-ignored pixels of the logits upsampled to the label size */
function loss(image: tf.Tensor, labels: tf.Tensor, p: tf.Tensor[], conv: Conv = tf.conv2d): tf.Scalar {
  const [w1, g1, b1, w2, g2, b2, w3, c3] = p;
  let x = conv(image as tf.Tensor4D, w1 as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  x = tf.relu(batchNorm(x, g1, b1));
  x = tf.relu(batchNorm(conv(x, w2 as tf.Tensor4D, 1, "same"), g2, b2));
  const logits = tf.add(conv(x, w3 as tf.Tensor4D, 1, "valid"), c3) as tf.Tensor4D;
  const up = tf.image.resizeBilinear(logits, [H, W], false, true);
  const valid = tf.notEqual(labels, 255);
  const safe = tf.where(valid, labels, tf.zerosLike(labels));
  const logp = tf.logSoftmax(up);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(safe as tf.Tensor3D, C)), -1);
  const mask = tf.cast(valid, "float32");
  return tf.div(tf.neg(tf.sum(tf.mul(picked, mask))), tf.sum(mask)) as tf.Scalar;
}

/** [losses of each step, gradients of step 0 ..., parameters after the last step ...] */
function train(image: tf.Tensor, labels: tf.Tensor, ...params: tf.Tensor[]): tf.Tensor[] {
  return trainWith(tf.conv2d, image, labels, params);
}

function trainWith(conv: Conv, image: tf.Tensor, labels: tf.Tensor, params: tf.Tensor[]): tf.Tensor[] {
  let p = params;
  const losses: tf.Scalar[] = [];
  let firstGrads: tf.Tensor[] = [];
  for (let s = 0; s < STEPS; s++) {
    const { value, grads } = tf.valueAndGrads((...q: tf.Tensor[]) => loss(image, labels, q, conv))(p);
    losses.push(value);
    if (s === 0) firstGrads = grads;
    p = p.map((t, i) => tf.sub(t, tf.mul(grads[i], LR)));
  }
  return [tf.stack(losses), ...firstGrads, ...p];
}

const data = inputs();
const reference = await runOn("cpu", data, train);

Deno.test("cross-backend: the reference training run is sane (loss decreases, gradients non-zero)", () => {
  const l = reference[0].values;
  assert(l.length === STEPS && l.every(Number.isFinite), `losses ${l}`);
  assert(l[STEPS - 1] < l[0], `loss should decrease over ${STEPS} SGD steps: ${Array.from(l)}`);
  for (let i = 1; i <= PARAMS.length; i++) {
    assert(
      reference[i].values.some((v) => Math.abs(v) > 1e-6),
      `gradient of ${PARAMS[i - 1][0]} is all zero`,
    );
  }
});

for (const b of backends.filter((b) => b !== "cpu")) {
  Deno.test(`cross-backend: ${b} trains like cpu (losses, gradients, weights within ${TOLERANCE[b]})`, async () => {
    const got = await runOn(b, data, train);
    const names = ["losses", ...PARAMS.map(([n]) => `d${n}`), ...PARAMS.map(([n]) => n)];
    for (let i = 0; i < names.length; i++) {
      const e = assertSameOutputs([got[i]], [reference[i]], TOLERANCE[b], `${b} ${names[i]}`);
      if (Deno.env.get("SHOW_ERR") || e > TOLERANCE[b] / 2) {
        console.log(`  ${b} ${names[i]}: relative error ${e.toExponential(2)}`);
      }
    }
  });
}

Deno.test({
  name:
    "cross-backend: tensorflow in bf16 trains like cpu with bf16-rounded convs, and a bf16 step away from fp32",
  ignore: !backends.includes("tensorflow"),
  async fn() {
    const before = setBf16Policy({ minFlops: 0, minIntensity: 0 });
    let got;
    try {
      got = await runOn(
        "tensorflow",
        data,
        (image, labels, ...params) => withComputePrecision("bf16", () => train(image, labels, ...params)),
      );
    } finally {
      setBf16Policy(before);
    }
    const emulated = await runOn(
      "cpu",
      data,
      (image, labels, ...params) => trainWith(convBf16Emulated, image, labels, params),
    );
    const names = ["losses", ...PARAMS.map(([n]) => `d${n}`), ...PARAMS.map(([n]) => n)];
    let worst = 0;
    for (let i = 0; i < names.length; i++) {
      const e = assertSameOutputs(
        [got[i]],
        [emulated[i]],
        BF16_EMULATED,
        `tensorflow bf16 vs emulated ${names[i]}`,
      );
      const f = assertSameOutputs(
        [got[i]],
        [reference[i]],
        BF16_VS_FP32,
        `tensorflow bf16 vs fp32 ${names[i]}`,
      );
      worst = Math.max(worst, f);
      if (Deno.env.get("SHOW_ERR")) {
        console.log(
          `  tensorflow bf16 ${names[i]}: vs emulated ${e.toExponential(2)}, vs fp32 ${f.toExponential(2)}`,
        );
      }
    }
    assert(worst > TOLERANCE.tensorflow, `bf16 run within the fp32 bound (${worst}): bf16 did not happen`);
  },
});

Deno.test("cross-backend: at least wasm and cpu were compared", () => {
  assert(backends.includes("wasm") && backends.includes("cpu"), `backends tested: ${backends.join(", ")}`);
});
