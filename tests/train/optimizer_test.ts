import { assertClose, assertThrows } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";

await initBackend();

Deno.test("MomentumSGD follows Paddle's Momentum with coupled L2 decay, step by step", () => {
  const p0 = [1.0, -2.0, 0.5];
  const grads = [[0.1, 0.2, -0.3], [0.0, -0.1, 0.4], [0.05, 0.05, 0.05]];
  const lrs = [0.01, 0.009, 0.008];
  const mu = 0.9, wd = 2e-4;
  // independent float64 reference
  const p = [...p0], v = [0, 0, 0];
  const params = new Map([["w", tf.variable(tf.tensor1d(p0), true, "w")]]);
  const opt = new MomentumSGD({ momentum: mu, weightDecay: wd });
  const before = tf.memory().numTensors;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < 3; i++) {
      v[i] = mu * v[i] + grads[s][i] + wd * p[i];
      p[i] -= lrs[s] * v[i];
    }
    const g = tf.tensor1d(grads[s]);
    opt.step(params, { w: g }, lrs[s]);
    g.dispose();
    if (s > 0) {
      // velocity buffer created on step 0; afterwards no tensor may leak
      if (tf.memory().numTensors !== before + 1) throw new Error(`leak: ${tf.memory().numTensors - before}`);
    }
  }
  assertClose(params.get("w")!.dataSync(), p, 1e-6);
  assertClose(opt.state().get("w")!.dataSync(), v, 1e-6);
  opt.dispose();
  params.get("w")!.dispose();
});

Deno.test("MomentumSGD rejects unknown parameters and shape mismatches by name", () => {
  const params = new Map([["a", tf.variable(tf.zeros([2]), true, "a_opt_test")]]);
  const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 0 });
  const g = tf.zeros([3]);
  assertThrows(() => opt.step(params, { b: g }, 0.1), "unknown parameter 'b'");
  assertThrows(() => opt.step(params, { a: g }, 0.1), "parameter 'a'");
  g.dispose();
  params.get("a")!.dispose();
  opt.dispose();
});
