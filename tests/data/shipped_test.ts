/**
 * Shipped datasets (lib/data/shipped.ts): `<root>.tar` + `<root>.tar.sha256` are verified before anything is
 * unpacked, unpacked once by the archive code, and a damaged or swapped archive is refused with the file
 * named and nothing written. Also: the committed data/camvid.tar matches its committed checksum.
 */
import * as path from "node:path";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import {
  DataError,
  ensureShippedDataset,
  readChecksum,
  sha256File,
  shippedArchive,
  verifyArchive,
} from "../../lib/data/mod.ts";
import { packDataset } from "../../scripts/data/pack_dataset.ts";
import { makeTar } from "./_archives.ts";
import { tmpDir } from "./_tmp.ts";

const REPO = new URL("../../", import.meta.url).pathname;

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) out.push(...(await files(path.join(dir, e.name))).map((f) => `${e.name}/${f}`));
    else out.push(e.name);
  }
  return out.sort();
}

/** Awaits a rejection that must be a DataError. */
async function dataError(fn: () => Promise<unknown>): Promise<DataError> {
  const e = await assertRejects(fn);
  assert(e instanceof DataError, `expected a DataError, got ${e.name}: ${e.message}`);
  return e;
}

/** A small dataset folder packed as `<tmp>/data/tiny.tar` + `.sha256` by the packing script. */
async function shipTiny(): Promise<{ tmp: string; root: string; archive: string; checksum: string }> {
  const tmp = await tmpDir("pc-shipped-");
  const src = path.join(tmp, "src");
  await Deno.mkdir(path.join(src, "img"), { recursive: true });
  await Deno.writeTextFile(path.join(src, "list.txt"), "img/a.png lab/a.png\n");
  await Deno.writeFile(path.join(src, "img", "a.png"), new Uint8Array(3000).map((_, i) => i % 251));
  await Deno.mkdir(path.join(tmp, "data"));
  const root = path.join(tmp, "data", "tiny");
  const { archive, checksum } = shippedArchive(root);
  await packDataset(src, archive);
  return { tmp, root, archive, checksum };
}

Deno.test("the committed data/camvid.tar matches data/camvid.tar.sha256", async () => {
  const { archive, checksum } = shippedArchive(path.join(REPO, "data", "camvid"));
  assertEquals(await sha256File(archive), await readChecksum(checksum));
  assertEquals((await Deno.readTextFile(checksum)).trim().split(/\s+/)[1], "camvid.tar");
});

Deno.test("pack_dataset: same folder, same bytes; the checksum file is sha256sum's format", async () => {
  const a = await shipTiny();
  const again = path.join(a.tmp, "again.tar");
  await packDataset(path.join(a.tmp, "src"), again);
  assertEquals(await sha256File(again), await sha256File(a.archive));
  const line = await Deno.readTextFile(a.checksum);
  assertEquals(line, `${await sha256File(a.archive)}  tiny.tar\n`);
});

Deno.test("ensureShippedDataset: verifies, unpacks once, then returns at once", async () => {
  const t = await shipTiny();
  const first = await ensureShippedDataset(t.root, { progress: false });
  assertEquals([first?.unpacked, first?.written], [true, 2]);
  assertEquals(await files(t.root), [".unpacked-tiny.tar.json", "img/a.png", "list.txt"]);
  assertEquals(await Deno.readTextFile(path.join(t.root, "list.txt")), "img/a.png lab/a.png\n");
  const second = await ensureShippedDataset(t.root, { progress: false });
  assertEquals([second?.unpacked, second?.written], [false, 0]);
  // a folder without <root>.tar.sha256 is not a shipped dataset: nothing happens
  assertEquals(await ensureShippedDataset(path.join(t.tmp, "data", "other")), null);
});

Deno.test("ensureShippedDataset: a damaged archive is refused by its checksum, nothing is unpacked", async () => {
  const t = await shipTiny();
  const bytes = await Deno.readFile(t.archive);
  bytes[600] ^= 0x40; // inside the first file's content: the tar itself still reads
  await Deno.writeFile(t.archive, bytes);
  const e = await dataError(() => ensureShippedDataset(t.root, { progress: false }));
  assertEquals(e.code, "checksum-mismatch");
  assert(e.message.includes(t.archive) && e.message.includes(t.checksum), e.message);
  assert(e.message.includes("nothing was unpacked"), e.message);
  assert(!(await Deno.stat(t.root).then(() => true, () => false)), "no folder written");
});

Deno.test("ensureShippedDataset: a swapped archive with a hostile entry never reaches the unpacker", async () => {
  const t = await shipTiny();
  // an archive that would write outside its folder, put where the shipped one was
  await Deno.writeFile(t.archive, await makeTar([{ name: "../escaped.txt", data: "x" }]));
  const e = await dataError(() => verifyArchive(t.archive, t.checksum));
  assertEquals(e.code, "checksum-mismatch");
  assert(
    (await dataError(() => ensureShippedDataset(t.root, { progress: false }))).message.includes("SHA-256"),
  );
  assert(!(await Deno.stat(path.join(t.tmp, "data", "escaped.txt")).then(() => true, () => false)));
});

Deno.test("ensureShippedDataset: missing archive or malformed checksum file are named", async () => {
  const t = await shipTiny();
  await Deno.writeTextFile(t.checksum, "not a digest\n");
  const bad = await dataError(() => ensureShippedDataset(t.root));
  assertEquals(bad.code, "bad-checksum-file");
  assert(bad.message.includes(t.checksum));
  await Deno.writeTextFile(t.checksum, `${"0".repeat(64)}  tiny.tar\n`);
  await Deno.remove(t.archive);
  const missing = await dataError(() => ensureShippedDataset(t.root));
  assertEquals(missing.code, "missing-archive");
  assert(missing.message.includes(t.archive));
});
