/** `deno task check-data` end to end: exit codes, the histogram, and a named fix for bad labels. */
import * as path from "node:path";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { writePng } from "../../lib/data/image_io.ts";
import { tmpDir } from "./_tmp.ts";

const CLI = new URL("../../lib/cli/check_data.ts", import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
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
