/**
 * `deno task check-data` end to end: exit codes, the histogram, and a named fix for bad labels; and on the
 * shipped CamVid (configs/camvid/*, data/camvid.tar) from a folder where it is not unpacked yet.
 */
import * as path from "node:path";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { writePng } from "../../lib/data/image_io.ts";
import { tmpDir } from "./_tmp.ts";

const CLI = new URL("../../lib/cli/check_data.ts", import.meta.url).pathname;

const REPO = new URL("../../", import.meta.url).pathname;

async function cli(args: string[], cwd?: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("check-data: histogram and exit 0 for good labels, named fix and exit 1 for bad ones", async () => {
  const root = await tmpDir("pc-checkcli-");
  const w = 8, h = 4;
  await writePng(path.join(root, "im.png"), {
    data: new Uint8Array(w * h * 3).fill(90),
    width: w,
    height: h,
    channels: 3,
    depth: 8,
  });
  await writePng(path.join(root, "good.png"), {
    data: new Uint8Array(w * h).map((_, i) => i % 3),
    width: w,
    height: h,
    channels: 1,
    depth: 8,
  });
  await writePng(path.join(root, "bad.png"), {
    data: new Uint8Array(w * h).map((_, i) => (i % 2 ? 7 : 1)),
    width: w,
    height: h,
    channels: 1,
    depth: 8,
  });
  await Deno.writeTextFile(path.join(root, "train.txt"), "im.png good.png\n");
  await Deno.writeTextFile(path.join(root, "val.txt"), "im.png bad.png\n");
  const base = ["--type", "Dataset", "--dataset_root", root, "--num_classes", "3"];
  const good = await cli([...base, "--train_path", path.join(root, "train.txt")]);
  assertEquals(good.code, 0, good.out);
  assert(/class 0 +34\.38%/.test(good.out) && /class 2 +31\.25%/.test(good.out), good.out);
  const bad = await cli([...base, "--val_path", path.join(root, "val.txt")]);
  assertEquals(bad.code, 1, bad.out);
  assert(
    bad.out.includes("ERROR [values-above-num-classes]") && bad.out.includes("bad.png: values 7"),
    bad.out,
  );
  assert(bad.out.includes("fix: if 7 marks unlabelled pixels, set ignore_index: 7"), bad.out);
  const usage = await cli([]);
  assertEquals(usage.code, 2);
  assert(usage.out.includes("usage: deno task check-data"));
});

Deno.test("check-data --config configs/camvid/...: verifies and unpacks data/camvid.tar, histogram as PIL counts it", async () => {
  // a folder laid out like a fresh clone: only data/camvid.tar and its checksum, nothing unpacked
  const clone = await tmpDir("pc-checkcamvid-");
  await Deno.mkdir(path.join(clone, "data"));
  for (const f of ["camvid.tar", "camvid.tar.sha256"]) {
    await Deno.copyFile(path.join(REPO, "data", f), path.join(clone, "data", f));
  }
  const config = path.join(REPO, "configs", "camvid", "hrnet_w18_small_v1_contrast_camvid_224x160_2k.yml");
  const r = await cli(["--config", config], clone);
  assertEquals(r.code, 0, r.out);
  assert(r.out.includes("train_dataset: Dataset train: 367 images (data/camvid/train.txt)"), r.out);
  assert(r.out.includes("val_dataset: Dataset val: 101 images (data/camvid/val.txt)"), r.out);
  assert(r.out.includes("most common 240x180 x367"), r.out);
  // every class line of both splits equals the independent Pillow count of tests/fixtures/data/
  const pil = JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/data/camvid_histogram.json", import.meta.url)),
  );
  const names = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car"];
  const [trainPart, valPart] = r.out.split("val_dataset:");
  for (const [split, text] of [["train", trainPart], ["val", valPart]] as const) {
    const counts: Record<string, number> = pil[split].counts;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assertEquals(total, pil[split].images * 240 * 180);
    [...names, "Pedestrian", "Bicyclist"].forEach((name, c) => {
      const pct = ((100 * (counts[String(c)] ?? 0)) / total).toFixed(2);
      assert(
        new RegExp(`\\b${c} ${name} +${pct}%`).test(text),
        `${split}: class ${c} ${name} ${pct}%\n${text}`,
      );
    });
    assert(
      text.includes(`ign (ignored) ${" ".repeat(7)}${((100 * counts["11"]) / total).toFixed(2)}%`),
      text,
    );
  }
  // unpacked by the check itself, with the archive code's completion marker
  const marker = JSON.parse(
    await Deno.readTextFile(path.join(clone, "data", "camvid", ".unpacked-camvid.tar.json")),
  );
  assertEquals(marker.files, 938);
});
