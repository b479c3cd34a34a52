/** G6 (label downsampling) and G7 (cross-entropy with ignore), docs/method.md §11; CE weighting and edge cases. */
import { assert, assertAlmostEquals, assertClose, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { type Tensor3D, type Tensor4D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import {
  downsampleLabels,
  downsampleLabelsHost,
  labelsAndPredictions,
  nearestSourceIndices,
  predictFromLogits,
  strideLabels,
  strideLabelsHost,
} from "../../lib/losses/labels.ts";
import { crossEntropyGradNorm, crossEntropyLoss } from "../../lib/losses/cross_entropy.ts";
import { TORCH_CE_WEIGHTS } from "../../lib/losses/options.ts";
import { crossEntropyOptionsOf } from "../../lib/run/options.ts";

await initBackend();

/** The cross-entropy of a config without class weights (ignore 255). */
const CE = crossEntropyOptionsOf();

Deno.test("G6: 512x1024 labels to 128x256 equal the strided picks label[4i, 4j]", () => {
  const H = 512, W = 1024, h = 128, w = 256;
  const full = new Int32Array(H * W);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) full[r * W + c] = (r + c) % 7 === 0 ? 255 : (r * 1024 + c) % 19;
  }
  const t = tf.tensor3d(full, [1, H, W], "int32");
  const got = tf.tidy(() => downsampleLabels(t, [h, w]).dataSync());
  // TF.js' legacy nearest (alignCorners false, halfPixelCenters false) as an independent implementation
  const viaResize = tf.tidy(() =>
    tf.cast(
      tf.image.resizeNearestNeighbor(
        tf.cast(tf.reshape(t, [1, H, W, 1]), "float32") as Tensor4D,
        [h, w],
        false,
        false,
      ),
      "int32",
    )
      .dataSync()
  );
  t.dispose();
  let ignored = 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const want = full[4 * i * W + 4 * j];
      if (got[i * w + j] !== want) {
        throw new Error(`(${i},${j}): ${got[i * w + j]} != label[${4 * i},${4 * j}] = ${want}`);
      }
      if (want === 255) ignored++;
    }
  }
  assertEquals(Array.from(got), Array.from(viaResize), "same as resizeNearestNeighbor(legacy)");
  assert(ignored > 0, "255 survives where the picked pixel is 255");
});

Deno.test("label downsampling: non-integer ratios use floor(dst * in / out)", () => {
  assertEquals(Array.from(nearestSourceIndices(10, 4)), [0, 2, 5, 7]);
  assertEquals(Array.from(nearestSourceIndices(8, 8)), [0, 1, 2, 3, 4, 5, 6, 7]);
  const H = 10, W = 6;
  const data = Int32Array.from({ length: H * W }, (_, i) => i);
  const t = tf.tensor3d(data, [1, H, W], "int32");
  const got = tf.tidy(() => downsampleLabels(t, [4, 4]).dataSync());
  t.dispose();
  const rows = [0, 2, 5, 7], cols = [0, 1, 3, 4];
  assertEquals(Array.from(got), rows.flatMap((r) => cols.map((c) => r * W + c)));
  assertThrows(() => downsampleLabels(tf.zeros([1, 4, 4]) as Tensor3D, [2, 2]), "int32");
});

Deno.test("host label picks equal the device picks (integer, non-integer ratios, strides); one read", async () => {
  const rng = (i: number) => (i * 2654435761) % 23;
  for (const [n, H, W, h, w, s] of [[2, 16, 24, 4, 6, 8], [1, 10, 6, 4, 4, 3], [3, 9, 9, 9, 9, 4]]) {
    const host = Int32Array.from({ length: n * H * W }, (_, i) => (rng(i) === 22 ? 255 : rng(i)));
    const t = tf.tensor3d(host, [n, H, W], "int32");
    const dev = tf.tidy(() => downsampleLabels(t, [h, w]).dataSync());
    assertEquals(
      Array.from(downsampleLabelsHost(host, [n, H, W], [h, w])),
      Array.from(dev),
      `${H}x${W}->${h}x${w}`,
    );
    const strided = tf.tidy(() => strideLabels(t, s).dataSync());
    assertEquals(Array.from(strideLabelsHost(host, [n, H, W], s)), Array.from(strided), `::${s}`);
    // labelsAndPredictions: the host copy gives the same labels, and the same predictions
    const logits = tf.randomNormal([n, h, w, 5], 0, 1, "float32", 7) as Tensor4D;
    const a = await labelsAndPredictions(t, logits), b = await labelsAndPredictions(t, logits, host);
    assertEquals([Array.from(b.labels), Array.from(b.preds)], [Array.from(a.labels), Array.from(a.preds)]);
    assertEquals(Array.from(a.preds), Array.from(tf.tidy(() => tf.argMax(logits, -1).dataSync())));
    tf.dispose([t, logits]);
  }
  assertThrows(() => downsampleLabelsHost(new Int32Array(5), [1, 2, 3], [1, 1]), "host labels have 5 values");
});

Deno.test("predictions: argmax over the class axis", () => {
  const x = tf.tensor4d([0, 2, 1, 5, 0, 0, -1, -2, -3], [1, 1, 3, 3]);
  const p = predictFromLogits(x);
  assertEquals(Array.from(p.dataSync()), [1, 0, 0]);
  tf.dispose([x, p]);
});

function g7(weight: readonly number[] | null = null) {
  const logits = tf.tensor4d([2.0, 0.5, -1.0, 0, 0, 0, 1.0, 3.0, 0.2], [1, 1, 3, 3]);
  const labels = tf.tensor3d([0, 255, 1], [1, 1, 3], "int32");
  const v = tf.tidy(() => crossEntropyLoss(logits, labels, crossEntropyOptionsOf({ weight })).dataSync()[0]);
  tf.dispose([logits, labels]);
  return v;
}

Deno.test("G7: cross-entropy with ignore, Paddle reduction", () => {
  const want = 0.21020773256796388;
  const got = g7();
  assert(Math.abs(got - want) <= 1e-5 * want, `G7: ${got} vs ${want}`);
});

Deno.test("CE: class weights give sum(w_y nll) / sum(w_y) (hand computed in float64)", () => {
  const w = [2, 0.5, 1];
  const lse = (x: number[]) => Math.log(x.reduce((s, v) => s + Math.exp(v), 0));
  const nll0 = lse([2.0, 0.5, -1.0]) - 2.0, nll1 = lse([1.0, 3.0, 0.2]) - 3.0;
  const want = (2 * nll0 + 0.5 * nll1) / 3 / ((2 + 0.5) / 3 + 1e-8);
  const got = g7(w);
  assert(Math.abs(got - want) <= 1e-5 * want, `${got} vs ${want}`);
  assertThrows(() => g7([1, 2]), "2 class weights");
  assertThrows(() => g7([1, -1, 1]), ">= 0");
  assertEquals(TORCH_CE_WEIGHTS.length, 19);
});

Deno.test("CE: all pixels ignored gives exactly 0 with a zero, finite gradient", () => {
  const logits = tf.randomNormal([2, 4, 4, 5], 0, 1, "float32", 1) as Tensor4D;
  const labels = tf.fill([2, 4, 4], 255, "int32") as Tensor3D;
  const { value, grad } = tf.tidy(() => {
    const r = tf.valueAndGrad((x: tf.Tensor) => crossEntropyLoss(x as Tensor4D, labels, CE))(logits);
    return { value: r.value.dataSync()[0], grad: r.grad.dataSync() };
  });
  tf.dispose([logits, labels]);
  assertAlmostEquals(value, 0, 0);
  assert(grad.every((g) => g === 0), "zero gradient");
});

Deno.test("CE: logits smaller than the labels are upsampled (half-pixel) with a correct gradient", async () => {
  const logits = tf.randomNormal([1, 3, 5, 4], 0, 1, "float32", 7) as Tensor4D;
  const labels = tf.tensor3d(
    Int32Array.from({ length: 6 * 10 }, (_, i) => (i * 7) % 5 === 4 ? 255 : (i * 7) % 5),
    [1, 6, 10],
    "int32",
  );
  const f = (x: tf.Tensor) => crossEntropyLoss(x as Tensor4D, labels, CE);
  const g = tf.tidy(() => tf.grad(f)(logits).dataSync());
  // central finite differences (float32: step 1e-2 on a smooth function)
  const x0 = logits.dataSync().slice();
  const fd = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const at = (d: number) => {
      const x = x0.slice();
      x[i] += d;
      return tf.tidy(() => f(tf.tensor4d(x, logits.shape)).dataSync()[0]);
    };
    fd[i] = (at(1e-2) - at(-1e-2)) / 2e-2;
  }
  const scale = fd.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assertClose(g, fd, 0, 2e-3 * scale, "FD gradient through the upsampling");
  // the closed-form gradient norm equals the autodiff one at the CE input
  const up = tf.tidy(() => tf.image.resizeBilinear(logits, [6, 10], false, true)) as Tensor4D;
  const auto = tf.tidy(() =>
    tf.norm(tf.grad((x: tf.Tensor) => crossEntropyLoss(x as Tensor4D, labels, CE))(up)).dataSync()[0]
  );
  const closedT = crossEntropyGradNorm(up, labels, CE);
  const closed = (await closedT.data())[0];
  closedT.dispose();
  assert(Math.abs(auto - closed) <= 1e-5 * auto, `grad norm ${closed} vs autodiff ${auto}`);
  tf.dispose([logits, labels, up]);
});
