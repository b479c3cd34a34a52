/**
 * The native `tensorflow` backend (tfjs-node-gpu's binding rebuilt against the TensorFlow 2.21 wheel by
 * `deno task setup`): it loads, reports libtensorflow's version, shares the engine of lib/backend/tf.ts, and its conv2d
 * forward + backward match the pure-JS `cpu` backend.
 *
 * A missing binding FAILS these tests (CI provisions it); set PC_ALLOW_NATIVE_SKIP=1 to skip them instead.
 */
import {
  loadNativeBackend,
  NATIVE_TF_VERSION,
  nativeBindingState,
  nativeGpuReport,
  projectRoot,
} from "../../lib/backend/native.ts";
import { tf } from "../../lib/backend/tf.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";

const state = nativeBindingState();
const skip = !state.ok && Deno.env.get("PC_ALLOW_NATIVE_SKIP") === "1";
if (skip) {
  console.warn(
    `SKIPPING native backend tests: ${state.problem} (PC_ALLOW_NATIVE_SKIP=1; run \`deno task setup\`)`,
  );
}

Deno.test({
  name: "native: binding state is reported without loading anything",
  fn() {
    const missing = nativeBindingState("/nonexistent-project");
    assertEquals(missing.ok, false);
    assert(/not in node_modules/.test(missing.problem ?? ""), `unexpected problem text: ${missing.problem}`);
  },
});

Deno.test({
  name: "native: loads libtensorflow and becomes the active backend of lib/backend/tf.ts",
  ignore: skip,
  async fn() {
    const info = await loadNativeBackend();
    assertEquals(info.libtensorflowVersion, NATIVE_TF_VERSION, "TF_Version()");
    assertEquals(tf.getBackend(), "tensorflow");
    assert(info.devices.some((d) => /CPU:0$/.test(d)), `no CPU device in ${JSON.stringify(info.devices)}`);
    assertEquals(info.gpu, info.devices.some((d) => /GPU:\d+$/.test(d)), "gpu flag vs device list");
    // switching away and back works: both backends live in the same engine
    assert(await tf.setBackend("cpu"));
    assert(await tf.setBackend("tensorflow"));
    assertEquals(tf.getBackend(), "tensorflow");
    // the same promise on a second call (no second registration)
    assertEquals((await loadNativeBackend()).libtensorflowVersion, info.libtensorflowVersion);
  },
});

interface ConvResult {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
}

/** relu(conv2d(x, w) + b) and the gradients of sum(relu(...) * r); x: [N,H,W,Cin], w: [kh,kw,Cin,Cout]. */
async function convForwardBackward(
  backend: string,
  data: { x: Float32Array; w: Float32Array; b: Float32Array; r: Float32Array },
  shapes: { x: number[]; w: number[]; strides: number; pad: "same" | "valid"; dilation: number },
): Promise<ConvResult> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} not available`);
  return tf.tidy(() => {
    const x = tf.tensor4d(data.x, shapes.x as [number, number, number, number]);
    const w = tf.tensor4d(data.w, shapes.w as [number, number, number, number]);
    const b = tf.tensor1d(data.b);
    const f = (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) =>
      tf.relu(tf.add(tf.conv2d(x, w, shapes.strides, shapes.pad, "NHWC", shapes.dilation), b));
    const y = f(x, w, b);
    const r = tf.tensor(data.r, y.shape);
    const [dx, dw, db] = tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D), r))
    )([x, w, b]);
    return {
      y: y.dataSync() as Float32Array,
      dx: dx.dataSync() as Float32Array,
      dw: dw.dataSync() as Float32Array,
      db: db.dataSync() as Float32Array,
    };
  });
}

function randn(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** rel 1e-4, plus an absolute floor of 1e-5 x the largest magnitude (sums of products near zero). */
function assertMatches(actual: Float32Array, expected: Float32Array, what: string) {
  let scale = 0;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  assert(scale > 0, `${what}: reference is all zeros (test data too degenerate)`);
  assertClose(actual, expected, 1e-4, 1e-5 * scale, what);
}

const CASES = [
  { x: [2, 9, 9, 3], w: [3, 3, 3, 5], strides: 1, pad: "same" as const, dilation: 1 },
  { x: [1, 11, 10, 4], w: [3, 3, 4, 6], strides: 2, pad: "same" as const, dilation: 1 },
  { x: [2, 8, 8, 2], w: [1, 1, 2, 4], strides: 1, pad: "valid" as const, dilation: 1 },
  // tfjs has no gradient for dilated conv2d (any backend), so dilation stays 1 here
  { x: [1, 13, 12, 3], w: [5, 5, 3, 4], strides: 2, pad: "valid" as const, dilation: 1 },
];

Deno.test({
  name: "native: conv2d + bias + relu forward and backward match the cpu backend (rel 1e-4)",
  ignore: skip,
  async fn() {
    await loadNativeBackend();
    const before = tf.memory().numTensors;
    const rng = new Rng(20210);
    for (const shapes of CASES) {
      const [n, h, w, cin] = shapes.x;
      const [, , , cout] = shapes.w;
      const outH = shapes.pad === "same"
        ? Math.ceil(h / shapes.strides)
        : Math.ceil((h - (shapes.w[0] - 1) * shapes.dilation) / shapes.strides);
      const outW = shapes.pad === "same"
        ? Math.ceil(w / shapes.strides)
        : Math.ceil((w - (shapes.w[1] - 1) * shapes.dilation) / shapes.strides);
      const data = {
        x: randn(rng, n * h * w * cin),
        w: randn(rng, shapes.w.reduce((a, b) => a * b)),
        b: randn(rng, cout),
        r: randn(rng, n * outH * outW * cout),
      };
      const ref = await convForwardBackward("cpu", data, shapes);
      const nat = await convForwardBackward("tensorflow", data, shapes);
      const tag = JSON.stringify(shapes);
      assertMatches(nat.y, ref.y, `y ${tag}`);
      assertMatches(nat.dx, ref.dx, `dx ${tag}`);
      assertMatches(nat.dw, ref.dw, `dw ${tag}`);
      assertMatches(nat.db, ref.db, `db ${tag}`);
    }
    await tf.setBackend("tensorflow");
    assertEquals(tf.memory().numTensors, before, "tensors leaked");
  },
});

Deno.test({
  name: "native: tf.memory() reports tensors held by the native backend",
  ignore: skip,
  async fn() {
    await loadNativeBackend();
    await tf.setBackend("tensorflow");
    const m0 = tf.memory();
    const t = tf.ones([64, 64]);
    const m1 = tf.memory();
    assertEquals(m1.numTensors, m0.numTensors + 1);
    assertEquals(m1.numBytes, m0.numBytes + 64 * 64 * 4);
    t.dispose();
    assertEquals(tf.memory().numTensors, m0.numTensors);
  },
});

Deno.test({
  name: "native: a Deno process that used the backend exits by itself",
  ignore: skip,
  sanitizeResources: false,
  async fn() {
    const root = projectRoot();
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${root}/scripts/native/smoke.ts`],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, `child exited with ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(text.trim().split("\n").pop()!);
    assertEquals(info.backend, "tensorflow");
    assertEquals(info.numTensors, 0);
    console.log(`  child load + op + exit: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  },
});

Deno.test({
  name: "native: GPU report names what the GPU route lacks here",
  async fn() {
    const report = await nativeGpuReport();
    assert(report.startsWith("GPU route"), report);
    assert(/GPU route: (ready|not usable here)/.test(report), report);
    const hasDriver = (() => {
      try {
        Deno.dlopen("libcuda.so.1", {}).close();
        return true;
      } catch {
        return false;
      }
    })();
    if (!hasDriver) {
      assert(report.includes("[missing] no NVIDIA driver"), report);
      assert(report.includes("not usable here"), report);
    }
    if (state.ok && (await loadNativeBackend()).variant === "cpu") {
      assert(report.includes("CPU-only tensorflow-cpu wheel"), report);
    }
  },
});
