/**
 * Datasets: the real Cityscapes sample (tests/fixtures/data/cityscapes-sample: labelIds -> trainIds), CamVid
 * (the shipped data/camvid.tar: checksum, unpack, the list-file dataset, histogram against an independent
 * PIL count), image/label I/O formats, and every data error case with its named fix.
 */
import * as path from "node:path";
import { decode as decodePng } from "fast-png";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import {
  checkDataset,
  decodeImageRgb,
  encodeJpegBytes,
  encodePngBytes,
  encodeRgbPngBytes,
  ensureShippedDataset,
  ID_TO_TRAIN_ID,
  loadItem,
  openCityscapes,
  openDataset,
  openListDataset,
  readImageRgb,
  readLabelImage,
  type SegDataset,
  writePng,
} from "../../lib/data/mod.ts";
import { tmpDir } from "./_tmp.ts";

const FIXTURES = new URL("../fixtures/data/", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "Cityscapes sample: labelIds converted with the official table agree with labelTrainIds on >= 99.7%",
  fn: async () => {
    const root = path.join(FIXTURES, "cityscapes-sample");
    const ds = await openCityscapes({ dataset_root: root, mode: "val" });
    assertEquals(ds.items.length, 1);
    assertEquals(ds.items[0].labelKind, "trainIds");
    const viaTrainIds = await loadItem(ds, 0);
    // the same frame through the labelIds path (as if the trainIds file were absent)
    const labelIdsFile = ds.items[0].label!.replace("_labelTrainIds.png", "_labelIds.png");
    const viaLabelIds = await loadItem({
      ...ds,
      items: [{ ...ds.items[0], label: labelIdsFile, labelKind: "labelIds" }],
    }, 0);
    // independent conversion straight from the raw PNG with the official table
    const raw = decodePng(await Deno.readFile(labelIdsFile)).data;
    let agree = 0, agreeManual = 0;
    const n = viaTrainIds.label!.length;
    for (let i = 0; i < n; i++) {
      if (viaLabelIds.label![i] === viaTrainIds.label![i]) agree++;
      if (ID_TO_TRAIN_ID[raw[i]] === viaLabelIds.label![i]) agreeManual++;
    }
    assertEquals(agreeManual, n, "conversion equals the official table");
    const share = agree / n;
    assert(share >= 0.997, `agreement ${(share * 100).toFixed(3)}%`);
    assert(
      share < 1,
      "the README says the two files differ on boundary pixels; 100% would mean we compared a file with itself",
    );
    assertEquals(viaTrainIds.width, 256);
    assertEquals(viaTrainIds.height, 128);
  },
});

Deno.test({
  name:
    "CamVid through the list-file Dataset: class histogram equals an independent count (fast-png and PIL)",
  fn: async () => {
    // the shipped archive, verified and unpacked as the set-up does (a no-op when it already is)
    const root = path.join(REPO, "data", "camvid");
    const shipped = await ensureShippedDataset(root, { progress: false });
    assert(shipped !== null, "data/camvid is a shipped dataset (data/camvid.tar + .sha256)");
    const pil = JSON.parse(
      await Deno.readTextFile(new URL("../fixtures/data/camvid_histogram.json", import.meta.url)),
    );
    for (const split of ["train", "val"] as const) {
      const ds = await openListDataset({
        dataset_root: root,
        mode: split,
        num_classes: 11,
        ignore_index: 11,
        train_path: path.join(root, "train.txt"),
        val_path: path.join(root, "val.txt"),
      });
      assertEquals(ds.items.length, pil[split].images);
      const report = await checkDataset(ds, { decodeImages: false });
      assertEquals(report.errors.length, 0, JSON.stringify(report.errors));
      // independent count: raw decode of every label listed in the file
      const counts = new Array(256).fill(0);
      for (const line of (await Deno.readTextFile(path.join(root, `${split}.txt`))).trim().split("\n")) {
        const data = decodePng(await Deno.readFile(path.join(root, line.split(" ")[1]))).data;
        for (let i = 0; i < data.length; i++) counts[data[i]]++;
      }
      for (let c = 0; c < 11; c++) {
        assertEquals(report.classPixels[c], counts[c], `${split} class ${c} vs raw decode`);
        assertEquals(report.classPixels[c], pil[split].counts[String(c)], `${split} class ${c} vs PIL`);
      }
      assertEquals(report.ignorePixels, pil[split].counts["11"], `${split}: value 11 is the ignore index`);
      assertEquals(report.sizes.common[0][0], "240x180");
    }
    // a sample keeps value 11 as the ignore value (PaddleSeg semantics: the loss ignores ignore_index)
    const ds = await openDataset({
      type: "Dataset",
      dataset_root: root,
      train_path: path.join(root, "train.txt"),
      num_classes: 11,
      ignore_index: 11,
    });
    const item = await loadItem(ds, 0);
    const raw = decodePng(await Deno.readFile(ds.items[0].label!)).data;
    assertEquals(Array.from(item.label!), Array.from(raw));
  },
});

// ---------------------------------------------------------------------------------------------------
// fixtures made on the fly

const tmp = () => tmpDir("pc-dataset-");

function rgb(w: number, h: number, seed = 1): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  for (let i = 0; i < d.length; i++) d[i] = (i * 37 + seed * 11) % 256;
  return d;
}

async function gray(file: string, w: number, h: number, value: (i: number) => number) {
  const d = new Uint8Array(w * h).map((_, i) => value(i));
  await writePng(file, { data: d, width: w, height: h, channels: 1, depth: 8 });
}

/** A Cityscapes-layout folder with `n` frames of one city; label kinds per frame. */
async function cityscapes(
  root: string,
  frames: Array<{ kind?: "trainIds" | "labelIds" | "none"; value?: (i: number) => number; lw?: number }>,
  mode = "train",
) {
  const w = 16, h = 8;
  await Deno.mkdir(path.join(root, "leftImg8bit", mode, "x"), { recursive: true });
  await Deno.mkdir(path.join(root, "gtFine", mode, "x"), { recursive: true });
  for (const [k, f] of frames.entries()) {
    const stem = `x_000000_00000${k}`;
    await writePng(path.join(root, "leftImg8bit", mode, "x", `${stem}_leftImg8bit.png`), {
      data: rgb(w, h, k),
      width: w,
      height: h,
      channels: 3,
      depth: 8,
    });
    const kind = f.kind ?? "trainIds";
    if (kind === "none") continue;
    const suffix = kind === "trainIds" ? "labelTrainIds" : "labelIds";
    await gray(
      path.join(root, "gtFine", mode, "x", `${stem}_gtFine_${suffix}.png`),
      f.lw ?? w,
      h,
      f.value ?? ((i) => i % 19),
    );
  }
}

async function firstError(ds: SegDataset) {
  const r = await checkDataset(ds);
  return r.errors;
}

Deno.test("Cityscapes layout: pairing, sorting, labelIds fallback per frame", async () => {
  const root = await tmp();
  await cityscapes(root, [{ kind: "trainIds" }, { kind: "labelIds", value: (i) => [7, 8, 26, 0][i % 4] }]);
  const ds = await openCityscapes({ dataset_root: root });
  assertEquals(ds.items.map((i) => i.labelKind), ["trainIds", "labelIds"]);
  assert(ds.items[0].image < ds.items[1].image, "sorted by image path");
  const it = await loadItem(ds, 1);
  assertEquals(Array.from(it.label!.subarray(0, 4)), [0, 1, 13, 255]); // road, sidewalk, car, unlabeled
});

Deno.test("Cityscapes errors: missing root / leftImg8bit / gtFine folders, images without labels", async () => {
  await assertRejects(
    () => openCityscapes({ dataset_root: "/nonexistent/cs" }),
    /does not exist.*\n.*fix \[missing-folder\]/s,
  );
  const root = await tmp();
  await assertRejects(() => openCityscapes({ dataset_root: root }), /leftImg8bit\/train.*is missing/);
  await Deno.mkdir(path.join(root, "leftImg8bit", "train"), { recursive: true });
  await assertRejects(() => openCityscapes({ dataset_root: root }), /gtFine\/train.*is missing/);
  const r2 = await tmp();
  await cityscapes(r2, [{}, { kind: "none" }]);
  const e = await assertRejects(() => openCityscapes({ dataset_root: r2 }), /1 image\(s\).*have no label/);
  assert(e.message.includes("x_000000_000001_leftImg8bit.png"), "names the image");
  assert(e.message.includes("[images-without-labels]"));
  // test mode allows missing labels
  const r3 = await tmp();
  await cityscapes(r3, [{ kind: "none" }], "test");
  assertEquals((await openCityscapes({ dataset_root: r3, mode: "test" })).items[0].label, null);
});

Deno.test("label errors name the file and the fix: out of range, labelIds as trainIds, trainIds as labelIds", async () => {
  const root = await tmp();
  await cityscapes(root, [{ value: (i) => [7, 11, 21, 26][i % 4] }]); // label ids saved as labelTrainIds
  const ds = await openCityscapes({ dataset_root: root });
  const e = await assertRejects(() => loadItem(ds, 0), /labelTrainIds\.png' has value\(s\) 21, 26 outside/);
  assert(e.message.includes("[labelIds-as-trainIds]"), e.message);
  assertEquals((await firstError(ds))[0].code, "labelIds-as-trainIds");

  const r2 = await tmp();
  await cityscapes(r2, [{ kind: "labelIds", value: (i) => [0, 1, 2, 255][i % 4] }]); // train ids under the labelIds name
  const ds2 = await openCityscapes({ dataset_root: r2 });
  const e2 = await assertRejects(() => loadItem(ds2, 0), /\[trainIds-as-labelIds\]/);
  assert(e2.message.includes("_gtFine_labelIds.png"));
  const r3 = await tmp();
  await cityscapes(r3, [{ value: (i) => (i % 3 ? 3 : 200) }]);
  const e3 = await assertRejects(
    async () => loadItem(await openCityscapes({ dataset_root: r3 }), 0),
    /value\(s\) 200 outside the class set/,
  );
  assert(e3.message.includes("labelTrainIds.png"));
});

Deno.test("list-file Dataset: values above num_classes, 0/255 binary masks, RGB colour masks, 16-bit maps", async () => {
  const root = await tmp();
  const w = 12, h = 6;
  const img = path.join(root, "a.png");
  await writePng(img, { data: rgb(w, h), width: w, height: h, channels: 3, depth: 8 });
  await gray(path.join(root, "over.png"), w, h, (i) => i % 7);
  await gray(path.join(root, "bin.png"), w, h, (i) => (i % 2 ? 255 : 0));
  await writePng(path.join(root, "color.png"), {
    data: rgb(w, h, 3),
    width: w,
    height: h,
    channels: 3,
    depth: 8,
  });
  await writePng(path.join(root, "inst.png"), {
    data: new Uint16Array(w * h).fill(26001),
    width: w,
    height: h,
    channels: 1,
    depth: 16,
  });
  const open = async (label: string, num_classes: number) => {
    await Deno.writeTextFile(path.join(root, "l.txt"), `a.png ${label}\n`);
    return await openListDataset({ dataset_root: root, train_path: path.join(root, "l.txt"), num_classes });
  };
  const d1 = await open("over.png", 5);
  const e1 = await assertRejects(
    () => loadItem(d1, 0),
    /over\.png' has value\(s\) 5, 6 outside the class set \(0\.\.4, ignore 255\)/,
  );
  assert(
    e1.message.includes("[values-above-num-classes]") && e1.message.includes("num_classes to 7"),
    e1.message,
  );
  assertEquals((await firstError(d1))[0].code, "values-above-num-classes");
  const d2 = await open("bin.png", 2);
  assertEquals((await firstError(d2))[0].code, "binary-0-255");
  assert((await firstError(d2))[0].fix.includes("divide by 255"));
  const d3 = await open("color.png", 19);
  await assertRejects(() => loadItem(d3, 0), /RGB colour mask.*\n.*fix \[rgb-colour-mask\]/s);
  assertEquals((await firstError(d3))[0].code, "rgb-colour-mask");
  const d4 = await open("inst.png", 19);
  await assertRejects(() => loadItem(d4, 0), /16-bit PNG with value 26001.*\[label-16-bit\]/s);
});

Deno.test("list-file Dataset: bad lines, missing files, size mismatch, corrupt PNG, JPEG label", async () => {
  const root = await tmp();
  await writePng(path.join(root, "a.png"), { data: rgb(12, 6), width: 12, height: 6, channels: 3, depth: 8 });
  await gray(path.join(root, "small.png"), 10, 6, () => 1);
  const list = path.join(root, "l.txt");
  const opts = { dataset_root: root, train_path: list, num_classes: 3 };
  await Deno.writeTextFile(list, "a.png\n");
  await assertRejects(() => openListDataset(opts), /l\.txt' line 1: expected 'image label'/);
  await Deno.writeTextFile(list, "gone.png small.png\n");
  await assertRejects(() => openListDataset(opts), /gone\.png \(line 1\).*\[missing-images\]/s);
  await Deno.writeTextFile(list, "a.png nothere.png\n");
  await assertRejects(() => openListDataset(opts), /nothere\.png \(line 1\).*\[images-without-labels\]/s);
  await Deno.writeTextFile(list, "a.png small.png\n");
  const ds = await openListDataset(opts);
  await assertRejects(
    () => loadItem(ds, 0),
    /size mismatch: image '.*a\.png' is 12x6 but its label '.*small\.png' is 10x6/,
  );
  assertEquals((await firstError(ds))[0].code, "size-mismatch");
  const bytes = await Deno.readFile(path.join(root, "small.png"));
  await Deno.writeFile(path.join(root, "cut.png"), bytes.subarray(0, bytes.length - 20));
  await Deno.writeTextFile(list, "a.png cut.png\n");
  const e = await assertRejects(
    async () => loadItem(await openListDataset(opts), 0),
    /corrupt or unreadable PNG '.*cut\.png'/,
  );
  assert(e.message.includes("cut.png"));
  await Deno.writeFile(
    path.join(root, "cut_img.png"),
    (await Deno.readFile(path.join(root, "a.png"))).subarray(0, 60),
  );
  await Deno.writeTextFile(list, "cut_img.png small.png\n");
  await assertRejects(async () => loadItem(await openListDataset(opts), 0), /cut_img\.png/);
  await Deno.writeFile(
    path.join(root, "lab.jpg"),
    await encodeJpegBytes({ data: rgb(12, 6), width: 12, height: 6 }),
  );
  await Deno.writeTextFile(list, "a.png lab.jpg\n");
  await assertRejects(async () => loadItem(await openListDataset(opts), 0), /lab\.jpg' is a JPEG/);
  await assertRejects(
    () => openListDataset({ ...opts, train_path: "nope.txt" }),
    /list file 'nope\.txt' not found/,
  );
});

Deno.test("image I/O: RGB, gray, palette, 16-bit and sub-byte PNG, JPEG; sharp and fast-png agree", async () => {
  const w = 9, h = 5;
  const px = rgb(w, h, 7);
  const viaSharp = await decodeImageRgb(await encodeRgbPngBytes({ data: px, width: w, height: h }));
  assertEquals(Array.from(viaSharp.data), Array.from(px));
  const viaFastPng = await decodeImageRgb(
    encodePngBytes({ data: px, width: w, height: h, channels: 3, depth: 8 }),
  );
  assertEquals(Array.from(viaFastPng.data), Array.from(px));
  const g = new Uint8Array(w * h).map((_, i) => i * 5);
  const grayRgb = await decodeImageRgb(
    encodePngBytes({ data: g, width: w, height: h, channels: 1, depth: 8 }),
  );
  assertEquals([grayRgb.data[30], grayRgb.data[31], grayRgb.data[32]], [50, 50, 50]);
  const g16 = new Uint16Array(w * h).map((_, i) => i * 1000 + 255);
  const rgb16 = await decodeImageRgb(
    encodePngBytes({ data: g16, width: w, height: h, channels: 1, depth: 16 }),
  );
  assertEquals(rgb16.data[3 * 7], (7 * 1000 + 255) >> 8, "16-bit keeps the high byte");
  const jpg = await decodeImageRgb(
    await encodeJpegBytes({ data: new Uint8Array(64 * 32 * 3).fill(200), width: 64, height: 32 }),
  );
  assertEquals([jpg.width, jpg.height], [64, 32]);
  assert(Math.abs(jpg.data[500] - 200) <= 2, "JPEG decodes near the encoded value");
  await assertRejects(
    () => decodeImageRgb(new TextEncoder().encode("not an image"), "x.bin"),
    /not a PNG or JPEG/,
  );
  // palette (indexed) and 2-bit labels come back as indices, made by Pillow (tests/fixtures/data/pngs)
  const dir = new URL("../fixtures/data/pngs/", import.meta.url).pathname;
  const pal = await readLabelImage(path.join(dir, "palette_2bit.png"));
  assertEquals([pal.channels, pal.width, pal.height], [1, 12, 7]);
  assertEquals(Array.from(pal.data.subarray(0, 6)), [0, 1, 2, 3, 0, 1]);
  const palRgb = await readImageRgb(path.join(dir, "palette_2bit.png"));
  assertEquals(Array.from(palRgb.data.subarray(0, 6)), [0, 0, 0, 255, 0, 0]);
  const pal8 = await readLabelImage(path.join(dir, "palette_8bit.png"));
  assertEquals(Array.from(pal8.data.subarray(0, 5)), [0, 1, 2, 3, 4]);
  const lab16 = await readLabelImage(path.join(dir, "gray_16bit.png"));
  assertEquals([lab16.depth, lab16.data[3]], [16, 3000]);
});
