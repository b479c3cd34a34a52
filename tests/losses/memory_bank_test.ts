/** Memory bank (docs/method.md §5): exact queue contents, FIFO order, wrap-around, overflow; public-code mode; state. */
import { assert, assertClose, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { type Tensor3D, type Tensor4D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { Rng } from "../../lib/util/rng.ts";
import { MemoryBank, type MemoryBankConfig } from "../../lib/losses/memory_bank.ts";

await initBackend();

const D = 2;
function bank(over: Partial<MemoryBankConfig> = {}, rng?: Rng): MemoryBank {
  return new MemoryBank({
    numClasses: 3,
    dim: D,
    pixelSize: 5,
    segmentSize: 5,
    pixelUpdateFreq: 10,
    reproducePublicCode: false,
    publicLabelStride: 8,
    ignoreIndex: 255,
    ...over,
  }, rng);
}
/** Vector number k: (k, -k), easy to recognise in a slot. */
const vec = (...ks: number[]) => Float32Array.from(ks.flatMap((k) => [k, -k]));
const pixelSlots = (b: MemoryBank, c: number) =>
  Array.from({ length: 5 }, (_, s) => b.slot("pixel", c, s)[0]);

Deno.test("pixel queue: three batches into a queue of five (contents, wrap-around, FIFO order)", () => {
  const b = bank();
  b.enqueuePixels(1, vec(1, 2));
  assertEquals(pixelSlots(b, 1), [1, 2, 0, 0, 0], "after batch 1");
  assertEquals(b.pixelPtr[1], 2, "ptr advances by K");
  b.enqueuePixels(1, vec(3, 4));
  assertEquals(pixelSlots(b, 1), [1, 2, 3, 4, 0], "after batch 2");
  b.enqueuePixels(1, vec(5, 6, 7));
  assertEquals(pixelSlots(b, 1), [6, 7, 3, 4, 5], "after batch 3: wrap-around overwrites the oldest");
  assertEquals(b.pixelPtr[1], 2);
  // FIFO: reading from ptr gives oldest to newest = the five most recent entries in order
  const p = b.pixelPtr[1];
  assertEquals([0, 1, 2, 3, 4].map((i) => pixelSlots(b, 1)[(p + i) % 5]), [3, 4, 5, 6, 7], "FIFO order");
  assertEquals(pixelSlots(b, 0), [0, 0, 0, 0, 0], "other classes untouched");
  assertEquals(Array.from(b.slot("pixel", 1, 0)), [6, -6], "whole vector stored");
});

Deno.test("pixel queue: overflow (K > size) keeps the last `size` entries in order", () => {
  const b = bank();
  b.enqueuePixels(2, vec(1, 2, 3, 4, 5, 6, 7));
  assertEquals(b.pixelPtr[2], 2);
  const p = b.pixelPtr[2];
  assertEquals([0, 1, 2, 3, 4].map((i) => pixelSlots(b, 2)[(p + i) % 5]), [3, 4, 5, 6, 7]);
  b.enqueuePixels(2, vec(8));
  assertEquals(pixelSlots(b, 2), [6, 7, 8, 4, 5], "the next entry replaces the oldest (3)");
});

Deno.test("pixel queue, public-code mode: ptr += 1, last K slots and reset when ptr + K >= size", () => {
  const b = bank({ reproducePublicCode: true });
  b.enqueuePixels(1, vec(1, 2));
  assertEquals([pixelSlots(b, 1), b.pixelPtr[1]], [[1, 2, 0, 0, 0], 1]);
  b.enqueuePixels(1, vec(3, 4));
  assertEquals([pixelSlots(b, 1), b.pixelPtr[1]], [[1, 3, 4, 0, 0], 2], "overwrites the entry just written");
  b.enqueuePixels(1, vec(5, 6, 7));
  assertEquals([pixelSlots(b, 1), b.pixelPtr[1]], [[1, 3, 5, 6, 7], 0], "2 + 3 >= 5: last 3 slots, ptr 0");
});

Deno.test("segment queue: one slot per enqueue, wraps after size", () => {
  const b = bank();
  for (let k = 1; k <= 7; k++) b.enqueueSegment(0, vec(k));
  assertEquals(Array.from({ length: 5 }, (_, s) => b.slot("segment", 0, s)[0]), [6, 7, 3, 4, 5]);
  assertEquals(b.segmentPtr[0], 2);
  assertThrows(() => b.enqueueSegment(3, vec(1)), "class 3 outside");
  assertThrows(() => b.enqueueSegment(0, vec(1, 2)), "segment vector");
});

/** One image, 4x4 embeddings with D=2 and 8x8 labels (stride 2). */
function batch() {
  const emb: number[] = [];
  for (let p = 0; p < 16; p++) emb.push(p + 1, 1); // embedding of pixel p: (p+1, 1)
  const lab = new Int32Array(64);
  // label of the stride-2 pick at (i, j) = cls[i*4 + j]; other pixels of each 2x2 cell are 2 (never picked)
  const cls = [0, 0, 1, 1, 0, 0, 1, 1, 255, 255, 1, 1, 0, 0, 0, 255];
  for (let r = 0; r < 8; r++) {
    for (let c = 0; c < 8; c++) {
      lab[r * 8 + c] = r % 2 === 0 && c % 2 === 0 ? cls[(r / 2) * 4 + c / 2] : 2;
    }
  }
  return {
    embed: tf.tensor4d(emb, [1, 4, 4, 2]) as Tensor4D,
    labels: tf.tensor3d(lab, [1, 8, 8], "int32") as Tensor3D,
    cls,
  };
}
const unit = (v: number[]) => v.map((x) => x / Math.hypot(...v));

Deno.test("updateFromBatch (intended): same-stride labels, own pixels, class 0 included, means normalised", async () => {
  const b = bank({ pixelUpdateFreq: 3 });
  const { embed, labels, cls } = batch();
  const info = await b.updateFromBatch(embed, labels, new Rng(1));
  tf.dispose([embed, labels]);
  assertEquals(info, { segments: 2, pixels: 6 }, "classes 0 and 1, K = min(n, 3) each");
  for (const c of [0, 1]) {
    const own = cls.map((y, p) => (y === c ? p : -1)).filter((p) => p >= 0);
    const mean = [own.reduce((s, p) => s + p + 1, 0) / own.length, 1];
    assertClose(b.slot("segment", c, 0), unit(mean), 1e-6, 0, `segment mean of class ${c}`);
    const picked = new Set<number>();
    for (let s = 0; s < 3; s++) {
      const v = b.slot("pixel", c, s);
      // recover the pixel from the normalised vector (p+1, 1)/norm: p + 1 = v0 / v1
      const p = Math.round(v[0] / v[1]) - 1;
      assert(own.includes(p), `class ${c}: enqueued pixel ${p} is not one of its own ${own}`);
      assertClose(v, unit([p + 1, 1]), 1e-6, 0, "normalised");
      picked.add(p);
    }
    assertEquals(picked.size, 3, "drawn without replacement");
    assertEquals(b.pixelPtr[c], 3);
  }
  assertEquals(b.segmentPtr[2], 0, "class 2 (only on unpicked pixels) not enqueued");
});

Deno.test("updateFromBatch (public code): coarse label grid, class 0 skipped, positions perm[:K]", async () => {
  // public stride 4 on 8x8 labels -> 2x2 grid; its flat indices (0..3) are used on the 4x4 feature map
  const b = bank({ pixelUpdateFreq: 3, reproducePublicCode: true, publicLabelStride: 4 });
  const { embed, labels } = batch();
  // grid = labels[::4, ::4] = [cls[0], cls[2], cls[8], cls[10]] = [0, 1, 255, 1]
  const info = await b.updateFromBatch(embed, labels, new Rng(2));
  tf.dispose([embed, labels]);
  assertEquals(info, { segments: 1, pixels: 2 }, "class 1 only (2 grid pixels); class 0 skipped");
  // segment: mean of feature positions 1 and 3 (the grid indices), i.e. pixels 1 and 3 -> (3, 1)
  assertClose(
    b.slot("segment", 1, 0),
    unit([3, 1]),
    1e-6,
    0,
    "mean over grid indices used as feature positions",
  );
  const ps = [0, 1].map((s) => Math.round(b.slot("pixel", 1, s)[0] / b.slot("pixel", 1, s)[1]) - 1).sort();
  assertEquals(ps, [0, 1], "pixels at positions perm[:2] of 0..1");
  assertEquals(b.segmentPtr[0], 0);
});

Deno.test("contrast set: intended has every class; public skips class 0 and ends with zeros labelled 0", () => {
  const rng = new Rng(3);
  const a = bank({}, rng);
  const labs = a.contrastLabels();
  assertEquals(labs.length, 30);
  assertEquals(Array.from(labs.subarray(0, 10)), new Array(10).fill(0));
  assertEquals(Array.from(labs.subarray(20)), new Array(10).fill(2));
  const f = a.contrastFeatures();
  assertEquals(f.shape, [30, 2]);
  const norms = tf.tidy(() => tf.norm(f, 2, 1).dataSync());
  assertClose(norms, new Array(30).fill(1), 1e-5, 0, "random init is unit-norm");
  a.dispose();
  const p = bank({ reproducePublicCode: true }, new Rng(3));
  const pl = p.contrastLabels();
  assertEquals(Array.from(pl), [
    ...new Array(10).fill(1),
    ...new Array(10).fill(2),
    ...new Array(10).fill(0),
  ]);
  const pf = p.contrastFeatures();
  const data = pf.dataSync();
  assert(data.subarray(40).every((v) => v === 0), "trailing zero block");
  assertClose(data.subarray(0, 2), p.slot("segment", 1, 0), 0, 0, "first row = class 1 segment slot 0");
  pf.dispose();
  p.dispose();
});

Deno.test("device mirror follows host updates (patched or re-uploaded) and getState/setState round-trip", () => {
  const b = bank({}, new Rng(4));
  const before = tf.memory().numTensors;
  b.contrastFeatures();
  b.enqueuePixels(1, vec(9, 8));
  b.enqueueSegment(2, vec(7));
  const dev = b.contrastFeatures().dataSync();
  const s = b.getState();
  for (let c = 0; c < 3; c++) {
    for (let k = 0; k < 5; k++) {
      assertClose(
        dev.subarray((c * 10 + k) * 2, (c * 10 + k + 1) * 2),
        s.segmentQueue.subarray((c * 5 + k) * 2, (c * 5 + k + 1) * 2),
        0,
        0,
      );
      assertClose(
        dev.subarray((c * 10 + 5 + k) * 2, (c * 10 + 6 + k) * 2),
        s.pixelQueue.subarray((c * 5 + k) * 2, (c * 5 + k + 1) * 2),
        0,
        0,
      );
    }
  }
  const c2 = bank({}, new Rng(99));
  c2.setState(s);
  assertEquals(c2.getState(), s, "round-trip");
  assertEquals(Array.from(c2.contrastFeatures().dataSync()), Array.from(dev), "restored device copy");
  assertThrows(() => bank({ pixelSize: 6 }).setState(s), "pixel");
  assertThrows(() => c2.setState({ ...s, pixelPtr: Int32Array.from([0, 9, 0]) }), "out-of-range pointer");
  assertThrows(() => bank({ reproducePublicCode: true }).setState(s), "reproducePublicCode");
  b.dispose();
  c2.dispose();
  assert(tf.memory().numTensors === before, `leaked ${tf.memory().numTensors - before}`);
});
