/**
 * lib/backend/native_fused.ts on the native `tensorflow` backend: FusedBatchNormV3/GradV3 behind
 * `batchNormTrain` and ReluGrad behind tf.relu's gradient give the values, batch statistics and gradients of
 * the textbook formulas (float64 references computed here). Skipped, with a message, without the binding.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend, probeBackend } from "../../lib/backend/mod.ts";
import { hasFusedBatchNorm } from "../../lib/backend/native_fused.ts";
import { batchNormTrain } from "../../lib/models/ops.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertClose } from "../_helpers/assert.ts";

const native = (await probeBackend("tensorflow")).available && Deno.env.get("PC_PERF_FIXES") !== "0";
if (native) await initBackend("tensorflow", { quiet: true });
else console.warn("SKIPPING native fused-kernel tests: the tensorflow backend is not available here");

function randn(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

Deno.test({
  name: "fused BatchNorm (training): output, batch mean, biased variance and all three gradients",
  ignore: !native,
  fn() {
    assert(hasFusedBatchNorm(), "the fused kernel is registered on tensorflow");
    const [N, H, W, C] = [2, 5, 3, 4], M = N * H * W, eps = 1e-5;
    const xv = randn(M * C, 1).map((v, i) => v * (1 + (i % C)) + (i % C)); // per-channel scale and offset
    const gv = randn(C, 2), bv = randn(C, 3), rv = randn(M * C, 4);
    let stats: [Float32Array, Float32Array] | null = null;
    const x = tf.tensor4d(xv, [N, H, W, C]),
      g = tf.tensor1d(gv),
      b = tf.tensor1d(bv),
      r = tf.tensor4d(rv, [N, H, W, C]);
    const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(
        batchNormTrain(xi as tf.Tensor4D, gi as tf.Tensor1D, bi as tf.Tensor1D, eps, (m, v) => {
          stats = [m.dataSync() as Float32Array, v.dataSync() as Float32Array];
          tf.dispose([m, v]);
        }),
        r,
      ));
    const y = tf.tidy(() => batchNormTrain(x, g, b, eps)).dataSync();
    const [dx, dg, db] = tf.grads(f)([x, g, b]).map((t) => t.dataSync());
    // float64 references
    const mean = new Float64Array(C), varb = new Float64Array(C);
    for (let i = 0; i < M * C; i++) mean[i % C] += xv[i] / M;
    for (let i = 0; i < M * C; i++) varb[i % C] += (xv[i] - mean[i % C]) ** 2 / M;
    const inv = Array.from(varb, (v) => 1 / Math.sqrt(v + eps));
    const xhat = Array.from(xv, (v, i) => (v - mean[i % C]) * inv[i % C]);
    const yRef = xhat.map((h, i) => h * gv[i % C] + bv[i % C]);
    const dbRef = new Float64Array(C), dgRef = new Float64Array(C);
    for (let i = 0; i < M * C; i++) {
      dbRef[i % C] += rv[i];
      dgRef[i % C] += rv[i] * xhat[i];
    }
    const dxRef = Array.from(rv, (d, i) => {
      const c = i % C;
      return gv[c] * inv[c] * (d - dbRef[c] / M - xhat[i] * dgRef[c] / M);
    });
    assertClose(y, yRef, 1e-4, 1e-5, "y");
    assertClose(dx, dxRef, 1e-3, 1e-5, "dx");
    assertClose(dg, dgRef, 1e-4, 1e-5, "dgamma");
    assertClose(db, dbRef, 1e-5, 1e-5, "dbeta");
    assert(stats !== null, "batch statistics were handed out");
    assertClose(stats![0], mean, 1e-5, 1e-5, "batch mean");
    assertClose(stats![1], varb, 1e-4, 1e-6, "biased batch variance (Paddle's running update)");
    tf.dispose([x, g, b, r]);
  },
});

Deno.test({
  name: "Relu gradient through ReluGrad (saving the output): dy where x > 0, else 0",
  ignore: !native,
  fn() {
    const xv = randn(64, 5), dyv = randn(64, 6);
    xv[3] = 0; // relu'(0) = 0, as TensorFlow
    const x = tf.tensor1d(xv), dy = tf.tensor1d(dyv);
    const n0 = tf.memory().numTensors;
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), dy)))(x);
    assertClose(g.dataSync(), Array.from(xv, (v, i) => (v > 0 ? dyv[i] : 0)), 0, 0);
    g.dispose();
    assert(tf.memory().numTensors === n0, "no tensors leaked");
    tf.dispose([x, dy]);
  },
});
