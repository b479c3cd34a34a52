import { assert, assertAlmostEquals, assertClose, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { ConfusionMatrix, type CountingStrategy } from "../../lib/eval/confusion.ts";
import { computeMetrics, formatMetrics } from "../../lib/eval/metrics.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend();

async function metricsOf(pred: number[], label: number[], shape: number[], C: number) {
  const cm = new ConfusionMatrix(C);
  const p = tf.tensor(pred, shape, "int32"), l = tf.tensor(label, shape, "int32");
  await cm.add(p, l);
  p.dispose();
  l.dispose();
  return { cm, m: computeMetrics(cm) };
}

Deno.test("G8: metrics of docs/method.md §11", async () => {
  const { m } = await metricsOf([0, 1, 1, 2, 2, 0], [0, 0, 1, 2, 255, 1], [1, 2, 3], 3);
  assertEquals(m.intersect, [1, 1, 1]);
  assertEquals(m.predArea, [2, 2, 1]);
  assertEquals(m.labelArea, [2, 2, 1]);
  assertClose(m.classIoU, [1 / 3, 1 / 3, 1], 1e-12);
  assertAlmostEquals(m.mIoU, 0.5555556, 1e-7);
  assertClose(m.classAcc, [0.5, 0.5, 1], 1e-12);
  assertAlmostEquals(m.acc, 0.6, 1e-12);
  assertAlmostEquals(m.kappa, 0.375, 1e-12);
  assertEquals(m.numPixels, 5);
});

Deno.test("absent classes count as IoU 0 in the plain mean over all classes", async () => {
  // class 3 never appears in label or prediction: its IoU is 0 and it still divides the mean by 4.
  const { m } = await metricsOf([0, 1, 1, 2, 2, 0], [0, 0, 1, 2, 255, 1], [6], 4);
  assertEquals(m.classIoU[3], 0);
  assertAlmostEquals(m.mIoU, (1 / 3 + 1 / 3 + 1) / 4, 1e-12);
  assertEquals(m.classAcc[3], 0);
  assertEquals(m.classRecall[3], 0);
});

/** Straightforward per-pixel definitions, written independently of the confusion matrix. */
function reference(pred: Int32Array, label: Int32Array, C: number) {
  const inter = new Array(C).fill(0), pa = new Array(C).fill(0), la = new Array(C).fill(0);
  let correct = 0, n = 0;
  for (let i = 0; i < pred.length; i++) {
    if (label[i] === 255) continue;
    n++;
    pa[pred[i]]++;
    la[label[i]]++;
    if (pred[i] === label[i]) {
      inter[label[i]]++;
      correct++;
    }
  }
  const iou = inter.map((v, c) => (pa[c] + la[c] - v === 0 ? 0 : v / (pa[c] + la[c] - v)));
  let pe = 0;
  for (let c = 0; c < C; c++) pe += (pa[c] / n) * (la[c] / n);
  const po = correct / n;
  return {
    iou,
    miou: iou.reduce((a, b) => a + b, 0) / C,
    acc: po,
    kappa: (po - pe) / (1 - pe),
    precision: inter.map((v, c) => (pa[c] ? v / pa[c] : 0)),
    recall: inter.map((v, c) => (la[c] ? v / la[c] : 0)),
  };
}

const STRATEGIES: CountingStrategy[] = ["device", "host"];

for (const strategy of STRATEGIES) {
  Deno.test(`metrics agree with an independent per-pixel computation on random data (${strategy} counting)`, async () => {
    await randomAgreement(strategy);
  });
}

async function randomAgreement(strategy: CountingStrategy) {
  const rng = new Rng(7);
  const C = 19;
  const cm = new ConfusionMatrix(C, 255, strategy);
  const allP: number[] = [], allL: number[] = [];
  const before = tf.memory().numTensors;
  for (let b = 0; b < 3; b++) {
    const n = 2 * 37 * 53;
    const pred = new Int32Array(n), label = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      // correlated prediction so that IoUs are spread out; class 18 never labelled, 17 never predicted
      label[i] = rng.next() < 0.1 ? 255 : rng.int(18);
      pred[i] = rng.next() < 0.6 && label[i] !== 255 ? label[i] : rng.int(C);
      if (pred[i] === 17) pred[i] = 0;
    }
    allP.push(...pred);
    allL.push(...label);
    const p = tf.tensor3d(pred, [2, 37, 53], "int32"), l = tf.tensor3d(label, [2, 37, 53], "int32");
    await cm.add(p, l);
    p.dispose();
    l.dispose();
  }
  assertEquals(tf.memory().numTensors, before, "tensors leaked");
  const m = computeMetrics(cm);
  const r = reference(Int32Array.from(allP), Int32Array.from(allL), C);
  assertClose(m.classIoU, r.iou, 1e-12, 1e-15);
  assertAlmostEquals(m.mIoU, r.miou, 1e-12);
  assertAlmostEquals(m.acc, r.acc, 1e-12);
  assertAlmostEquals(m.kappa, r.kappa, 1e-12);
  assertClose(m.classAcc, r.precision, 1e-12, 1e-15);
  assertClose(m.classRecall, r.recall, 1e-12, 1e-15);
  assertEquals(m.classRecall[18], 0);
  assertEquals(m.classAcc[17], 0);
  assert(m.mIoU > 0.2 && m.mIoU < 0.9, `unexpected mIoU ${m.mIoU}`);
}

for (const strategy of STRATEGIES) {
  Deno.test(`the ignore index wins even inside [0, C) (${strategy} counting)`, async () => {
    const cm = new ConfusionMatrix(3, 0, strategy);
    const p = tf.tensor1d([0, 1, 2, 2], "int32"), l = tf.tensor1d([0, 0, 2, 1], "int32");
    await cm.add(p, l);
    assertEquals(cm.toRows(), [[0, 0, 0], [0, 0, 1], [0, 0, 1]]);
    tf.dispose([p, l]);
  });
}

for (const strategy of STRATEGIES) {
  Deno.test(`labels outside the class set (other than ignore) are a clear error (${strategy})`, async () => {
    await badLabels(strategy);
  });
}

async function badLabels(strategy: CountingStrategy) {
  const cm = new ConfusionMatrix(3, 255, strategy);
  const p = tf.tensor1d([0, 1, 2], "int32"), l = tf.tensor1d([0, 7, 255], "int32");
  await assertRejects(
    () => cm.add(p, l, "frankfurt_gtFine"),
    /frankfurt_gtFine: 1 pixels have labels outside/,
  );
  const badP = tf.tensor1d([0, 3, 1], "int32"), okL = tf.tensor1d([0, 1, 1], "int32");
  await assertRejects(() => cm.add(badP, okL), /predicted class ids lie outside/);
  // nothing was counted by the failed calls
  assertEquals(cm.total, 0);
  tf.dispose([p, l, badP, okL]);
}

Deno.test("merge and rows round-trip; formatMetrics prints the mode beside the numbers", async () => {
  const a = await metricsOf([0, 1, 1], [0, 0, 1], [3], 2);
  const b = await metricsOf([1, 1], [1, 1], [2], 2);
  const merged = ConfusionMatrix.fromRows(a.cm.toRows()).merge(b.cm);
  assertEquals(merged.toRows(), [[1, 1], [0, 3]]);
  const text = formatMetrics(computeMetrics(merged, ["sky", "road"]), "slide(crop 8x8, stride 4x4)");
  assert(text.startsWith("[EVAL slide(crop 8x8, stride 4x4)] mIoU: 0.6250"), text);
  assert(/road\s+0\.7500\s+0\.7500\s+1\.0000/.test(text), text);
});
