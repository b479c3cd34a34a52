/** PixelContrastLoss: contrast groups, robustness (never NaN), diagnostics, memory-bank contrast and mining. */
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { type Tensor2D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { Tape } from "../../lib/backend/tape.ts";
import { Rng } from "../../lib/util/rng.ts";
import { pixelContrastLoss, readContrastDiagnostics } from "../../lib/losses/pixel_contrast.ts";
import { contrastOptionsOf, type PixelContrastOptionsInput } from "../../lib/run/options.ts";
import { sampleHardAnchors } from "../../lib/losses/sampler.ts";
import { MemoryBank } from "../../lib/losses/memory_bank.ts";
import { memoryPlan } from "../../lib/losses/contrast_plan.ts";
import { type Batch, disposeBatch, makeBatch, sliceBatch } from "./_batch.ts";

await initBackend();

const small = { maxViews: 5, maxSamples: 40, draw: "identity" as const };

/** The term, its gradient w.r.t. the embeddings (recorded on a tape, as the trainer does) and its diagnostics. */
async function lossAndGrad(b: Batch, opts: PixelContrastOptionsInput, ctx = {}) {
  const tape = new Tape();
  const r = await pixelContrastLoss(
    { logits4: b.logits4, embed: b.embed, labels: b.labels },
    contrastOptionsOf(opts),
    {
      ...ctx,
      tape,
    },
  );
  const { value, grad } = tf.valueAndGrad(() => tape.replay(r.loss))(b.embed);
  const out = {
    value: (await value.data())[0],
    grad: (await grad.data()) as Float32Array,
    diag: await readContrastDiagnostics(r),
  };
  tf.dispose([value, grad, r.loss]);
  return out;
}

Deno.test("contrast groups: batch of 4 with group size 2 = mean of the two pairs; caps per group", async () => {
  const before = tf.memory().numTensors;
  const b = makeBatch({ n: 4, classesOf: (i) => [[0, 1, 2], [1, 2, 3], [0, 3], [2, 3, 1, 0]][i] });
  const all = await lossAndGrad(b, { ...small, contrastGroupSize: 2 });
  const p0 = sliceBatch(b, 0, 2), p1 = sliceBatch(b, 2, 4);
  const a0 = await lossAndGrad(p0, { ...small, contrastGroupSize: 2 }),
    a1 = await lossAndGrad(p1, { ...small, contrastGroupSize: 2 });
  assert(
    Math.abs(all.value - (a0.value + a1.value) / 2) <= 1e-6 * all.value,
    `${all.value} vs pairs ${a0.value}, ${a1.value}`,
  );
  assertEquals(all.diag.groups.map((g) => [g.firstImage, g.numImages, g.nView]), [[0, 2, 5], [2, 2, 5]]);
  // whole batch: 12 (image, class) pairs share max_samples 40 -> n_view 3
  const whole = await lossAndGrad(b, { ...small, contrastGroupSize: 0 });
  assertEquals(whole.diag.groups.map((g) => [g.totalClasses, g.nView]), [[12, 3]]);
  assert(
    whole.diag.note.includes("whole batch") && all.diag.note.includes("groups of 2"),
    "note states the grouping",
  );
  assert(all.grad.every(Number.isFinite) && whole.grad.every(Number.isFinite));
  disposeBatch(p0);
  disposeBatch(p1);
  disposeBatch(b);
  assert(tf.memory().numTensors === before, `leaked ${tf.memory().numTensors - before}`);
});

Deno.test("robustness: single class -> 0, no positives -> 0, all ignored -> 0; never NaN", async () => {
  // single class in the batch: no negatives, every log-probability is exactly 0
  const one = makeBatch({ classesOf: () => [2] });
  const r1 = await lossAndGrad(one, small);
  assertEquals(r1.value, 0, "single class");
  assert(r1.grad.every((g) => g === 0), "zero gradient");
  disposeBatch(one);
  // max_views 1 and each class in one image only: every anchor row lacks a positive -> left out -> 0
  const lonely = makeBatch({ classesOf: (i) => (i === 0 ? [0] : [1]) });
  const r2 = await lossAndGrad(lonely, { ...small, maxViews: 1 });
  assertEquals(r2.value, 0, "no positives");
  assertEquals(r2.diag.rowsWithoutPositive, 2);
  assert(r2.grad.every((g) => g === 0 && Number.isFinite(g)));
  disposeBatch(lonely);
  // a class without positives next to classes with: that row is left out, the others averaged
  const mixed = makeBatch({ classesOf: (i) => (i === 0 ? [0, 1] : [1]) });
  const r3 = await lossAndGrad(mixed, { ...small, maxViews: 1 });
  assertEquals(r3.diag.rowsWithoutPositive, 1);
  assert(Number.isFinite(r3.value) && r3.value > 0, `finite positive loss, got ${r3.value}`);
  disposeBatch(mixed);
  // every pixel ignored
  const ign = makeBatch({ classesOf: () => [255] });
  const r4 = await lossAndGrad(ign, small);
  assertEquals([r4.value, r4.diag.emptyGroups, r4.diag.anchors], [0, 1, 0]);
  assert(r4.grad.every((g) => g === 0));
  disposeBatch(ign);
});

Deno.test("diagnostics: counts per class, hard/easy, mean similarities (float64 check)", async () => {
  const b = makeBatch({ seed: 3 });
  const r = await lossAndGrad(b, small);
  const d = r.diag;
  assertEquals(d.anchors, 6 * 5, "6 (image, class) pairs x 5 views");
  assertEquals(d.anchorsPerClass.reduce((s, v) => s + v, 0), d.anchors);
  assertEquals(d.anchorsPerClass, [5, 10, 10, 5]);
  assertEquals(d.hardAnchors + d.easyAnchors, d.anchors);
  assertEquals(d.keepRules.a + d.keepRules.b + d.keepRules.c, 6);
  // recompute the anchors (identity draw) and their mean similarities in float64
  const preds = tf.tidy(() => tf.argMax(b.logits4, -1).dataSync() as Int32Array);
  const s = sampleHardAnchors(b.labelsSmall, preds, 2, 64, {
    maxSamples: 40,
    maxViews: 5,
    ignoreIndex: 255,
    draw: "identity",
  });
  const rows = Array.from(s.indices, (p) => Array.from(b.embedData.subarray(p * 4, p * 4 + 4)));
  const labs = Array.from(s.indices, (_, i) => s.classIds[Math.floor(i / s.nView)]);
  let sp = 0, np = 0, sn = 0, nn = 0;
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < rows.length; j++) {
      const cos = rows[i].reduce((t, x, k) => t + x * rows[j][k], 0);
      if (labs[i] === labs[j] && i !== j) (sp += cos, np++);
      if (labs[i] !== labs[j]) (sn += cos, nn++);
    }
  }
  assert(Math.abs(d.meanPosSim! - sp / np) < 1e-5, `mean pos sim ${d.meanPosSim} vs ${sp / np}`);
  assert(Math.abs(d.meanNegSim! - sn / nn) < 1e-5, `mean neg sim ${d.meanNegSim} vs ${sn / nn}`);
  disposeBatch(b);
});

Deno.test("random draws: reproducible from the seed; an Rng is required", async () => {
  const b = makeBatch({ seed: 4 });
  const o = { maxViews: 5, maxSamples: 20 };
  const x = (await lossAndGrad(b, o, { rng: new Rng(11) })).value;
  const y = (await lossAndGrad(b, o, { rng: new Rng(11) })).value;
  assertEquals(x, y);
  await assertRejects(
    () => pixelContrastLoss({ logits4: b.logits4, embed: b.embed, labels: b.labels }, contrastOptionsOf(o)),
    "Rng",
  );
  disposeBatch(b);
});

/** Float64 reference of anchors vs a contrast set (positives: same label, minus column r when removeDiag). */
function memoryLoss64(
  rows: number[][],
  labs: number[],
  set: number[][],
  setLabs: number[],
  removeDiag: boolean,
  t = 0.1,
  tb = 0.07,
) {
  let total = 0, valid = 0;
  rows.forEach((a, r) => {
    const s = set.map((q) => q.reduce((acc, x, k) => acc + x * a[k], 0) / t);
    let neg = 0;
    s.forEach((v, q) => setLabs[q] !== labs[r] && (neg += Math.exp(v)));
    let acc = 0, n = 0;
    s.forEach((v, q) => {
      if (setLabs[q] !== labs[r] || (removeDiag && q === r)) return;
      acc += v - Math.log(Math.exp(v) + neg);
      n++;
    });
    if (n > 0) {
      total += (-(t / tb) * acc) / n;
      valid++;
    }
  });
  return total / valid;
}

for (const publicCode of [false, true]) {
  Deno.test(`memory contrast (${publicCode ? "public code" : "intended"}): anchors vs the queues, float64 check; queues updated`, async () => {
    const b = makeBatch({ seed: 5 });
    const bank = new MemoryBank({
      numClasses: 4,
      dim: 4,
      pixelSize: 3,
      segmentSize: 2,
      pixelUpdateFreq: 2,
      reproducePublicCode: publicCode,
      publicLabelStride: 4,
      ignoreIndex: 255,
    }, new Rng(6));
    const state0 = bank.getState();
    const set = (() => {
      const f = bank.contrastFeatures();
      const data = Array.from(f.dataSync());
      if (publicCode) f.dispose();
      return {
        rows: Array.from({ length: data.length / 4 }, (_, i) => data.slice(i * 4, i * 4 + 4)),
        labs: Array.from(bank.contrastLabels()),
      };
    })();
    const opts = { ...small, memory: { enabled: true, reproducePublicCode: publicCode } };
    const r = await lossAndGrad(b, opts, { memory: bank, rng: new Rng(7) });
    // the same anchors by the host sampler, view-major
    const preds = tf.tidy(() => tf.argMax(b.logits4, -1).dataSync() as Int32Array);
    const s = sampleHardAnchors(b.labelsSmall, preds, 2, 64, {
      maxSamples: 40,
      maxViews: 5,
      ignoreIndex: 255,
      draw: "identity",
    });
    const rows: number[][] = [], labs: number[] = [];
    for (let v = 0; v < s.nView; v++) {
      for (let a = 0; a < s.totalClasses; a++) {
        const p = s.indices[a * s.nView + v];
        rows.push(Array.from(b.embedData.subarray(p * 4, p * 4 + 4)));
        labs.push(s.classIds[a]);
      }
    }
    const want = memoryLoss64(rows, labs, set.rows, set.labs, publicCode);
    assert(Math.abs(r.value - want) <= 1e-5 * want, `memory loss ${r.value} vs float64 ${want}`);
    assertEquals(r.diag.memory!.contrastSetSize, 20);
    assert(r.grad.every(Number.isFinite));
    // the batch was enqueued after the loss
    const st = bank.getState();
    assert(st.segmentPtr.some((p, c) => p !== state0.segmentPtr[c]), "segment pointers moved");
    if (!publicCode) assertEquals(st.segmentPtr[0], 1, "class 0 enqueued once (image 0)");
    else assertEquals(st.segmentPtr[0], 0, "public code skips class 0");
    bank.dispose();
    disposeBatch(b);
  });
}

Deno.test("memory mining: hardest and semi-hard select the right pairs", async () => {
  const R = 6, Q = 40;
  const rng = new Rng(8);
  const rnd = (n: number) =>
    Array.from({ length: n }, () => {
      const v = [rng.normal(), rng.normal(), rng.normal()];
      return v.map((x) => x / Math.hypot(...v));
    });
  const A = rnd(R), S = rnd(Q);
  const al = Int32Array.from([0, 1, 2, 0, 1, 2]);
  const ql = Int32Array.from({ length: Q }, (_, i) => i % 4);
  const anchors = tf.tensor2d(A) as Tensor2D, contrast = tf.tensor2d(S) as Tensor2D;
  const cos = (r: number, q: number) => A[r].reduce((t, x, k) => t + x * S[q][k], 0);
  const base = {
    temperature: 0.1,
    baseTemperature: 0.07,
    miningNegatives: 4,
    miningPositives: 3,
    semiHardFraction: 0.25,
    removeDiagonal: false,
  };
  const hard = await memoryPlan(anchors, al, contrast, ql, { ...base, mining: "hardest" });
  const hn = hard.neg.arraySync(), hp = hard.pos.arraySync();
  for (let r = 0; r < R; r++) {
    const negs = [...Array(Q).keys()].filter((q) => ql[q] !== al[r]).sort((x, y) => cos(r, y) - cos(r, x));
    const poss = [...Array(Q).keys()].filter((q) => ql[q] === al[r]).sort((x, y) => cos(r, x) - cos(r, y));
    assertEquals(
      hn[r].flatMap((v, q) => (v ? [q] : [])),
      negs.slice(0, 4).sort((x, y) => x - y),
      `row ${r} hardest negatives`,
    );
    assertEquals(
      hp[r].flatMap((v, q) => (v ? [q] : [])),
      poss.slice(0, 3).sort((x, y) => x - y),
      `row ${r} hardest positives`,
    );
  }
  const semi = await memoryPlan(anchors, al, contrast, ql, { ...base, mining: "semi_hard" }, new Rng(9));
  const sn = semi.neg.arraySync(), sp = semi.pos.arraySync();
  for (let r = 0; r < R; r++) {
    const negs = [...Array(Q).keys()].filter((q) => ql[q] !== al[r]).sort((x, y) => cos(r, y) - cos(r, x));
    const poss = [...Array(Q).keys()].filter((q) => ql[q] === al[r]).sort((x, y) => cos(r, x) - cos(r, y));
    const negPool = new Set(negs.slice(0, Math.ceil(0.25 * negs.length))); // 30 negatives -> 8
    const posPool = new Set(poss.slice(0, Math.ceil(0.25 * poss.length))); // 10 positives -> 3
    const selN = sn[r].flatMap((v, q) => (v ? [q] : [])), selP = sp[r].flatMap((v, q) => (v ? [q] : []));
    assertEquals(selN.length, 4, `row ${r}: K_n negatives`);
    assert(selN.every((q) => negPool.has(q)), `row ${r}: negatives from the nearest 25%`);
    assertEquals(selP.length, 3);
    assert(selP.every((q) => posPool.has(q)), `row ${r}: positives from the farthest 25%`);
  }
  assertEquals([hard.posPairs, hard.negPairs, semi.posPairs, semi.negPairs], [18, 24, 18, 24]);
  tf.dispose([anchors, contrast, hard.pos, hard.neg, semi.pos, semi.neg]);
});

Deno.test("memory + mining through pixelContrastLoss: finite loss and gradient", async () => {
  const b = makeBatch({ seed: 12 });
  for (const mining of ["hardest", "semi_hard"] as const) {
    const bank = new MemoryBank({
      numClasses: 4,
      dim: 4,
      pixelSize: 6,
      segmentSize: 3,
      pixelUpdateFreq: 2,
      reproducePublicCode: false,
      publicLabelStride: 8,
      ignoreIndex: 255,
    }, new Rng(1));
    const r = await lossAndGrad(b, {
      ...small,
      memory: { enabled: true, mining, miningNegatives: 5, miningPositives: 2 },
    }, {
      memory: bank,
      rng: new Rng(2),
    });
    assert(Number.isFinite(r.value) && r.value > 0, `${mining}: loss ${r.value}`);
    assert(r.grad.every(Number.isFinite), `${mining}: finite gradient`);
    assertEquals(r.diag.memory!.mining, mining);
    bank.dispose();
  }
  await assertRejects(
    () =>
      pixelContrastLoss(
        { logits4: b.logits4, embed: b.embed, labels: b.labels },
        contrastOptionsOf({ ...small, memory: { enabled: true } }),
      ),
    "no MemoryBank",
  );
  disposeBatch(b);
});

Deno.test("gradient-norm diagnostic equals the autodiff norm", async () => {
  const b = makeBatch({ seed: 13 });
  const r = await lossAndGrad(b, small, { gradNorm: true });
  const norm = Math.sqrt(r.grad.reduce((s, g) => s + g * g, 0));
  assert(Math.abs(r.diag.gradNorm! - norm) <= 1e-5 * norm, `${r.diag.gradNorm} vs ${norm}`);
  disposeBatch(b);
});
