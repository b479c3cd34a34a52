/**
 * The golden-value script (tests/fixtures/golden/method_golden_values.py, docs/method.md §11) runs from the
 * repository and reproduces, in float64 with numpy, exactly the expected values the golden tests assert
 * (G1–G3 in contrastive_test.ts, G7 in labels_ce_test.ts, G8 in tests/eval/metrics_test.ts, G9 in
 * tests/train/schedule_test.ts). Needs the project's .venv (set-up step `python`); PC_ALLOW_PY_SKIP=1 turns
 * a missing venv into a skip.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const PY = `${ROOT}/.venv/bin/python`;
const SCRIPT = `${ROOT}/tests/fixtures/golden/method_golden_values.py`;
const hasPy = await Deno.stat(PY).then(() => true, () => false);
const allowSkip = Deno.env.get("PC_ALLOW_PY_SKIP") === "1";
if (!hasPy && allowSkip) {
  console.warn(`SKIPPING the golden-script test (PC_ALLOW_PY_SKIP=1): ${PY} is missing`);
}

const close = (got: number, want: number, what: string, rtol = 1e-12) =>
  assert(
    Math.abs(got - want) <= rtol * Math.max(Math.abs(want), 1e-300),
    `${what}: script ${got}, tests ${want}`,
  );

Deno.test({
  name: "method_golden_values.py reproduces the golden values G1-G3, G7-G9 the tests use",
  ignore: !hasPy && allowSkip,
  async fn() {
    if (!hasPy) {
      throw new Error(`${PY} is missing: run 'deno task setup --only python' (or PC_ALLOW_PY_SKIP=1)`);
    }
    const r = await new Deno.Command(PY, {
      args: [SCRIPT, "--json"],
      cwd: "/",
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const dec = new TextDecoder();
    assert(r.success, `the script failed: ${dec.decode(r.stderr)}`);
    const g = JSON.parse(dec.decode(r.stdout));
    close(g.G1, 5.57861981385642, "G1");
    const g1Rows = [4.4780722251, 0.0379056249, 5.5195658238, 7.0917546333, 0.0016623012, 16.342758275];
    g1Rows.forEach((v, i) => close(g.G1_rows[i], v, `G1 row ${i}`, 1e-7));
    close(g.G2, 0.39642528626495444, "G2");
    const g2Rows = [
      1.4066546554e-3,
      0.59795454739,
      1.4233429846,
      0.29084201425,
      0.033155051498,
      0.031850465219,
    ];
    g2Rows.forEach((v, i) => close(g.G2_rows[i], v, `G2 row ${i}`, 1e-7));
    close(g.G2_t007, 0.25914682758247615, "G2 t=tb=0.07");
    assertEquals(g.G3, 0, "G3");
    close(g.G7, 0.21020773256796388, "G7");
    close(g.G7_plain_mean, 0.21020773572107987, "G7 plain mean");
    assertEquals([g.G8.intersect, g.G8.pred_area, g.G8.label_area], [[1, 1, 1], [2, 2, 1], [2, 2, 1]]);
    close(g.G8.mIoU, 5 / 9, "G8 mIoU");
    close(g.G8.acc, 0.6, "G8 Acc");
    close(g.G8.kappa, 0.375, "G8 Kappa");
    const g9: Record<string, number> = {
      "0": 0.01,
      "9": 0.0099986500,
      "1000": 0.0098498742,
      "30000": 0.0053588673,
      "59999": 5.008e-7,
    };
    for (const [k, v] of Object.entries(g9)) close(g.G9[k], v, `G9 k=${k}`, 2e-6);
  },
});
