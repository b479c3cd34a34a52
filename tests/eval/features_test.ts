/**
 * lib/eval/features.ts: labels on the stride-4 grid, class-balanced seeded pixel selection, feature
 * gathering (checked against the full feature map), errors, and no tensor leaks; and lib/eval's
 * `featureSpace` over models. Tiny HRNet, small images.
 */
import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { tf } from "../../lib/backend/tf.ts";
import { buildModel, type SegModel } from "../../lib/models/mod.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import type { EvalSample } from "../../lib/eval/evaluate.ts";
import {
  extractPixelFeatures,
  featureGrid,
  type FeatureLayer,
  featureMap,
  labelsOnGrid,
  modelKind,
  selectPixels,
} from "../../lib/eval/features.ts";
import { compareFeatures, featureSpace } from "../../lib/eval/feature_space.ts";
import { Rng } from "../../lib/util/rng.ts";
import type { Config } from "../../lib/config/mod.ts";

await initBackend();

/** Samples with random images and blocky labels (classes 0..5, some 255), sizes not multiples of 4. */
function samples(sizes: Array<[number, number]>, seed = 1): EvalSample[] {
  const rng = new Rng(seed);
  return sizes.map(([h, w], k) => {
    const image = new Float32Array(h * w * 3).map(() => rng.next() * 2 - 1);
    const label = new Uint8Array(h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) label[y * w + x] = (x + y) % 11 === 0 ? 255 : (Math.floor(x / 5) + k) % 6;
    }
    return { image, height: h, width: w, label, name: `img${k}` };
  });
}

Deno.test("labelsOnGrid takes label[4i, 4j] (and scales when the label size differs)", () => {
  const h = 10, w = 13;
  const label = Uint8Array.from({ length: h * w }, (_, i) => i % 251);
  const g = labelsOnGrid(label, h, w, h, w);
  assertEquals(featureGrid(h, w), [3, 4]);
  assertEquals(g.length, 12);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) assertEquals(g[i * 4 + j], label[4 * i * w + 4 * j]);
  }
  // label at half the image size: row floor(4i * 5 / 10) = 2i
  const half = Uint8Array.from({ length: 5 * 7 }, (_, i) => i);
  const g2 = labelsOnGrid(half, 5, 7, 10, 14);
  assertEquals(g2[1 * 4 + 1], half[2 * 7 + 2]);
  assertThrows(() => labelsOnGrid(label, h, w + 1, h, w), "expected 10x14");
});

Deno.test("featureGrid matches the backbone's stride-4 map for sizes that are not multiples of 4", () => {
  const model = buildModel(modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 6, projDim: 8 }), new Rng(0));
  try {
    for (const [h, w] of [[34, 18], [32, 20], [37, 23]] as const) {
      const shape = tf.tidy(() => featureMap(model, tf.zeros([1, h, w, 3]) as tf.Tensor4D, "decoder").shape);
      assertEquals([shape[1], shape[2]], featureGrid(h, w), `${h}x${w}`);
    }
  } finally {
    model.dispose();
  }
});

Deno.test("selectPixels: class-balanced, seeded, never ignored cells, availability counted", async () => {
  const s = samples([[34, 18], [32, 20], [37, 23]]);
  const sel = await selectPixels(s, { perClass: 5, seed: 7 });
  // availability computed independently from the grid labels
  const counts = new Array(6).fill(0);
  const grids = s.map((x) => labelsOnGrid(x.label, x.height, x.width, x.height, x.width));
  for (const g of grids) for (const v of g) if (v !== 255) counts[v]++;
  assertEquals(sel.available, counts);
  const per = new Array(6).fill(0);
  for (let r = 0; r < sel.labels.length; r++) {
    const img = sel.image[r], cell = sel.cell[r];
    assertEquals(grids[img][cell], sel.labels[r], `row ${r}: label at its cell`);
    assert(sel.labels[r] !== 255);
    per[sel.labels[r]]++;
  }
  assertEquals(per, counts.map((c) => Math.min(5, c)));
  assertEquals(sel.names, ["img0", "img1", "img2"]);
  const again = await selectPixels(s, { perClass: 5, seed: 7 });
  assertEquals([...again.cell], [...sel.cell], "same seed, same pixels");
  const other = await selectPixels(s, { perClass: 5, seed: 8 });
  assert(
    [...other.cell].join() !== [...sel.cell].join() || [...other.image].join() !== [...sel.image].join(),
  );
});

Deno.test("extractPixelFeatures gathers exactly the selected cells of the layer; leaks no tensors", async () => {
  const model = buildModel(modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 6, projDim: 8 }), new Rng(3));
  const ce = buildModel(
    modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 6 }),
    new Rng(4),
  );
  try {
    const s = samples([[34, 18], [32, 20]]);
    const sel = await selectPixels(s, { perClass: 4, seed: 1 });
    const before = tf.memory().numTensors;
    for (const layer of ["decoder", "proj"] as const) {
      const f = await extractPixelFeatures(model, s, sel, { layer });
      assertEquals(f.n, sel.labels.length);
      assertEquals(f.dim, layer === "decoder" ? 60 : 8);
      // reference: the whole map on the host, indexed by (image, cell)
      const maps = s.map((x) =>
        tf.tidy(() => featureMap(model, tf.tensor4d(x.image, [1, x.height, x.width, 3]), layer).dataSync())
      );
      for (let r = 0; r < f.n; r++) {
        const src = maps[sel.image[r]].subarray(sel.cell[r] * f.dim, (sel.cell[r] + 1) * f.dim);
        assertEquals([...f.embeddings.subarray(r * f.dim, (r + 1) * f.dim)], [...src], `${layer} row ${r}`);
      }
      if (layer === "proj") {
        const row = f.embeddings.subarray(0, f.dim);
        const norm = Math.sqrt(row.reduce((a, v) => a + v * v, 0));
        assert(Math.abs(norm - 1) < 1e-4, `proj rows are unit vectors (norm ${norm})`);
      }
    }
    assertEquals(tf.memory().numTensors, before, "no tensors left behind");
    // normalize: the same rows scaled to unit length
    const raw = await extractPixelFeatures(model, s, sel, { layer: "decoder" });
    const unit = await extractPixelFeatures(model, s, sel, { layer: "decoder", normalize: true });
    for (const r of [0, raw.n - 1]) {
      const row = raw.embeddings.subarray(r * raw.dim, (r + 1) * raw.dim);
      const norm = Math.sqrt(row.reduce((a, v) => a + v * v, 0));
      const u = unit.embeddings.subarray(r * raw.dim, (r + 1) * raw.dim);
      for (let j = 0; j < raw.dim; j += 7) assert(Math.abs(u[j] - row[j] / norm) < 1e-6, `row ${r} col ${j}`);
    }
    // the CE-only model has the decoder layer but no projection head
    assertEquals((await extractPixelFeatures(ce, s, sel, { layer: "decoder" })).dim, 60);
    let err = "";
    await extractPixelFeatures(ce, s, sel, { layer: "proj" }).catch((e) => (err = e.message));
    assert(err.includes("no projection head"), err);
    // other images than the selection read
    await extractPixelFeatures(model, [...s].reverse(), sel, { layer: "decoder" }).catch((
      e,
    ) => (err = e.message));
    assert(err.includes("the selection read 'img0'"), err);
    await extractPixelFeatures(model, s.slice(0, 1), sel, { layer: "decoder" }).catch((
      e,
    ) => (err = e.message));
    assert(err.includes("1 images, the selection read 2"), err);
  } finally {
    model.dispose();
    ce.dispose();
  }
});

Deno.test("modelKind: contrast only when a PixelContrast term has a positive weight", () => {
  const cfg = (types: string[], coef: number[]) =>
    ({ loss: { types: types.map((type) => ({ type })), coef } }) as unknown as Config;
  assertEquals(modelKind(cfg(["CrossEntropyLoss"], [1])), "CE only");
  assertEquals(
    modelKind(cfg(["CrossEntropyLoss", "PixelContrastCrossEntropyLoss"], [1, 0.1])),
    "CE + pixel contrast",
  );
  assertEquals(modelKind(cfg(["CrossEntropyLoss", "PixelContrastCrossEntropyLoss"], [1, 0])), "CE only");
});

Deno.test("featureSpace: one model at a time, the same pixels, views per layer; equal to the steps by hand", async () => {
  const s = samples([[34, 18], [32, 20], [36, 16]]);
  const loads: string[] = [];
  const disposed: string[] = [];
  const subject = (title: string, make: () => SegModel, layers: FeatureLayer[]) => ({
    title,
    layers,
    load: () => {
      loads.push(title);
      const m = make();
      const dispose = m.dispose.bind(m);
      m.dispose = () => (disposed.push(title), dispose());
      return Promise.resolve(m);
    },
  });
  const contrast = () =>
    buildModel(modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 6, projDim: 8 }), new Rng(3));
  const ce = () =>
    buildModel(modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 6 }), new Rng(4));
  const before = tf.memory().numTensors;
  const space = await featureSpace(
    [subject("CE only", ce, ["decoder"]), subject("contrast", contrast, ["decoder", "proj"])],
    {
      samples: () => s,
      perClass: 6,
      seed: 2,
      projections: ["pca", "umap"],
      umap: { nEpochs: 20 },
      panelTitle: (sub, layer) => `${sub.title} ${layer}`,
    },
  );
  assertEquals(loads, ["CE only", "contrast"], "each model loaded once");
  assertEquals(disposed, ["CE only", "contrast"], "and disposed after its features were read");
  assertEquals(tf.memory().numTensors, before, "no tensors left behind");
  assertEquals([...space.selection.cell], [...(await selectPixels(s, { perClass: 6, seed: 2 })).cell]);
  assertEquals(space.views.map((v) => [v.layer, v.dim, v.panels.map((p) => p.title)]), [
    ["decoder", 60, ["CE only decoder", "contrast decoder"]],
    ["proj", 8, ["contrast proj"]],
  ]);
  // the same numbers as the steps done by hand (extract, then compare with Rng(seed))
  const m = contrast();
  try {
    // panel i of a view draws its UMAP from Rng(seed).fork(`umap-${i}`): the contrast model is panel 1 of
    // the decoder view (after the CE model) and panel 0 of the proj view
    for (const [v, layer, panel] of [[0, "decoder", 1], [1, "proj", 0]] as const) {
      const f = await extractPixelFeatures(m, s, space.selection, { layer, normalize: true });
      const ref = compareFeatures(new Array(panel + 1).fill({ title: "x", embeddings: f.embeddings }), {
        labels: space.selection.labels,
        dim: f.dim,
        rng: new Rng(2),
        perClass: 6,
        projections: ["pca", "umap"],
        umap: { nEpochs: 20 },
      }).panels[panel];
      const got = space.views[v].panels[panel];
      assertEquals(got.measures, ref.measures, `${layer} measures`);
      assertEquals([...got.xy.pca!], [...ref.xy.pca!], `${layer} PCA`);
      assertEquals([...got.xy.umap!], [...ref.xy.umap!], `${layer} UMAP`);
    }
  } finally {
    m.dispose();
  }
  // a layer the model lacks: the error names it, and the model is still disposed
  disposed.length = 0;
  let err = "";
  await featureSpace([subject("CE only", ce, ["proj"])], {
    samples: () => s,
    perClass: 6,
    seed: 2,
    projections: ["pca"],
  }).catch((e) => (err = e.message));
  assert(err.includes("no projection head"), err);
  assertEquals(disposed, ["CE only"]);
});
