/** G5 (docs/method.md §11) and the sampling rules of §4.3 on host arrays. */
import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { Rng } from "../../lib/util/rng.ts";
import { type AnchorSample, sampleHardAnchors } from "../../lib/losses/sampler.ts";

const IGN = 255;

/**
 * Builds one image of P pixels from (class, hard, easy) triples plus ignore and "other" pixels, laid out
 * in a seeded random order. Hard pixels get the prediction (class + 1) % 19.
 */
function image(
  spec: Array<[number, number, number]>,
  P: number,
  rng: Rng,
): { labels: number[]; preds: number[] } {
  const px: Array<[number, number]> = [];
  for (const [c, hard, easy] of spec) {
    for (let i = 0; i < hard; i++) px.push([c, (c + 1) % 19]);
    for (let i = 0; i < easy; i++) px.push([c, c]);
  }
  while (px.length < P) px.push([IGN, 0]);
  if (px.length !== P) throw new Error("spec larger than the image");
  rng.shuffle(px);
  return { labels: px.map((p) => p[0]), preds: px.map((p) => p[1]) };
}

function g5(rng: Rng) {
  const P = 20;
  // image0 {1: 10 (hard 1, easy 9), 2: 5 (hard 3, easy 2), 4: 3, 255: 2}; image1 {1: 6 (5, 1), 3: 8 (0, 8)}
  const i0 = image([[1, 1, 9], [2, 3, 2], [4, 1, 2]], P, rng);
  const i1 = image([[1, 5, 1], [3, 0, 8]], P, rng);
  return {
    P,
    labels: Int32Array.from([...i0.labels, ...i1.labels]),
    preds: Int32Array.from([...i0.preds, ...i1.preds]),
  };
}

function checkMembership(s: AnchorSample, labels: Int32Array, preds: Int32Array) {
  for (let a = 0; a < s.totalClasses; a++) {
    const k = s.keeps[a];
    const seen = new Set<number>();
    for (let v = 0; v < s.nView; v++) {
      const p = s.indices[a * s.nView + v];
      assert(!seen.has(p), `pair ${a}: pixel ${p} drawn twice`);
      seen.add(p);
      assert(Math.floor(p / 20) === k.image, `pair ${a}: pixel ${p} is not in image ${k.image}`);
      assertEquals(labels[p], k.classId, `pair ${a}: label of pixel ${p}`);
      const isHard = preds[p] !== labels[p];
      // hard first, then easy
      assertEquals(isHard, v < k.keepHard, `pair ${a} view ${v}: hard/easy order`);
    }
  }
}

Deno.test("G5: sampler counts and keep rules (max_samples 20, max_views 4)", () => {
  const rng = new Rng(5);
  const { P, labels, preds } = g5(rng);
  const s = sampleHardAnchors(labels, preds, 2, P, {
    maxSamples: 20,
    maxViews: 4,
    ignoreIndex: IGN,
    draw: "random",
  }, rng);
  assertEquals(s.classesPerImage, [[1, 2], [1, 3]], "classes per image");
  assertEquals(s.totalClasses, 4);
  assertEquals(s.nView, 4);
  assertEquals(Array.from(s.classIds), [1, 2, 1, 3], "labels");
  assertEquals(
    s.keeps.map((k) => [k.image, k.classId, k.keepHard, k.keepEasy, k.rule]),
    [[0, 1, 1, 3, "c"], [0, 2, 2, 2, "a"], [1, 1, 3, 1, "b"], [1, 3, 0, 4, "c"]],
    "keep (hard, easy) and rule",
  );
  assertEquals(s.indices.length, 16);
  checkMembership(s, labels, preds);
});

Deno.test("sampler: seeded draws are reproducible and differ between seeds", () => {
  const { P, labels, preds } = g5(new Rng(1));
  const o = { maxSamples: 20, maxViews: 4, ignoreIndex: IGN, draw: "random" as const };
  const a = sampleHardAnchors(labels, preds, 2, P, o, new Rng(42));
  const b = sampleHardAnchors(labels, preds, 2, P, o, new Rng(42));
  assertEquals(Array.from(a.indices), Array.from(b.indices), "same seed");
  let differ = false;
  for (let seed = 0; seed < 10 && !differ; seed++) {
    const c = sampleHardAnchors(labels, preds, 2, P, o, new Rng(1000 + seed));
    differ = c.indices.some((v, i) => v !== a.indices[i]);
  }
  assert(differ, "ten other seeds all drew the same anchors");
});

Deno.test("sampler: draws are uniform without replacement (easy set of 9, keep 3)", () => {
  // image0 class 1: 9 easy pixels, keep 3 of them (rule c) -> each chosen with probability 1/3
  const { P, labels, preds } = g5(new Rng(9));
  const o = { maxSamples: 20, maxViews: 4, ignoreIndex: IGN, draw: "random" as const };
  const rng = new Rng(123);
  const hits = new Map<number, number>();
  const trials = 3000;
  for (let t = 0; t < trials; t++) {
    const s = sampleHardAnchors(labels, preds, 2, P, o, rng);
    for (let v = 1; v < 4; v++) {
      const p = s.indices[v];
      hits.set(p, (hits.get(p) ?? 0) + 1);
    }
  }
  assertEquals(hits.size, 9, "every easy pixel of class 1 is reachable");
  for (const [p, n] of hits) {
    const f = n / trials;
    assert(Math.abs(f - 1 / 3) < 0.04, `pixel ${p} drawn with frequency ${f}, expected 1/3`);
  }
});

Deno.test("sampler: identity mode takes the first k in ascending pixel order, hard first", () => {
  const { P, labels, preds } = g5(new Rng(2));
  const s = sampleHardAnchors(labels, preds, 2, P, {
    maxSamples: 20,
    maxViews: 4,
    ignoreIndex: IGN,
    draw: "identity",
  });
  for (let a = 0; a < s.totalClasses; a++) {
    const k = s.keeps[a];
    const hard: number[] = [], easy: number[] = [];
    for (let p = k.image * P; p < (k.image + 1) * P; p++) {
      if (labels[p] !== k.classId) continue;
      (preds[p] === labels[p] ? easy : hard).push(p);
    }
    const want = [...hard.slice(0, k.keepHard), ...easy.slice(0, k.keepEasy)];
    assertEquals(Array.from(s.indices.subarray(a * 4, a * 4 + 4)), want, `pair ${a}`);
  }
});

Deno.test("sampler: count rule is strict (> max_views), ignore excluded, n_view = min(floor(S/A), V)", () => {
  const rng = new Rng(3);
  // class 1: exactly 4 pixels (= max_views, excluded); class 2: 5 (included); ignore: 9 pixels
  const img = image([[1, 2, 2], [2, 2, 3], [IGN, 0, 0]], 20, rng);
  const s = sampleHardAnchors(Int32Array.from(img.labels), Int32Array.from(img.preds), 1, 20, {
    maxSamples: 3,
    maxViews: 4,
    ignoreIndex: IGN,
    draw: "identity",
  });
  assertEquals(s.classesPerImage, [[2]]);
  assertEquals(s.nView, 3, "min(floor(3 / 1), 4)");
  // keep rule a with n_view 3: floor(3/2) = 1 hard, 2 easy
  assertEquals([s.keeps[0].keepHard, s.keeps[0].keepEasy, s.keeps[0].rule], [1, 2, "a"]);
});

Deno.test("sampler: empty results (no class qualifies; more pairs than max_samples)", () => {
  const rng = new Rng(4);
  const img = image([[1, 1, 2], [2, 2, 1]], 20, rng);
  const o = { maxSamples: 1024, maxViews: 4, ignoreIndex: IGN, draw: "identity" as const };
  const none = sampleHardAnchors(Int32Array.from(img.labels), Int32Array.from(img.preds), 1, 20, o);
  assertEquals([none.totalClasses, none.nView, none.indices.length], [0, 0, 0]);
  const big = image([[1, 3, 3], [2, 3, 3]], 20, rng);
  const few = sampleHardAnchors(Int32Array.from(big.labels), Int32Array.from(big.preds), 1, 20, {
    ...o,
    maxSamples: 1,
  });
  assertEquals([few.totalClasses, few.nView, few.indices.length], [2, 0, 0], "floor(1 / 2) = 0 views");
});

Deno.test("sampler: all pixels ignored; negative labels and missing Rng are errors", () => {
  const labels = new Int32Array(20).fill(IGN);
  const s = sampleHardAnchors(labels, new Int32Array(20), 1, 20, {
    maxSamples: 10,
    maxViews: 2,
    ignoreIndex: IGN,
    draw: "random",
  }, new Rng(0));
  assertEquals(s.totalClasses, 0);
  const bad = new Int32Array(20).fill(1);
  bad[3] = -2;
  assertThrows(
    () =>
      sampleHardAnchors(bad, new Int32Array(20), 1, 20, {
        maxSamples: 10,
        maxViews: 2,
        ignoreIndex: IGN,
        draw: "identity",
      }),
    "negative label",
  );
  assertThrows(
    () =>
      sampleHardAnchors(labels, new Int32Array(20), 1, 20, {
        maxSamples: 10,
        maxViews: 2,
        ignoreIndex: IGN,
        draw: "random",
      }),
    "needs an Rng",
  );
});

Deno.test("sampler: TORCH ignore label -1 is skipped", () => {
  const labels = new Int32Array(20).fill(-1);
  for (let i = 0; i < 6; i++) labels[i] = 2;
  const s = sampleHardAnchors(labels, new Int32Array(20).fill(2), 1, 20, {
    maxSamples: 10,
    maxViews: 4,
    ignoreIndex: -1,
    draw: "identity",
  });
  assertEquals(s.classesPerImage, [[2]]);
  assertEquals([s.keeps[0].keepHard, s.keeps[0].keepEasy], [0, 4]);
});
