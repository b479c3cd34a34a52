import { assert, assertAlmostEquals, assertEquals } from "../_helpers/assert.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { describeRun, scaledLearningRate } from "../../lib/train/reference.ts";

const SEED = "configs/hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml";

Deno.test("the seed recipe on one device states its deviations from the 4x2 reference", async () => {
  const c = await loadConfig(SEED);
  const r = describeRun(c, "tensorflow");
  assertEquals([r.effectiveBatch, r.bnBatch, r.contrastGroup], [2, 2, 2]);
  assertEquals(r.lr, 0.01);
  const text = r.lines.join("\n");
  assert(text.includes("effective batch 2 vs 8") && text.includes("BN statistics over 2 vs 8"), text);
});

Deno.test("grad_accum 4 with groups of 2 reproduces the reference step except for BN", async () => {
  const c = await loadConfig(SEED, { flags: { grad_accum: 4 } });
  const r = describeRun(c, "tensorflow");
  assertEquals(r.effectiveBatch, 8);
  const last = r.lines.at(-1)!;
  assert(last.includes("BN statistics over 2 vs 8") && !last.includes("effective batch"), last);
});

Deno.test("lr_scaling linear applies lr x E/8; none keeps the configured lr", async () => {
  const c = await loadConfig(SEED, { overrides: ["train.lr_scaling=linear", "batch_size=4"] });
  const s = scaledLearningRate(c);
  assertAlmostEquals(s.lr, 0.01 * 4 / 8, 1e-15);
  assert(s.rule.startsWith("linear scaling"), s.rule);
  assertEquals(scaledLearningRate(await loadConfig(SEED)).lr, 0.01);
});
