/** PaddleSeg transforms: image/label alignment after scale, crop and flip; semantics; option errors. */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { Rng } from "../../lib/util/rng.ts";
import {
  applyTransforms,
  buildTransforms,
  materialize,
  RandomDistort,
  RandomPaddingCrop,
  ResizeStepScaling,
  roundHalfEven,
  type Sample,
} from "../../lib/data/transforms.ts";

/**
 * An image whose pixels encode their own source coordinates (R = column, G = row, B = 200) and a label
 * that encodes them too (column mod 16 + 16 * (row mod 8)). Bilinear interpolation of a linear ramp is
 * exact, so after any scale/crop/flip each output pixel's R, G tell which source pixel the label must
 * come from: nearest picks floor(x * s) where the bilinear centre is (x + 0.5) * s - 0.5.
 */
function coordinateSample(w: number, h: number): Sample {
  const image = new Float32Array(w * h * 3), label = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      image[3 * i] = x;
      image[3 * i + 1] = y;
      image[3 * i + 2] = 200;
      label[i] = (x % 16) + 16 * (y % 8);
    }
  }
  return { image, label, width: w, height: h };
}

Deno.test("image and label stay aligned after ResizeStepScaling, RandomPaddingCrop and RandomHorizontalFlip", () => {
  const W = 64, H = 48;
  const ts = buildTransforms([
    { type: "ResizeStepScaling", min_scale_factor: 0.5, max_scale_factor: 2.0, scale_step_size: 0.25 },
    { type: "RandomPaddingCrop", crop_size: [40, 36] },
    { type: "RandomHorizontalFlip" },
  ]);
  let checked = 0, flipped = 0, padded = 0;
  const scales = new Set<number>();
  for (let seed = 0; seed < 120; seed++) {
    const out = applyTransforms(ts, coordinateSample(W, H), new Rng(seed));
    assertEquals([out.width, out.height], [40, 36]);
    const img = out.image, lab = out.label!;
    // the scale and the flip, from the ramp itself (median step between unpadded, unclamped neighbours)
    const dxs: number[] = [], dys: number[] = [];
    const inside = (k: number) =>
      lab[k] !== 255 && img[3 * k] > 1 && img[3 * k] < W - 2 && img[3 * k + 1] > 1 && img[3 * k + 1] < H - 2;
    for (let i = 0; i + out.width < lab.length; i++) {
      if (!inside(i)) continue;
      if ((i + 1) % out.width !== 0 && inside(i + 1)) dxs.push(img[3 * (i + 1)] - img[3 * i]);
      if (inside(i + out.width)) dys.push(img[3 * (i + out.width) + 1] - img[3 * i + 1]);
    }
    const median = (a: number[]) => a.sort((p, q) => p - q)[a.length >> 1];
    const sx = median(dxs), sy = median(dys);
    if (sx < 0) flipped++;
    const s = Math.abs(sx);
    assertAlmostEquals(s, sy, 0.05, `seed ${seed}: aspect kept`);
    scales.add(Math.round((1 / s) * 4) / 4);
    for (let i = 0; i < lab.length; i++) {
      const R = img[3 * i], G = img[3 * i + 1], B = img[3 * i + 2];
      if (lab[i] === 255) {
        assertEquals([R, G, B], [127.5, 127.5, 127.5], `seed ${seed}: padded label 255 has padded image`);
        padded++;
        continue;
      }
      assertEquals(B, 200, `seed ${seed} pixel ${i}: image padding where the label is not`);
      if (R < 0.5 || R > W - 1.5 || G < 0.5 || G > H - 1.5) continue; // clamped borders
      const cx = R + 0.5 - 0.5 * s, cy = G + 0.5 - 0.5 * s;
      if (Math.abs(cx - Math.round(cx)) < 1e-3 || Math.abs(cy - Math.round(cy)) < 1e-3) continue; // float ties
      const col = Math.floor(cx), row = Math.floor(cy);
      assertEquals(
        lab[i],
        (col % 16) + 16 * (row % 8),
        `seed ${seed} pixel ${i}: label of source (${col}, ${row})`,
      );
      checked++;
    }
  }
  assert(checked > 50_000, `checked ${checked} pixels`);
  assert(flipped > 30 && flipped < 90, `flipped ${flipped} of 120`);
  assert(padded > 0, "some crops needed padding (scale 0.5 of 64x48 < 40x36)");
  assertEquals(scales.size, 7, `all seven scale factors drawn: ${[...scales]}`);
});

Deno.test("the fused resize+crop equals resizing everything and then cropping", () => {
  for (let seed = 0; seed < 20; seed++) {
    const s0 = coordinateSample(50, 30);
    const crop = new RandomPaddingCrop([32, 24]);
    const rss = new ResizeStepScaling(0.5, 2.0, 0.25);
    const r1 = new Rng(seed), r2 = new Rng(seed);
    const fused = crop.apply(rss.apply(s0, r1), r1);
    const full = crop.apply(materialize(rss.apply(s0, r2)), r2);
    assertEquals(Array.from(fused.label!), Array.from(full.label!), `seed ${seed} labels`);
    assert(fused.image.every((v, i) => v === full.image[i]), `seed ${seed} images`);
  }
});

Deno.test("ResizeStepScaling rounds sizes half to even, as Python's round()", () => {
  assertEquals([roundHalfEven(90.5), roundHalfEven(91.5), roundHalfEven(2.5), roundHalfEven(135.75)], [
    90,
    92,
    2,
    136,
  ]);
  const rss = new ResizeStepScaling(0.5, 0.5, 0.25);
  const out = rss.apply(
    { image: new Float32Array(181 * 7 * 3), label: null, width: 181, height: 7 },
    new Rng(0),
  );
  assertEquals([out.width, out.height], [90, 4]); // 90.5 -> 90, 3.5 -> 4
  assertThrows(
    () => buildTransforms([{ type: "ResizeStepScaling", min_scale_factor: 2, max_scale_factor: 1 }]),
    /must not exceed/,
  );
});

Deno.test("RandomPaddingCrop pads bottom/right with 127.5 and 255, and returns a sample of the crop size unchanged", () => {
  const s = coordinateSample(10, 6);
  const out = new RandomPaddingCrop([16, 8]).apply(s, new Rng(1));
  assertEquals([out.width, out.height], [16, 8]);
  assertEquals(out.image[0], 0, "offset 0 when the image is smaller than the crop");
  assertEquals(Array.from(out.image.subarray(3 * 12, 3 * 12 + 3)), [127.5, 127.5, 127.5]);
  assertEquals(out.label![15], 255);
  assertEquals(out.label![16 * 7], 255);
  const rng = new Rng(5), before = rng.getState();
  const same = new RandomPaddingCrop([10, 6]).apply(s, rng);
  assert(
    same.image === s.image && rng.getState().every((v, i) => v === before[i]),
    "no copy, no random draw",
  );
});

Deno.test("RandomDistort: uint8 truncation, PaddleSeg draw order, probabilities", () => {
  const img = Float32Array.from([10.9, 20.2, 30.99, 255, 0.5, 127.5]);
  const none = new RandomDistort({ brightness_prob: 0, contrast_prob: 0, saturation_prob: 0, hue_prob: 0 });
  const out = none.apply({ image: img.slice(), label: null, width: 2, height: 1 }, new Rng(0));
  assertEquals(Array.from(out.image), [10, 20, 30, 255, 0, 127]);
  // every op at prob 1: five draws of the shuffle, then (prob, value) per op, each value in its range
  const all = new RandomDistort({
    brightness_prob: 1,
    contrast_prob: 1,
    saturation_prob: 1,
    hue_prob: 1,
    sharpness_prob: 1,
    brightness_range: 0.4,
  });
  const ops = all.draw(new Rng(3));
  assertEquals(ops.map((o) => o.op).sort(), ["brightness", "contrast", "hue", "saturation", "sharpness"]);
  for (const o of ops) {
    if (o.op === "hue") assert(Math.abs(o.value) <= 18);
    else if (o.op === "brightness") assert(o.value >= 0.6 && o.value <= 1.4);
    else assert(o.value >= 0.5 && o.value <= 1.5);
  }
  let applied = 0;
  const half = new RandomDistort();
  for (let seed = 0; seed < 400; seed++) applied += half.draw(new Rng(seed)).length;
  assert(applied > 700 && applied < 900, `4 ops at p=0.5 (sharpness 0) over 400 draws: ${applied}`);
});

Deno.test("Normalize maps 0, 127.5, 255 to -1, 0, 1 (mean = std = 0.5)", () => {
  const [t] = buildTransforms([{ type: "Normalize" }]);
  const out = t.apply(
    { image: Float32Array.from([0, 127.5, 255]), label: null, width: 1, height: 1 },
    new Rng(0),
  );
  assertEquals(Array.from(out.image), [-1, 0, 1]);
});

Deno.test("buildTransforms accepts PaddleSeg's config entries and names bad ones", () => {
  const ts = buildTransforms([
    { type: "ResizeStepScaling", min_scale_factor: 0.5, max_scale_factor: 2.0, scale_step_size: 0.25 },
    {
      type: "RandomPaddingCrop",
      crop_size: [1024, 512],
      im_padding_value: [127.5, 127.5, 127.5],
      label_padding_value: 255,
    },
    { type: "RandomHorizontalFlip", prob: 0.5 },
    { type: "RandomDistort", brightness_range: 0.4, contrast_range: 0.4, saturation_range: 0.4 },
    { type: "Normalize", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    { type: "Resize", target_size: [512, 256] },
  ]);
  assertEquals(
    ts.map((t) => t.type).join(),
    "ResizeStepScaling,RandomPaddingCrop,RandomHorizontalFlip,RandomDistort,Normalize,Resize",
  );
  assertThrows(
    () => buildTransforms([{ type: "RandomCrop" }]),
    /transforms\[0\]: unknown transform type 'RandomCrop'/,
  );
  assertThrows(
    () => buildTransforms([{ type: "RandomHorizontalFlip", probability: 0.5 }]),
    /unknown key\(s\) probability/,
  );
  assertThrows(
    () => buildTransforms([{ type: "Normalize" }, { type: "RandomPaddingCrop", crop_size: [10] }]),
    /transforms\[1\].*crop_size/,
  );
  assertThrows(
    () => buildTransforms([{ type: "RandomHorizontalFlip", prob: 2 }]),
    /prob: expected a probability/,
  );
});

Deno.test("Resize: fixed size, label nearest", () => {
  const [t] = buildTransforms([{ type: "Resize", target_size: [32, 24] }]);
  const out = t.apply(coordinateSample(64, 48), new Rng(0));
  assertEquals([out.width, out.height], [32, 24]);
  assertEquals(out.image[3 * 5], 10.5); // bilinear centre of columns 10 and 11
  assertEquals(out.label![5], 10); // nearest: column 10
});
