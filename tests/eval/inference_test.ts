import { assert, assertClose, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import {
  describeEvalMode,
  inferScores,
  predictClasses,
  resizeBilinear,
  resolveEvalMode,
  type SegPredictor,
  slideInference,
  slideWindows,
} from "../../lib/eval/inference.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend();

/**
 * Logits known in closed form: channel 0 = row index inside the input it was given, channel 1 = column
 * index, channel 2 = 7, channel 3 = the input's first colour channel. Records every input it sees.
 */
class LocalPosition implements SegPredictor {
  inputs: tf.Tensor4D[] = [];
  predict(x: tf.Tensor4D): tf.Tensor4D {
    this.inputs.push(tf.keep(x.clone()));
    const [n, h, w] = x.shape;
    return tf.tidy(() =>
      tf.concat([
        tf.range(0, h).reshape([1, h, 1, 1]).tile([n, 1, w, 1]),
        tf.range(0, w).reshape([1, 1, w, 1]).tile([n, h, 1, 1]),
        tf.fill([n, h, w, 1], 7),
        x.slice([0, 0, 0, 0], [n, h, w, 1]),
      ], 3) as tf.Tensor4D
    );
  }
  dispose() {
    tf.dispose(this.inputs);
    this.inputs = [];
  }
}

function randomImage(rng: Rng, n: number, h: number, w: number): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from({ length: n * h * w * 3 }, () => rng.uniform(-1, 1)), [n, h, w, 3]);
}

/** Independent naive sliding-window reference, pixel by pixel, from PaddleSeg's loop. */
function naiveSlide(img: Float32Array, n: number, h: number, w: number, crop: number[], stride: number[]) {
  const [wc, hc] = crop, [ws, hs] = stride;
  const rows = h <= hc ? 1 : Math.ceil((h - hc) / hs) + 1;
  const cols = w <= wc ? 1 : Math.ceil((w - wc) / ws) + 1;
  const sum = new Float64Array(n * h * w * 4), cnt = new Float64Array(h * w);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let h1 = r * hs, w1 = c * ws;
      const h2 = Math.min(h1 + hc, h), w2 = Math.min(w1 + wc, w);
      h1 = Math.max(h2 - hc, 0);
      w1 = Math.max(w2 - wc, 0);
      for (let b = 0; b < n; b++) {
        for (let y = h1; y < h2; y++) {
          for (let x = w1; x < w2; x++) {
            const o = ((b * h + y) * w + x) * 4;
            sum[o] += y - h1;
            sum[o + 1] += x - w1;
            sum[o + 2] += 7;
            sum[o + 3] += img[((b * h + y) * w + x) * 3];
            if (b === 0) cnt[y * w + x]++;
          }
        }
      }
    }
  }
  return sum.map((v, i) => v / cnt[Math.floor(i / 4) % (h * w)]);
}

Deno.test("bilinear resize is align_corners=False (half-pixel), as Paddle's F.interpolate", () => {
  const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  const y = resizeBilinear(x, 4, 4);
  // PyTorch/Paddle interpolate(bilinear, align_corners=False) of [[1,2],[3,4]] to 4x4:
  assertClose(
    y.dataSync(),
    [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4],
    1e-6,
  );
  tf.dispose([x, y]);
});

Deno.test("slide: worked example 5x7, crop (w4,h3), stride (2,2): windows, coverage and averaging", () => {
  // rows = ceil((5-3)/2)+1 = 2 (second aligned to the bottom: 2..5); cols = ceil((7-4)/2)+1 = 3 with the
  // last one moved left to end at the border (3..7).
  const expected = [
    { y1: 0, y2: 3, x1: 0, x2: 4 },
    { y1: 0, y2: 3, x1: 2, x2: 6 },
    { y1: 0, y2: 3, x1: 3, x2: 7 },
    { y1: 2, y2: 5, x1: 0, x2: 4 },
    { y1: 2, y2: 5, x1: 2, x2: 6 },
    { y1: 2, y2: 5, x1: 3, x2: 7 },
  ];
  assertEquals(slideWindows(5, 7, [4, 3], [2, 2]), expected);
  const rng = new Rng(1);
  const x = randomImage(rng, 1, 5, 7);
  const p = new LocalPosition();
  const before = tf.memory().numTensors;
  const out = slideInference(p, x, [4, 3], [2, 2]);
  assertEquals(tf.memory().numTensors, before + 1 + p.inputs.length, "slide leaked tensors");
  assertEquals(out.shape, [1, 5, 7, 4]);
  assertEquals(p.inputs.map((t) => t.shape), expected.map(() => [1, 3, 4, 3]));
  // each window's input is exactly the crop of the image
  p.inputs.forEach((t, i) => {
    const e = expected[i];
    const crop = x.slice([0, e.y1, e.x1, 0], [1, 3, 4, 3]);
    assertClose(t.dataSync(), crop.dataSync(), 0, 0, `window ${i} input`);
    crop.dispose();
  });
  // expected per pixel from the hand-written window list
  const got = out.dataSync();
  const img = x.dataSync();
  for (let y = 0; y < 5; y++) {
    for (let xx = 0; xx < 7; xx++) {
      const cover = expected.filter((e) => y >= e.y1 && y < e.y2 && xx >= e.x1 && xx < e.x2);
      const mean = (f: (e: typeof cover[0]) => number) => cover.reduce((s, e) => s + f(e), 0) / cover.length;
      const o = (y * 7 + xx) * 4;
      assertClose(
        got.slice(o, o + 4),
        [mean((e) => y - e.y1), mean((e) => xx - e.x1), 7, img[(y * 7 + xx) * 3]],
        1e-6,
        1e-6,
        `pixel ${y},${xx} (${cover.length} windows)`,
      );
    }
  }
  p.dispose();
  tf.dispose([x, out]);
});

Deno.test("slide agrees with a naive per-pixel reference, incl. images smaller than the crop", () => {
  const rng = new Rng(2);
  const cases: Array<[number, number, number, number[], number[]]> = [
    [2, 9, 13, [5, 4], [3, 2]],
    [1, 3, 4, [8, 8], [4, 4]], // smaller than the crop: one window, the whole image
    [1, 3, 10, [4, 4], [3, 3]], // smaller in height only
    [1, 11, 6, [6, 5], [6, 5]], // stride = crop: no overlap except the border-aligned last window
  ];
  for (const [n, h, w, crop, stride] of cases) {
    const x = randomImage(rng, n, h, w);
    const p = new LocalPosition();
    const out = slideInference(p, x, crop as [number, number], stride as [number, number]);
    assertClose(out.dataSync(), naiveSlide(x.dataSync() as Float32Array, n, h, w, crop, stride), 1e-5, 1e-5);
    if (h <= crop[1] && w <= crop[0]) assertEquals(p.inputs.map((t) => t.shape), [[n, h, w, 3]]);
    p.dispose();
    tf.dispose([x, out]);
  }
});

Deno.test("slide with stride larger than the crop is refused", () => {
  assertThrows(() => resolveEvalMode({ isSlide: true, cropSize: [3, 3], stride: [5, 5] }), /--stride 5 5/);
  const x = tf.zeros([1, 10, 10, 3]) as tf.Tensor4D;
  const p = new LocalPosition();
  const before = tf.memory().numTensors;
  assertThrows(() => slideInference(p, x, [3, 3], [5, 5]), /without a window/);
  assertEquals(tf.memory().numTensors, before + p.inputs.length, "error path leaked tensors");
  p.dispose();
  x.dispose();
});

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / s);
}

Deno.test("aug flip: flipped inputs, flipped back logits, softmax summed (h and v)", () => {
  const [h, w] = [4, 6];
  const rng = new Rng(3);
  const x = randomImage(rng, 1, h, w);
  // position logits [row, col, 7, image] scaled down so that softmax stays informative
  const p = new LocalPosition();
  const scaled: SegPredictor = { predict: (t) => tf.tidy(() => p.predict(t).mul(0.3)) };
  const mode = resolveEvalMode({ augEval: true, flipHorizontal: true, flipVertical: true });
  assertEquals(describeEvalMode(mode), "aug(scales 1; flip h+v)");
  const before = tf.memory().numTensors;
  const out = inferScores(scaled, x, mode);
  assertEquals(tf.memory().numTensors, before + 1 + p.inputs.length, "aug leaked tensors");
  // PaddleSeg's order: none, h, v, h+v; each input is the flipped original
  const flips: Array<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
  assertEquals(p.inputs.length, 4);
  const img = x.dataSync();
  flips.forEach(([fh, fv], k) => {
    const seen = p.inputs[k].dataSync();
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const sy = fv ? h - 1 - y : y, sx = fh ? w - 1 - xx : xx;
        for (let c = 0; c < 3; c++) {
          assert(seen[(y * w + xx) * 3 + c] === img[(sy * w + sx) * 3 + c], `flip ${k} input at ${y},${xx}`);
        }
      }
    }
  });
  // output at (y,x): Σ over flips of softmax(logits the predictor produced at the flipped position)
  const got = out.dataSync();
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx++) {
      const e = [0, 0, 0, 0];
      for (const [fh, fv] of flips) {
        const sy = fv ? h - 1 - y : y, sx = fh ? w - 1 - xx : xx;
        // at flipped position (sy,sx) the predictor saw the original pixel (y,x)
        const s = softmax([0.3 * sy, 0.3 * sx, 0.3 * 7, 0.3 * img[(y * w + xx) * 3]]);
        s.forEach((v, c) => (e[c] += v));
      }
      assertClose(got.slice((y * w + xx) * 4, (y * w + xx) * 4 + 4), e, 1e-5, 1e-6, `pixel ${y},${xx}`);
    }
  }
  p.dispose();
  tf.dispose([x, out]);
});

Deno.test("aug scales: each scale resamples the ORIGINAL image to (int(H*s+0.5), int(W*s+0.5))", () => {
  const [h, w] = [7, 10];
  const x = randomImage(new Rng(4), 1, h, w);
  const seen: tf.Tensor4D[] = [];
  // logits constant in space, a different vector per input height: the result is Σ softmax(v(height))
  const vec = (hs: number) => [hs / 3, 1, -hs / 5];
  const p: SegPredictor = {
    predict: (t) => {
      seen.push(tf.keep(t.clone()));
      const [n, hs, ws] = t.shape;
      return tf.tidy(() => tf.tensor1d(vec(hs)).reshape([1, 1, 1, 3]).tile([n, hs, ws, 1]) as tf.Tensor4D);
    },
  };
  const scales = [0.5, 0.75, 1.25, 1.0];
  const out = inferScores(p, x, resolveEvalMode({ augEval: true, scales }));
  // 7*0.5+0.5 = 4 -> 4, 10*0.5+0.5 = 5.5 -> 5; 7*0.75+0.5 = 5.75 -> 5, 8; 9.25 -> 9, 13; 7, 10
  const sizes = [[4, 5], [5, 8], [9, 13], [7, 10]];
  assertEquals(seen.map((t) => t.shape.slice(1, 3)), sizes);
  seen.forEach((t, i) => {
    const ref = tf.image.resizeBilinear(x, sizes[i] as [number, number], false, true);
    assertClose(t.dataSync(), ref.dataSync(), 1e-6, 1e-6, `scale ${scales[i]} input`);
    ref.dispose();
  });
  // and NOT REPRO's chained resampling (scale 0.75 from the 0.5 image)
  const chained = tf.tidy(() =>
    tf.image.resizeBilinear(tf.image.resizeBilinear(x, [4, 5], false, true), [5, 8], false, true)
  );
  const diff = tf.tidy(() => chained.sub(seen[1]).abs().max().dataSync()[0]);
  assert(diff > 1e-3, "scale input looks chained");
  const e = [0, 0, 0];
  for (const [hs] of sizes) softmax(vec(hs)).forEach((v, c) => (e[c] += v));
  const got = out.dataSync();
  for (let i = 0; i < h * w; i++) assertClose(got.slice(i * 3, i * 3 + 3), e, 1e-5, 1e-6, `pixel ${i}`);
  tf.dispose([x, out, chained, ...seen]);
});

Deno.test("predictClasses: argmax of whole-image logits, low-res logits resized, label-size output", () => {
  const rng = new Rng(5);
  const x = randomImage(rng, 2, 6, 8);
  // per-pixel linear classifier: class scores = [r, g, b, -r-g-b]
  const linear: SegPredictor = {
    predict: (t) => tf.tidy(() => tf.concat([t, t.sum(3, true).neg()], 3) as tf.Tensor4D),
  };
  const pred = predictClasses(linear, x, undefined, undefined, 4);
  const img = x.dataSync();
  const exp = new Int32Array(2 * 6 * 8);
  for (let i = 0; i < exp.length; i++) {
    const v = [img[i * 3], img[i * 3 + 1], img[i * 3 + 2]];
    const s = [...v, -(v[0] + v[1] + v[2])];
    exp[i] = s.indexOf(Math.max(...s));
  }
  assertEquals(Array.from(pred.dataSync()), Array.from(exp));
  assertThrows(
    () => predictClasses(linear, x, undefined, undefined, 19),
    /predicts 4 classes but the dataset has 19/,
  );
  // a model that returns quarter-resolution logits: resized to the input, then to the label size
  const lowRes: SegPredictor = {
    predict: (t) =>
      tf.tidy(() => {
        const [n, hh, ww] = t.shape;
        const ramp = tf.range(0, ww / 2).reshape([1, 1, ww / 2, 1]).tile([n, hh / 2, 1, 1]);
        return tf.concat([ramp, ramp.neg().add(ww / 2 - 1)], 3) as tf.Tensor4D; // class 1 left, 0 right
      }),
  };
  const p2 = predictClasses(lowRes, x, undefined, [12, 16]);
  assertEquals(p2.shape, [2, 12, 16]);
  const row = Array.from(p2.dataSync().slice(0, 16));
  assertEquals(row, [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  tf.dispose([x, pred, p2]);
});

Deno.test("mode resolution and description strings", () => {
  assertEquals(describeEvalMode(resolveEvalMode({})), "whole");
  assertEquals(
    describeEvalMode(resolveEvalMode({ isSlide: true, cropSize: [1024, 512], stride: [768, 384] })),
    "slide(crop 1024x512, stride 768x384)",
  );
  assertEquals(
    describeEvalMode(resolveEvalMode({
      augEval: true,
      scales: [0.75, 1, 1.25],
      flipHorizontal: true,
      isSlide: true,
      cropSize: [8, 8],
      stride: [4, 4],
    })),
    "aug(scales 0.75,1,1.25; flip h)+slide(crop 8x8, stride 4x4)",
  );
  assertThrows(() => resolveEvalMode({ isSlide: true }), /--crop_size/);
  assertThrows(() => resolveEvalMode({ cropSize: [4, 4] }), /only used with --is_slide/);
  assertThrows(() => resolveEvalMode({ scales: [1, 2] }), /only used with --aug_eval/);
  assertThrows(() => resolveEvalMode({ augEval: true, scales: [0] }), /--scales/);
  assertThrows(() => resolveEvalMode({ isSlide: true, cropSize: [4.5, 4], stride: [2, 2] }), /--crop_size/);
});

Deno.test("aug + slide: softmax of the slide logits when one scale and no flip", () => {
  const x = randomImage(new Rng(6), 1, 5, 9);
  const p = new LocalPosition();
  const mode = resolveEvalMode({ augEval: true, isSlide: true, cropSize: [4, 4], stride: [3, 2] });
  const a = inferScores(p, x, mode);
  const b = slideInference(p, x, [4, 4], [3, 2]);
  const sb = tf.softmax(b);
  assertClose(a.dataSync(), sb.dataSync(), 1e-6, 1e-7);
  p.dispose();
  tf.dispose([x, a, b, sb]);
});
