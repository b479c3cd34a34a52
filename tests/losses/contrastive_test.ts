/**
 * Golden tests G1-G4 (docs/method.md §11) for the contrastive term, float32 against the float64 figures of
 * tests/fixtures/golden/method_golden_values.py (checked by golden_script_test.ts), relative tolerance 1e-5;
 * finite-difference gradient checks.
 */
import { assert, assertAlmostEquals, assertClose } from "../_helpers/assert.ts";
import { type Tensor2D, type Tensor3D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import {
  contrastiveFromRows,
  contrastivePerRow,
  contrastiveTerm,
  gatherRows,
} from "../../lib/losses/contrastive.ts";

await initBackend();

const SEED = { temperature: 0.1, baseTemperature: 0.07 };
const unit = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
const G1 = [[unit(0), unit(30)], [unit(90), unit(120)], [unit(10), unit(200)]];
const G1_LABELS = [0, 1, 0];
const G2_RAW = [[[1, 0, 0], [1, 1, 0], [2, 0, 1]], [[0, 1, 0], [0, 1, 1], [-1, 2, 0]]];
const G2_LABELS = [3, 7];

function normalise(a: number[][][]): number[][][] {
  return a.map((g) => g.map((v) => v.map((x) => x / Math.hypot(...v))));
}
const G2 = normalise(G2_RAW);

function relClose(got: number, want: number, rtol = 1e-5, msg = "") {
  assert(Math.abs(got - want) <= rtol * Math.abs(want), `${msg} got ${got}, want ${want} (rtol ${rtol})`);
}

function lossOf(feats: number[][][], labels: number[], opts = SEED, subtractRowMax = false): number {
  return tf.tidy(() => contrastiveTerm(tf.tensor3d(feats), labels, opts, subtractRowMax).dataSync()[0]);
}

/** Our per-row losses, rows in view-major order. */
function perRowLosses(feats: number[][][], labels: number[], opts = SEED): number[] {
  const A = feats.length, V = feats[0].length;
  const rows: number[][] = [];
  const rowLabels = new Int32Array(A * V);
  for (let v = 0; v < V; v++) {
    for (let a = 0; a < A; a++) {
      rows.push(feats[a][v]);
      rowLabels[v * A + a] = labels[a];
    }
  }
  return Array.from(tf.tidy(() => contrastivePerRow(tf.tensor2d(rows), rowLabels, opts).dataSync()));
}

Deno.test("G1: 2-D contrastive term, three groups", () => {
  relClose(lossOf(G1, G1_LABELS), 5.57861981385642, 1e-5, "G1 loss");
  assertClose(
    perRowLosses(G1, G1_LABELS),
    [4.4780722251, 0.0379056249, 5.5195658238, 7.0917546333, 0.0016623012, 16.342758275],
    1e-5,
    0,
    "G1 per-row (view-major)",
  );
});

Deno.test("G2: 3-D contrastive term, both temperatures", () => {
  relClose(lossOf(G2, G2_LABELS), 0.39642528626495444, 1e-5, "G2 loss");
  assertClose(
    perRowLosses(G2, G2_LABELS),
    [1.4066546554e-3, 0.59795454739, 1.4233429846, 0.29084201425, 0.033155051498, 0.031850465219],
    1e-5,
    0,
    "G2 per-row (view-major)",
  );
  relClose(
    lossOf(G2, G2_LABELS, { temperature: 0.07, baseTemperature: 0.07 }),
    0.25914682758247615,
    1e-5,
    "G2 t=tb",
  );
});

Deno.test("G3: a single class gives exactly 0 and a zero gradient", () => {
  assertAlmostEquals(lossOf(G2, [5, 5]), 0, 0, "G3 loss");
  const g = tf.tidy(() =>
    tf.grad((x: tf.Tensor) => contrastiveTerm(x as Tensor3D, [5, 5], SEED))(tf.tensor3d(G2))
  );
  const gv = g.dataSync();
  g.dispose();
  assert(gv.every((v) => v === 0), `G3 gradient must be 0, got ${Array.from(gv)}`);
});

Deno.test("G4: row permutation and max-subtraction invariance", () => {
  for (
    const [feats, labels, want] of [[G1, G1_LABELS, 5.57861981385642], [
      G2,
      G2_LABELS,
      0.39642528626495444,
    ]] as const
  ) {
    const base = lossOf(feats as number[][][], labels as unknown as number[]);
    relClose(
      lossOf(feats as number[][][], labels as unknown as number[], SEED, true),
      want,
      1e-5,
      "max-subtracted",
    );
    // consistent shuffle of the groups (features and labels together) and of the views inside each group
    const order = (feats as number[][][]).map((_, i) => i).reverse();
    const shuffled = order.map((i) => [...(feats as number[][][])[i]].reverse());
    const shLabels = order.map((i) => (labels as unknown as number[])[i]);
    relClose(lossOf(shuffled, shLabels), base, 1e-6, "shuffled");
  }
  // arbitrary consistent row permutation directly on the view-major rows
  const rows = [G2[0][0], G2[1][0], G2[0][1], G2[1][1], G2[0][2], G2[1][2]];
  const labs = [3, 7, 3, 7, 3, 7];
  const perm = [4, 1, 5, 0, 3, 2];
  const value = (rs: number[][], ls: number[]) =>
    tf.tidy(() => contrastiveFromRows(tf.tensor2d(rs), Int32Array.from(ls), SEED).loss.dataSync()[0]);
  relClose(
    value(perm.map((i) => rows[i]), perm.map((i) => labs[i])),
    0.39642528626495444,
    1e-5,
    "row permutation",
  );
});

/** Central finite differences in float64 of the §4.4 formula through the L2 normalisation. */
function referenceLoss64(raw: number[][], labels: number[], normaliseRows: boolean): number {
  const rows = normaliseRows ? raw.map((v) => v.map((x) => x / Math.hypot(...v))) : raw;
  const R = rows.length, t = SEED.temperature;
  let total = 0;
  for (let r = 0; r < R; r++) {
    const s = rows.map((q) => q.reduce((acc, x, i) => acc + x * rows[r][i], 0) / t);
    let negsum = 0;
    for (let q = 0; q < R; q++) if (labels[q] !== labels[r]) negsum += Math.exp(s[q]);
    let acc = 0, n = 0;
    for (let q = 0; q < R; q++) {
      if (q === r || labels[q] !== labels[r]) continue;
      acc += s[q] - Math.log(Math.exp(s[q]) + negsum);
      n++;
    }
    total += (-(t / SEED.baseTemperature) * acc) / n;
  }
  return total / R;
}

Deno.test("G4: finite-difference gradient, on the unit rows and through the L2 normalisation", () => {
  const labs = [3, 7, 3, 7, 3, 7];
  const raw = [G2_RAW[0][0], G2_RAW[1][0], G2_RAW[0][1], G2_RAW[1][1], G2_RAW[0][2], G2_RAW[1][2]];
  for (const throughNorm of [false, true]) {
    const x0 = throughNorm ? raw : raw.map((v) => v.map((x) => x / Math.hypot(...v)));
    const f = (x: tf.Tensor) => {
      const rows = (throughNorm ? tf.div(x, tf.norm(x, 2, 1, true)) : x) as Tensor2D;
      return contrastiveFromRows(rows, Int32Array.from(labs), SEED).loss;
    };
    const g = tf.tidy(() => tf.grad(f)(tf.tensor2d(x0)).dataSync());
    const h = 1e-6;
    const fd: number[] = [];
    for (let i = 0; i < x0.length; i++) {
      for (let j = 0; j < 3; j++) {
        const p = x0.map((v) => [...v]), m = x0.map((v) => [...v]);
        p[i][j] += h;
        m[i][j] -= h;
        fd.push((referenceLoss64(p, labs, throughNorm) - referenceLoss64(m, labs, throughNorm)) / (2 * h));
      }
    }
    const scale = Math.max(...fd.map(Math.abs));
    assertClose(g, fd, 0, 2e-5 * scale, `FD gradient (through L2 norm: ${throughNorm})`);
  }
});

Deno.test("gatherRows: values and scatter gradient; no tensor leak", () => {
  const before = tf.memory().numTensors;
  const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
  const idx = Int32Array.from([2, 0]);
  const [v, g] = tf.tidy(() => {
    const val = gatherRows(x, idx).dataSync();
    const grad = tf.grad((t: tf.Tensor) =>
      tf.sum(tf.mul(gatherRows(t as Tensor2D, idx), tf.tensor2d([[1, 10], [100, 1000]])))
    )(
      x,
    ).dataSync();
    return [val, grad];
  });
  x.dispose();
  assertClose(v, [5, 6, 1, 2], 0, 0, "gathered");
  assertClose(g, [100, 1000, 0, 0, 1, 10, 0, 0], 0, 0, "gradient");
  assert(tf.memory().numTensors === before, `leaked ${tf.memory().numTensors - before} tensors`);
});
