import { assert, assertAlmostEquals, assertClose, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import {
  CITYSCAPES_CLASS_NAMES,
  CITYSCAPES_PALETTE,
  TRAIN_ID_TO_ID,
} from "../../lib/data/cityscapes_labels.ts";
import { readPng } from "../../lib/data/image_io.ts";
import { type EvalSample, evaluate } from "../../lib/eval/evaluate.ts";
import { nearestColorHost, nearestColorPredictor, sampleFrom, syntheticFrame } from "./_fixtures.ts";

await initBackend();

const H = 12, W = 50;
const frames = [1, 2, 3].map((seed) => {
  const f = syntheticFrame(seed, H, W);
  return { ...f, sample: sampleFrom(`synth_00000${seed}_000019_leftImg8bit.png`, f.rgb, f.labelIds, H, W) };
});
const predictor = nearestColorPredictor(CITYSCAPES_PALETTE);

/** Expected metrics from host predictions and plain per-pixel counting. */
function expectedIoU(samples: EvalSample[]) {
  const C = 19;
  const inter = new Array(C).fill(0), union = new Array(C).fill(0);
  let correct = 0, n = 0;
  for (const s of samples) {
    const pred = nearestColorHost(s.rgb!, CITYSCAPES_PALETTE);
    for (let i = 0; i < pred.length; i++) {
      const l = s.label[i];
      if (l === 255) continue;
      n++;
      if (pred[i] === l) {
        inter[l]++;
        union[l]++;
        correct++;
      } else {
        union[l]++;
        union[pred[i]]++;
      }
    }
  }
  const iou = inter.map((v, c) => (union[c] ? v / union[c] : 0));
  return { iou, miou: iou.reduce((a, b) => a + b, 0) / C, acc: correct / n };
}

Deno.test("evaluate: metrics equal an independent host computation; batching does not change them", async () => {
  const samples = frames.map((f) => f.sample);
  const exp = expectedIoU(samples);
  const lines: string[] = [];
  const before = tf.memory().numTensors;
  const r1 = await evaluate(predictor, samples, {
    numClasses: 19,
    classNames: CITYSCAPES_CLASS_NAMES,
    progressWrite: (line) => lines.push(line),
  });
  assertEquals(tf.memory().numTensors, before, "evaluate leaked tensors");
  assertClose(r1.metrics.classIoU, exp.iou, 1e-12, 1e-15);
  assertAlmostEquals(r1.metrics.mIoU, exp.miou, 1e-12);
  assertAlmostEquals(r1.metrics.acc, exp.acc, 1e-12);
  assert(exp.miou > 0.3 && exp.miou < 0.95, `fixture should be neither trivial nor hopeless: ${exp.miou}`);
  assertEquals(r1.mode, "whole");
  assertEquals(r1.numImages, 3);
  assert(r1.summary.startsWith("[EVAL whole] #Images: 3 mIoU: "), r1.summary);
  assert(r1.summary.includes("traffic light"), "per-class table names the classes");
  assert(
    lines.some((l) => l.startsWith("eval whole") && l.includes("3/3") && l.includes("img/s")),
    lines.join("|"),
  );

  // batches of 2 (images of equal size), from an async iterable
  async function* gen() {
    for (const s of samples) yield s;
  }
  const r2 = await evaluate(predictor, gen(), { numClasses: 19, batchSize: 2, progress: false });
  assertEquals(r2.confusion.toRows(), r1.confusion.toRows());
  assertEquals(tf.memory().numTensors, before, "batched evaluate leaked tensors");
});

Deno.test("evaluate: slide and aug modes run end to end and print their mode", async () => {
  const samples = frames.map((f) => f.sample);
  const whole = await evaluate(predictor, samples, { numClasses: 19, progress: false });
  // a per-pixel classifier gives the same classes under sliding windows and flips
  const before = tf.memory().numTensors;
  const slide = await evaluate(predictor, samples, {
    numClasses: 19,
    progress: false,
    isSlide: true,
    cropSize: [16, 8],
    stride: [11, 5],
  });
  assertEquals(slide.mode, "slide(crop 16x8, stride 11x5)");
  assertEquals(slide.confusion.toRows(), whole.confusion.toRows());
  const aug = await evaluate(predictor, samples, {
    numClasses: 19,
    progress: false,
    augEval: true,
    flipHorizontal: true,
  });
  assertEquals(aug.mode, "aug(scales 1; flip h)");
  assertEquals(aug.confusion.toRows(), whole.confusion.toRows());
  assert(aug.summary.startsWith("[EVAL aug(scales 1; flip h)]"), aug.summary);
  assertEquals(tf.memory().numTensors, before, "slide/aug evaluate leaked tensors");
});

Deno.test("evaluate: labels at another size get scores resized to the label size", async () => {
  const [FH, FW] = [24, 200]; // stripes 8 px wide, so that a 2x downscale keeps them
  const f = syntheticFrame(11, FH, FW);
  const fullSample = sampleFrom("full", f.rgb, f.labelIds, FH, FW);
  // image downscaled 2x by nearest picks; the label stays at full size
  const h = FH / 2, w = FW / 2;
  const small = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      small.set(f.rgb.subarray(((2 * y) * FW + 2 * x) * 3, ((2 * y) * FW + 2 * x) * 3 + 3), (y * w + x) * 3);
    }
  }
  const s = sampleFrom("small", small, f.labelIds.subarray(0, h * w), h, w);
  const r = await evaluate(predictor, [{ ...s, label: fullSample.label, labelHeight: FH, labelWidth: FW }], {
    numClasses: 19,
    progress: false,
  });
  assertEquals(r.metrics.numPixels, fullSample.label.filter((v) => v !== 255).length);
  // upsampled half-resolution predictions still mostly hit the full-resolution stripes
  const full = await evaluate(predictor, [fullSample], { numClasses: 19, progress: false });
  assert(r.metrics.acc > 0.6 * full.metrics.acc, `acc ${r.metrics.acc} vs full-size ${full.metrics.acc}`);
});

Deno.test("evaluate: exports trainIds, labelIds (official names), colour and overlays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pc-eval-export-" });
  try {
    const samples = frames.slice(0, 2).map((f) => f.sample);
    await evaluate(predictor, samples, {
      numClasses: 19,
      progress: false,
      exports: { dir, trainIds: true, labelIds: true, color: true, overlay: true, alpha: 0.25 },
    });
    for (const [k, s] of samples.entries()) {
      const stem = `synth_00000${k + 1}_000019`;
      const pred = nearestColorHost(s.rgb!, CITYSCAPES_PALETTE);
      const tid = await readPng(`${dir}/trainIds/${stem}.png`);
      assertEquals([tid.width, tid.height, tid.channels], [W, H, 1]);
      assertEquals(Array.from(tid.data), Array.from(pred));
      const lid = await readPng(`${dir}/labelIds/${stem}_leftImg8bit.png`);
      assertEquals(Array.from(lid.data), Array.from(pred, (p) => TRAIN_ID_TO_ID[p]));
      const col = await readPng(`${dir}/color/${stem}.png`);
      assertEquals(col.channels, 3);
      const ov = await readPng(`${dir}/overlay/${stem}.png`);
      for (const i of [0, 17, 311, H * W - 1]) {
        const c = CITYSCAPES_PALETTE[pred[i]];
        assertEquals(Array.from(col.data.slice(i * 3, i * 3 + 3)), [...c]);
        const blended = [0, 1, 2].map((ch) => Math.round(0.75 * s.rgb![i * 3 + ch] + 0.25 * c[ch]));
        assertEquals(Array.from(ov.data.slice(i * 3, i * 3 + 3)), blended, `overlay pixel ${i}`);
      }
    }
    // names the official evaluator could not match are refused before anything is written
    await assertRejects(
      () =>
        evaluate(predictor, [{ ...frames[0].sample, name: "0001TP_006690.png" }], {
          numClasses: 19,
          progress: false,
          exports: { dir, trainIds: false, labelIds: true },
        }),
      /does not follow Cityscapes' <city>_<seq>_<frame>_leftImg8bit naming/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate: clear errors for bad samples and empty datasets", async () => {
  const s = frames[0].sample;
  await assertRejects(
    () => evaluate(predictor, [{ ...s, image: s.image.subarray(1) }], { numClasses: 19, progress: false }),
    /synth_000001_000019_leftImg8bit.png: image must be a Float32Array of 12x50x3/,
  );
  await assertRejects(
    () => evaluate(predictor, [{ ...s, label: s.label.subarray(1) }], { numClasses: 19, progress: false }),
    /label has 599 values, expected 12x50/,
  );
  await assertRejects(
    () =>
      evaluate(predictor, [{ ...s, label: s.label.map((v) => (v === 3 ? 40 : v)) }], {
        numClasses: 19,
        progress: false,
      }),
    /labels outside \[0, 19\)/,
  );
  await assertRejects(() => evaluate(predictor, [], { numClasses: 19, progress: false }), /no images/);
  await assertRejects(
    () => evaluate(predictor, [s], { numClasses: 11, progress: false }),
    /predicts 19 classes but the dataset has 11/,
  );
});
