/**
 * Hostile images: a width x height beyond the pixel bound is refused from the header (PNG IHDR, JPEG
 * SOF) before any decoding, a PNG whose data inflate beyond what its header allows is refused, and only
 * regular files are read; messages name the file and say how to raise the bound.
 */
import * as path from "node:path";
import {
  decodeImageRgb,
  decodePngBytes,
  readImageRgb,
  readImageSize,
  readLabelImage,
} from "../../lib/data/image_io.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { tmpDir } from "../data/_tmp.ts";
import { jpegHeader, png, zlib } from "./_hostile.ts";

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const p = path.join(await tmpDir("pc-image-"), name);
  await Deno.writeFile(p, bytes);
  return p;
}

const BOUND =
  /is 20000x20000 \(400\.0 Mpx\), larger than the bound of 67108864 pixels \(8192x8192\).*PC_MAX_IMAGE_PIXELS/;

Deno.test("a 20000x20000 label PNG is refused from its IHDR, before decoding", async () => {
  // a few bytes of image data: the header alone must decide
  const p = await file("big_label.png", png(20000, 20000, await zlib(new Uint8Array(100))));
  const err = await assertRejects(() => readLabelImage(p), BOUND);
  assert(err.message.includes(p), err.message);
  await assertRejects(() => readImageRgb(p), BOUND);
  await assertRejects(() => readImageSize(p), BOUND);
});

Deno.test("a JPEG whose frame header declares 30000x30000 is refused before decoding", async () => {
  const p = await file("big.jpg", jpegHeader(30000, 30000));
  const re = /'[^']*big\.jpg' is 30000x30000 \(900\.0 Mpx\), larger than the bound/;
  await assertRejects(() => readImageRgb(p), re);
  await assertRejects(() => readImageSize(p), re);
});

Deno.test("a small PNG whose image data inflate to 64 MiB is refused (decompression bomb)", async () => {
  const bomb = png(100, 100, await zlib(new Uint8Array(64 << 20)));
  assert(bomb.length < 200_000, `${bomb.length} bytes`);
  assertThrows(
    () => decodePngBytes(bomb, "bomb.png"),
    /refusing PNG 'bomb\.png': its image data inflates to more than 10100 bytes, beyond what its 100x100 header/,
  );
  const p = await file("bomb_label.png", bomb);
  await assertRejects(() => readLabelImage(p), /bomb_label\.png.*decompression bomb/);
});

Deno.test("the pixel bound is configurable; images within it decode as before", async () => {
  const rows = new Uint8Array(40 * 41); // 40 rows of filter byte + 40 gray samples
  const p = await file("small.png", png(40, 40, await zlib(rows)));
  assertEquals((await readLabelImage(p)).width, 40);
  assertEquals((await decodeImageRgb(await Deno.readFile(p), "small.png")).height, 40);
  Deno.env.set("PC_MAX_IMAGE_PIXELS", "1000");
  try {
    await assertRejects(
      () => readLabelImage(p),
      /small\.png' is 40x40 .*larger than the bound of 1000 pixels/,
    );
  } finally {
    Deno.env.delete("PC_MAX_IMAGE_PIXELS");
  }
});

Deno.test("devices, FIFOs and folders given as images are refused by name", async () => {
  await assertRejects(
    () => readLabelImage("/dev/zero"),
    /cannot read image '\/dev\/zero': it is a character device, not a regular file/,
  );
  await assertRejects(() => readImageRgb("/dev/zero"), /character device/);
  const dir = await tmpDir("pc-image-");
  const fifo = path.join(dir, "fifo.png");
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo");
  await assertRejects(() => readImageRgb(fifo), /named pipe \(FIFO\)/);
  await assertRejects(() => readLabelImage(dir), /a folder/);
});

Deno.test("predict: a device or FIFO given as the image list file is refused by name", async () => {
  const dir = await tmpDir("pc-image-");
  const fifo = path.join(dir, "list.txt");
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo");
  for (const [list, re] of [["/dev/zero", /character device/], [fifo, /named pipe \(FIFO\)/]] as const) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "lib/cli/predict.ts",
        "--config",
        "configs/tests/tiny_ce_synthetic.yml",
        "--model_path",
        dir,
        "--image_path",
        list,
        "--save_dir",
        path.join(dir, "out"),
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert(out.code !== 0 && err.includes(`--image_path list file '${list}'`) && re.test(err), err);
  }
});
