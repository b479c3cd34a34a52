import { assertClose, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";

await initBackend();

Deno.test("MomentumSGD follows Paddle's Momentum with coupled L2 decay, step by step", async () => {
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
  assertClose((await opt.state()).get("w")!.dataSync(), v, 1e-6);
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

/** The update of lib/train/optimizer.ts done one parameter at a time (the per-tensor formulation it replaced). */
function referenceStep(
  params: Map<string, tf.Variable>,
  velocity: Map<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  lr: number,
  mu: number,
  wd: number,
): void {
  tf.tidy(() => {
    for (const [name, g] of Object.entries(grads)) {
      const p = params.get(name)!;
      let v = velocity.get(name);
      if (!v) velocity.set(name, v = tf.variable(tf.zerosLike(p), false));
      const vNew = tf.add(tf.mul(tf.scalar(mu), v), tf.add(g, tf.mul(tf.scalar(wd), p)));
      v.assign(vNew);
      p.assign(tf.add(p, tf.mul(tf.scalar(-lr), vNew)));
    }
  });
}

Deno.test("MomentumSGD's flat, grouped update equals the per-parameter one bit for bit (groups, layout changes, state)", async () => {
  const shapes: [string, number[]][] = [
    ["conv", [3, 3, 4, 5]],
    ["gamma", [5]],
    ["beta", [5]],
    ["fc", [5, 7]],
    [
      "bias",
      [7],
    ],
  ];
  const r = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * 0.5);
  const mk = (tag: string) =>
    new Map(
      shapes.map(([n, s], i) => [
        n,
        tf.variable(tf.tensor(r(s.reduce((a, b) => a * b, 1), i), s), true, `${n}_${tag}`),
      ]),
    );
  const a = mk("flat"), b = mk("ref");
  const before = tf.memory().numTensors;
  // conv (180 values > smallParam 100) is updated on its own; the others in flat groups: [gamma beta] [fc] [bias]
  const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4, smallParam: 100, maxGroupSize: 20 });
  const vel = new Map<string, tf.Variable>();
  for (let s = 0; s < 4; s++) {
    // step 2 leaves out "beta" (a layout change): its velocity must survive for step 3
    const names = shapes.map(([n]) => n).filter((n) => s !== 2 || n !== "beta");
    const grads = Object.fromEntries(
      names.map((n, i) => [n, tf.tensor(r(a.get(n)!.size, 10 * s + i), a.get(n)!.shape)]),
    );
    opt.step(a, grads, 0.05 - 0.01 * s);
    referenceStep(b, vel, grads, 0.05 - 0.01 * s, 0.9, 2e-4);
    tf.dispose(Object.values(grads));
    for (const [n] of shapes) {
      assertEquals(Array.from(a.get(n)!.dataSync()), Array.from(b.get(n)!.dataSync()), `step ${s} ${n}`);
    }
  }
  const st = await opt.state();
  for (const [n] of shapes) {
    assertEquals(st.get(n)!.shape, vel.get(n)!.shape, `velocity ${n} shape`);
    assertEquals(Array.from(st.get(n)!.dataSync()), Array.from(vel.get(n)!.dataSync()), `velocity ${n}`);
  }
  // a fresh optimizer loaded from that state continues identically
  const opt2 = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
  opt2.loadState(st, a);
  const c = new Map([...a].map(([n, v]) => {
    const t = v.clone(), copy = tf.variable(t, true, `${n}_copy`);
    t.dispose();
    return [n, copy];
  }));
  const grads = Object.fromEntries(
    shapes.map(([n], i) => [n, tf.tensor(r(a.get(n)!.size, 99 + i), a.get(n)!.shape)]),
  );
  opt.step(a, grads, 0.01);
  opt2.step(c, grads, 0.01);
  for (const [n] of shapes) {
    assertEquals(Array.from(c.get(n)!.dataSync()), Array.from(a.get(n)!.dataSync()), n);
  }
  tf.dispose(Object.values(grads));
  opt.dispose();
  opt2.dispose();
  for (const m of [b, c]) for (const v of m.values()) v.dispose();
  for (const v of vel.values()) v.dispose();
  assertEquals(tf.memory().numTensors, before - shapes.length, "no tensor leaked (a's variables remain)");
  for (const v of a.values()) v.dispose();
});

Deno.test("MomentumSGD groups small parameters only where flat updates pay (native), per tensor elsewhere; a backend switch keeps the velocities", async () => {
  const prev = tf.getBackend();
  const shapes: Array<[string, number[]]> = [["a", [10]], ["b", [4, 5]], ["c", [7]]];
  const mk = () =>
    new Map(shapes.map(([n, s], i) => [n, tf.variable(tf.randomNormal(s, 0, 1, "float32", i), true)]));
  const p = mk();
  const ref = new Map([...p].map(([n, v]) => [n, tf.variable(v.clone(), true)]));
  const vel = new Map<string, tf.Variable>();
  const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 1e-3 });
  const step = (k: number) => {
    const grads = Object.fromEntries(
      shapes.map(([n, s], i) => [n, tf.randomNormal(s, 0, 1, "float32", 10 * k + i)]),
    );
    opt.step(p, grads, 0.1);
    referenceStep(ref, vel, grads, 0.1, 0.9, 1e-3);
    tf.dispose(Object.values(grads));
  };
  try {
    step(0);
    assertEquals(opt.groupCount, prev === "tensorflow" ? 1 : 3, `groups on ${prev}`);
    await tf.setBackend("cpu");
    step(1);
    assertEquals(opt.groupCount, 3, "per tensor on cpu");
    for (const [n] of shapes) {
      assertEquals(Array.from(p.get(n)!.dataSync()), Array.from(ref.get(n)!.dataSync()), n);
    }
  } finally {
    opt.dispose();
    for (const m of [p, ref, vel]) for (const v of m.values()) v.dispose();
    await tf.setBackend(prev);
  }
});
