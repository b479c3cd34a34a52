import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_helpers/assert.ts";
/**
 * The feature-space numerics of lib/eval: the class-balanced sample, the eigen-solver and PCA, UMAP, the two
 * measures of structure, `compareFeatures` (drawn by lib/viz's `featureSpaceFigure`), and `featureSpace` end
 * to end on tiny models.
 */
import { l2NormalizeRows, sampleBalancedPixels } from "../../lib/eval/feature_rows.ts";
import { pca, symmetricEigen, umap } from "../../lib/eval/projection.ts";
import { classSeparation, knnAccuracy } from "../../lib/eval/feature_measures.ts";
import { compareFeatures } from "../../lib/eval/feature_space.ts";
import { featureSpaceFigure } from "../../lib/viz/embedding_figure.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("sampleBalancedPixels: at most perClass per class, ignore dropped, distinct, seeded", () => {
  // class 0: 50 px, class 1: 3 px, class 4: 20 px, 255: 10 px
  const labels: number[] = [];
  for (let i = 0; i < 50; i++) labels.push(0);
  for (let i = 0; i < 3; i++) labels.push(1);
  for (let i = 0; i < 20; i++) labels.push(4);
  for (let i = 0; i < 10; i++) labels.push(255);
  new Rng(3).shuffle(labels);
  const dim = 2;
  const emb = Float32Array.from({ length: labels.length * dim }, (_, i) => i);
  const s = sampleBalancedPixels(labels, emb, dim, { perClass: 10, rng: new Rng(1) });
  const count = (c: number) => Array.from(s.labels).filter((l) => l === c).length;
  assertEquals([count(0), count(1), count(4), count(255)], [10, 3, 10, 0]);
  assertEquals(s.available, [50, 3, 0, 0, 20]);
  assertEquals(new Set(s.indices).size, s.indices.length, "indices distinct");
  for (let r = 0; r < s.indices.length; r++) {
    assertEquals(labels[s.indices[r]], s.labels[r], "label matches index");
    assertEquals([s.embeddings[2 * r], s.embeddings[2 * r + 1]], [2 * s.indices[r], 2 * s.indices[r] + 1]);
  }
  const again = sampleBalancedPixels(labels, emb, dim, { perClass: 10, rng: new Rng(1) });
  assertEquals(Array.from(again.indices), Array.from(s.indices), "same seed, same sample");
  const other = sampleBalancedPixels(labels, emb, dim, { perClass: 10, rng: new Rng(2) });
  assert(Array.from(other.indices).join() !== Array.from(s.indices).join(), "another seed, another sample");
});

Deno.test("sampleBalancedPixels: uniform over a class's pixels", () => {
  const labels = new Int32Array(20); // one class, 20 pixels, pick 5
  const hits = new Array(20).fill(0);
  const rng = new Rng(9);
  const trials = 4000;
  for (let t = 0; t < trials; t++) {
    for (const i of sampleBalancedPixels(labels, null, 1, { perClass: 5, rng }).indices) hits[i]++;
  }
  const expect = (trials * 5) / 20; // 1000, sd ≈ 27
  for (const h of hits) assert(Math.abs(h - expect) < 150, `pixel picked ${h} times, expected ≈ ${expect}`);
});

Deno.test("sampleBalancedPixels: bad input names the problem", () => {
  assertThrows(
    () => sampleBalancedPixels([0, 1], new Float32Array(3), 2, { perClass: 1, rng: new Rng(0) }),
    "expected",
  );
  assertThrows(() => sampleBalancedPixels([0, 1], null, 2, { perClass: 0, rng: new Rng(0) }), "perClass");
  assertThrows(
    () => sampleBalancedPixels([0, -1], null, 2, { perClass: 1, rng: new Rng(0) }),
    "not a class id",
  );
});

Deno.test("symmetricEigen: A v = λ v, orthonormal, descending, on a known matrix", () => {
  // [[2,1],[1,2]]: eigenvalues 3 (1,1)/√2 and 1 (1,-1)/√2
  const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
  assertAlmostEquals(values[0], 3, 1e-12);
  assertAlmostEquals(values[1], 1, 1e-12);
  assertAlmostEquals(Math.abs(vectors[0]), Math.SQRT1_2, 1e-12);
  assertAlmostEquals(vectors[0] * vectors[2], 0.5, 1e-12); // first column (a, a)
  const rng = new Rng(5);
  const p = 30;
  const a = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let j = i; j < p; j++) a[i * p + j] = a[j * p + i] = rng.normal();
  const e = symmetricEigen(a, p);
  for (let c = 0; c < p; c++) {
    if (c > 0) assert(e.values[c] <= e.values[c - 1], "descending");
    for (let i = 0; i < p; i++) {
      let s = 0;
      for (let j = 0; j < p; j++) s += a[i * p + j] * e.vectors[j * p + c];
      assertAlmostEquals(s, e.values[c] * e.vectors[i * p + c], 1e-10);
    }
    for (let c2 = 0; c2 <= c; c2++) {
      let dot = 0;
      for (let i = 0; i < p; i++) dot += e.vectors[i * p + c] * e.vectors[i * p + c2];
      assertAlmostEquals(dot, c === c2 ? 1 : 0, 1e-10);
    }
  }
});

/** A random orthonormal basis of R^d (rows), by Gram-Schmidt on Gaussian vectors. */
function randomBasis(d: number, rng: Rng): number[][] {
  const b: number[][] = [];
  while (b.length < d) {
    const v = Array.from({ length: d }, () => rng.normal());
    for (const u of b) {
      const s = u.reduce((acc, x, i) => acc + x * v[i], 0);
      for (let i = 0; i < d; i++) v[i] -= s * u[i];
    }
    const n = Math.hypot(...v);
    b.push(v.map((x) => x / n));
  }
  return b;
}

Deno.test("pca: recovers exact axes and variances of a 4-point cross", () => {
  const rng = new Rng(11);
  const d = 6;
  const [u1, u2] = randomBasis(d, rng);
  const mean = Array.from({ length: d }, () => rng.normal() * 10);
  const a = 3, b = 1;
  const pts = [[a, 0], [-a, 0], [0, b], [0, -b]];
  const x = new Float32Array(4 * d);
  pts.forEach(([s, t], i) => {
    for (let j = 0; j < d; j++) x[i * d + j] = mean[j] + s * u1[j] + t * u2[j];
  });
  const r = pca(x, 4, d, 2);
  assertAlmostEquals(r.explainedVariance[0], (2 * a * a) / 3, 1e-4);
  assertAlmostEquals(r.explainedVariance[1], (2 * b * b) / 3, 1e-4);
  assertAlmostEquals(r.explainedRatio[0] + r.explainedRatio[1], 1, 1e-5);
  const dot = (c: number, u: number[]) => u.reduce((acc, v, j) => acc + v * r.components[c * d + j], 0);
  assertAlmostEquals(Math.abs(dot(0, u1)), 1, 1e-5);
  assertAlmostEquals(Math.abs(dot(1, u2)), 1, 1e-5);
  // projections are ±a on axis 1 and ±b on axis 2
  assertAlmostEquals(Math.abs(r.projection[0]), a, 1e-4);
  assertAlmostEquals(Math.abs(r.projection[1]), 0, 1e-4);
  assertAlmostEquals(Math.abs(r.projection[5]), b, 1e-4);
});

Deno.test("pca: Gaussian data with known principal axes (exact and subspace paths), deterministic", () => {
  for (const d of [8, 1030]) { // 1030 > PCA_EXACT_MAX_DIM takes the subspace-iteration path
    const rng = new Rng(d);
    const n = d > 100 ? 300 : 3000;
    const basis = d > 100 ? null : randomBasis(d, rng);
    const sd = [5, 3, 1]; // the rest of the variance is 0.1²
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < d; c++) {
        const z = rng.normal() * (c < sd.length ? sd[c] : 0.1);
        if (basis) { for (let j = 0; j < d; j++) x[i * d + j] += z * basis[c][j]; }
        else x[i * d + c] += z; // axis-aligned in the large case
      }
    }
    const r = pca(x, n, d, 2);
    for (let c = 0; c < 2; c++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += r.components[c * d + j] * (basis ? basis[c][j] : j === c ? 1 : 0);
      assert(Math.abs(dot) > 0.99, `d=${d}: axis ${c} off by |cos| ${Math.abs(dot)}`);
      // the projections' variance is the reported explained variance
      let m = 0, v = 0;
      for (let i = 0; i < n; i++) m += r.projection[i * 2 + c] / n;
      for (let i = 0; i < n; i++) v += (r.projection[i * 2 + c] - m) ** 2 / (n - 1);
      assertAlmostEquals(v / r.explainedVariance[c], 1, 1e-3);
      assert(
        Math.abs(r.explainedVariance[c] / sd[c] ** 2 - 1) < 0.15,
        `d=${d}: variance ${r.explainedVariance[c]}`,
      );
    }
    const again = pca(x, n, d, 2);
    assertEquals(Array.from(again.projection), Array.from(r.projection), "deterministic");
  }
});

Deno.test("umap: same seed gives the same picture, another seed another; separates clusters", () => {
  const rng = new Rng(4);
  const n = 90, d = 12;
  const x = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 3;
    for (let j = 0; j < d; j++) x[i * d + j] = (j === labels[i] ? 6 : 0) + rng.normal() * 0.3;
  }
  const a = umap(x, n, d, { rng: new Rng(1), nEpochs: 60, nNeighbors: 10 });
  const b = umap(x, n, d, { rng: new Rng(1), nEpochs: 60, nNeighbors: 10 });
  const c = umap(x, n, d, { rng: new Rng(2), nEpochs: 60, nNeighbors: 10 });
  assertEquals(a.length, 2 * n);
  assertEquals(Array.from(a), Array.from(b), "same seed");
  assert(Array.from(a).some((v, i) => v !== c[i]), "different seed");
  // 2-D points keep the clusters: 1-NN in the projection agrees with the label
  const knn2d = knnAccuracyEuclid(a, labels);
  assert(knn2d > 0.95, `clusters not kept in 2-D: 1-NN accuracy ${knn2d}`);
});

function knnAccuracyEuclid(xy: Float32Array, labels: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = -1, bd = Infinity;
    for (let j = 0; j < labels.length; j++) {
      if (j === i) continue;
      const dd = (xy[2 * i] - xy[2 * j]) ** 2 + (xy[2 * i + 1] - xy[2 * j + 1]) ** 2;
      if (dd < bd) {
        bd = dd;
        best = j;
      }
    }
    if (labels[best] === labels[i]) ok++;
  }
  return ok / labels.length;
}

Deno.test("classSeparation: exact on a hand example; clustered data scores higher than random", () => {
  // class 0: e1, e1 (cos 1); class 1: e2, (e1+e2)/√2 (cos 1/√2); inter: mean over 4 pairs of
  // cos(e1,e2)=0, cos(e1,(e1+e2)/√2)=1/√2 (twice), 0 -> (2/√2)/4
  const x = Float32Array.from([1, 0, 2, 0, 0, 3, 1, 1]);
  const s = classSeparation(x, 4, 2, [0, 0, 1, 1]);
  assertAlmostEquals(s.intra, (1 + Math.SQRT1_2) / 2, 1e-6);
  assertAlmostEquals(s.inter, Math.SQRT1_2 / 2, 1e-6);
  assertAlmostEquals(s.gap, 0.5, 1e-6);
  assertEquals(s.classes, 2);

  const rng = new Rng(8);
  const n = 600, d = 32, classes = 6;
  const centers = Array.from({ length: classes }, () => Array.from({ length: d }, () => rng.normal()));
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const clustered = new Float32Array(n * d), random = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      clustered[i * d + j] = centers[labels[i]][j] + 0.3 * rng.normal();
      random[i * d + j] = rng.normal();
    }
  }
  const sc = classSeparation(clustered, n, d, labels), sr = classSeparation(random, n, d, labels);
  assert(sc.gap > 0.5, `clustered gap ${sc.gap}`);
  assert(Math.abs(sr.gap) < 0.05, `random gap ${sr.gap}`);
  const kc = knnAccuracy(clustered, n, d, labels, { k: 5 });
  const kr = knnAccuracy(random, n, d, labels, { k: 5 });
  assert(kc.accuracy > 0.98, `clustered k-NN ${kc.accuracy}`);
  assert(kr.accuracy < 0.35, `random k-NN ${kr.accuracy} (chance 1/6)`);
  assertEquals(kc.queries, n);
});

Deno.test("knnAccuracy: exact leave-one-out votes on a hand-made example", () => {
  // Unit directions (angles in degrees) and labels; cosine neighbours are the nearest angles.
  //  i: 0   1   2    3    4    5
  //  θ: 0   8   20   90   100  50
  //  y: 0   0   1    1    1    0
  const deg = [0, 8, 20, 90, 100, 50];
  const y = [0, 0, 1, 1, 1, 0];
  const x = new Float32Array(
    deg.flatMap((t) => [Math.cos((t * Math.PI) / 180), Math.sin((t * Math.PI) / 180)]),
  );
  // k=1: 0->1 ok, 1->0 ok, 2->1 (y 0) wrong, 3->4 ok, 4->3 ok, 5->2 (y 1) wrong  => 4/6
  assertAlmostEquals(knnAccuracy(x, 6, 2, y, { k: 1 }).accuracy, 4 / 6, 1e-12);
  // k=3: 0->{1,2,5}: 0,1,0 ok; 1->{0,2,5}: 0,1,0 ok; 2->{1,0,5}: 0,0,0 wrong; 3->{4,5,2}: 1,0,1 ok;
  //      4->{3,5,2}: 1,0,1 ok; 5->{2,3,1}: 1,1,0 wrong  => 4/6
  assertAlmostEquals(knnAccuracy(x, 6, 2, y, { k: 3 }).accuracy, 4 / 6, 1e-12);
  // k=2, 1-1 votes are settled by summed similarity: 3->{4 (10°, y 1), 5 (40°, y 0)} -> 1 ok (the
  // smaller class id, 0, would be wrong); 4->{3, 5} -> 1 ok; 0 -> {1, 2} -> 0 ok; 1 -> {0, 2} -> 0 ok;
  // 2 -> {1, 0} wrong; 5 -> {2, 3} wrong  => 4/6
  assertAlmostEquals(knnAccuracy(x, 6, 2, y, { k: 2 }).accuracy, 4 / 6, 1e-12);
  // Exact tie in count and similarity -> smaller class id: A=(1,0) y 2, B=(0,1) y 1, Q=(1,1) y 1, k=2.
  // A -> {B, Q} both 1: wrong; B -> {Q (cos 45°) y 1, A (0) y 2} -> 1 ok; Q -> {A, B} equal sims -> 1 ok.
  assertAlmostEquals(
    knnAccuracy(Float32Array.from([1, 0, 0, 1, 1, 1]), 3, 2, [2, 1, 1], { k: 2 }).accuracy,
    2 / 3,
  );
  // scale does not matter (cosine); ignored rows neither count nor serve as neighbours
  const scaled = x.map((v, i) => v * (1 + (i >> 1)));
  assertAlmostEquals(knnAccuracy(scaled, 6, 2, y, { k: 1 }).accuracy, 4 / 6, 1e-12);
  const withIgnored = new Float32Array([...x, 1, 0.05]);
  assertAlmostEquals(knnAccuracy(withIgnored, 7, 2, [...y, 255], { k: 1 }).accuracy, 4 / 6, 1e-12);
  assertThrows(() => knnAccuracy(x, 6, 2, y, { k: 6 }), "need more than k");
  // more rows than maxQueries: a seeded subset of queries, reproducible
  const big = knnAccuracy(x, 6, 2, y, { k: 1, maxQueries: 3, rng: new Rng(1) });
  assertEquals(big.queries, 3);
  assertEquals(knnAccuracy(x, 6, 2, y, { k: 1, maxQueries: 3, rng: new Rng(1) }).accuracy, big.accuracy);
});

Deno.test("l2NormalizeRows: unit rows, zero rows stay zero", () => {
  const u = l2NormalizeRows(Float32Array.from([3, 4, 0, 0]), 2, 2);
  assertEquals(Array.from(u), [Math.fround(0.6), Math.fround(0.8), 0, 0]);
});

Deno.test("compareFeatures: same pixels for both models, measures rank clustered above noisy, figure", () => {
  const rng = new Rng(21);
  const n = 400, d = 16, classes = 4;
  const labels = Int32Array.from({ length: n }, (_, i) => (i % 10 === 9 ? 255 : i % classes));
  const centers = Array.from({ length: classes }, () => Array.from({ length: d }, () => rng.normal()));
  const tight = new Float32Array(n * d), loose = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const c = labels[i] === 255 ? 0 : labels[i];
      tight[i * d + j] = centers[c][j] + 0.2 * rng.normal();
      loose[i * d + j] = 0.3 * centers[c][j] + rng.normal();
    }
  }
  for (const projection of ["pca", "umap"] as const) {
    const r = compareFeatures(
      [{ title: "CE only", embeddings: loose }, { title: "CE + contrast", embeddings: tight }],
      { labels, dim: d, rng: new Rng(5), perClass: 40, projections: [projection], umap: { nEpochs: 40 } },
    );
    const figure = featureSpaceFigure(r, projection);
    const measures = r.panels.map((p) => p.measures);
    assertEquals(r.sampled, [40, 40, 40, 40]);
    assert(measures[1].separation.gap > measures[0].separation.gap, "contrast model more structured");
    assert(measures[1].knn.accuracy >= measures[0].knn.accuracy);
    const panels = new Set(figure.data.map((t) => t.xaxis));
    assertEquals([...panels], ["x", "x2"]);
    assertEquals(figure.data.length, 2 * classes);
    // the same sampled pixels in both panels: the class sizes per panel agree
    const sizes = figure.data.map((t) => (t.x as number[]).length);
    assertEquals(sizes, new Array(2 * classes).fill(40));
    assert(figure.title.includes(projection.toUpperCase()));
  }
});
