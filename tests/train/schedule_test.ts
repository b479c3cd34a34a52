import { assert, assertAlmostEquals } from "../_helpers/assert.ts";
import { polyLr } from "../../lib/train/schedule.ts";

const seed = { learningRate: 0.01, endLr: 0, power: 0.9, iters: 60000 };

Deno.test("G9: poly LR matches the reference values of docs/method.md §11 (G9; schedule §7)", () => {
  // Expected values computed independently: 0.01 * (1 - k/60000)^0.9 in float64 (docs/method.md §11 G9).
  const expected: Array<[number, number]> = [
    [0, 0.01],
    [9, 0.0099986500],
    [1000, 0.0098498742],
    [30000, 0.0053588673],
    [59999, 5.008e-7],
  ];
  for (const [k, lr] of expected) {
    const got = polyLr(k, seed);
    assert(
      Math.abs(got - lr) / lr < 1e-3 || Math.abs(got - lr) < 1e-10,
      `k=${k}: got ${got}, expected ${lr}`,
    );
  }
  assertAlmostEquals(polyLr(9, seed), 0.0099986500, 1e-10);
  assertAlmostEquals(polyLr(30000, seed), 0.0053588673, 1e-10);
  assertAlmostEquals(polyLr(60000, seed), 0, 1e-15);
  assertAlmostEquals(polyLr(70000, seed), 0, 1e-15);
});

Deno.test("poly LR with linear warm-up (Paddle LinearWarmup semantics)", () => {
  const o = { ...seed, iters: 1000, warmupIters: 100, warmupStartLr: 0.001 };
  assertAlmostEquals(polyLr(0, o), 0.001, 1e-12);
  assertAlmostEquals(polyLr(50, o), 0.001 + (0.01 - 0.001) * 0.5, 1e-12);
  assertAlmostEquals(polyLr(100, o), 0.01, 1e-12);
  // after warm-up the polynomial runs over the remaining 900 steps
  assertAlmostEquals(polyLr(550, o), 0.01 * Math.pow(1 - 450 / 900, 0.9), 1e-12);
  assertAlmostEquals(polyLr(1000, o), 0, 1e-15);
});
