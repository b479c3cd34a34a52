/**
 * Hostile archives: nothing is ever written outside the destination (links made by the archive or found
 * in the destination are never followed, temp and marker files are never opened through a link), and
 * what an archive may expand to is bounded (size, entries, ratio), with errors naming archive and entry.
 */
import * as path from "node:path";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { ArchiveError, isUnpacked, unpackArchive } from "../../lib/data/archive.ts";
import { buildZip, gzip, makeTar, type TarEntry } from "../data/_archives.ts";
import { tmpDir } from "../data/_tmp.ts";
import { linksUnder, treeOutside } from "./_hostile.ts";

const quiet = { progress: false };

/** Unpacks `bytes` into root/d1/d2/d3/out; returns the error (if any) and checks nothing escaped. */
async function unpackHostile(
  name: string,
  bytes: Uint8Array,
  opts: Parameters<typeof unpackArchive>[2] = {},
  prepare?: (out: string, root: string) => Promise<void>,
): Promise<{ err: Error | null; out: string; root: string }> {
  const root = await tmpDir("pc-hostile-");
  const out = path.join(root, "d1", "d2", "d3", "out");
  await Deno.mkdir(out, { recursive: true });
  const arc = path.join(root, name);
  await Deno.writeFile(arc, bytes);
  await prepare?.(out, root);
  const before = await treeOutside(root, out);
  let err: Error | null = null;
  try {
    await unpackArchive(arc, out, { ...quiet, ...opts });
  } catch (e) {
    err = e as Error;
  }
  assertEquals(
    await treeOutside(root, out),
    before,
    `${name}: something was written outside the destination`,
  );
  assertEquals(
    await linksUnder(out).then((l) => l.filter((p) => !p.startsWith("pre"))),
    [],
    `${name}: links made`,
  );
  if (err) {
    assert(err instanceof ArchiveError, `${name}: ${err.name}: ${err.message}`);
    assert(err.message.includes(name), `the error names the archive: ${err.message}`);
  }
  return { err, out, root };
}

const chain = "a/b/c/d/e/f/g/h";

Deno.test("the issue's link-through-link trick cannot plant the completion marker outside", async () => {
  // link -> the destination itself (passes a check on the path as written), then a link *through* it
  // named like the marker's temporary file, pointing out of the destination
  const ents: TarEntry[] = [
    { name: `${chain}/`, type: "directory" },
    { name: `${chain}/link`, type: "symlink", linkname: "../../../../../../../.." },
    { name: `${chain}/link/.unpacked-evil.tar.json.tmp`, type: "symlink", linkname: "../../../x" },
    { name: `${chain}/link/.unpacked-evil.tar.json`, type: "symlink", linkname: "../../../x" },
    { name: "ok.txt", data: "fine" },
  ];
  const { err, out, root } = await unpackHostile("evil.tar", await makeTar(ents));
  assert(err, "must be refused");
  assert(/through a link|link to the target folder itself/.test(err.message), err.message);
  assert(!(await Deno.lstat(path.join(root, "d1", "x")).catch(() => null)), "x planted outside");
  assert(!(await isUnpacked(path.join(root, "evil.tar"), out)));
});

Deno.test("the same trick aimed at the per-file temporary names cannot write outside", async () => {
  const ents: TarEntry[] = [
    { name: "sub/", type: "directory" },
    { name: "sub/up", type: "symlink", linkname: ".." }, // resolves to the destination itself
    { name: `sub/up/data.bin.${Deno.pid}.unpack.tmp`, type: "symlink", linkname: "../../../victim" },
    { name: `data.bin.${Deno.pid}.unpack.tmp`, type: "symlink", linkname: "../../../victim" },
    { name: "data.bin", data: "attacker-chosen content" },
  ];
  const { err, root } = await unpackHostile("tmpnames.tar", await makeTar(ents), {}, async (_out, r) => {
    await Deno.writeTextFile(path.join(r, "d1", "victim"), "precious");
  });
  assert(err, "the link to the destination itself must be refused");
  assertEquals(await Deno.readTextFile(path.join(root, "d1", "victim")), "precious");
});

Deno.test("a link chain whose resolved target leaves the destination is refused, not followed", async () => {
  // every link looks inside when read alone; followed through each other they reach root/d1
  const ents: TarEntry[] = [
    { name: "x/y/", type: "directory" },
    { name: "x/y/up", type: "symlink", linkname: "../.." },
    { name: "top/", type: "directory" },
    { name: "top/l2", type: "symlink", linkname: "../x/y/up/.." },
    { name: "top/l2/escape.txt", data: "out" },
  ];
  const { err } = await unpackHostile("chain.tar", await makeTar(ents));
  assert(err && /through a link|target folder itself|outside/.test(err.message), String(err));
});

Deno.test("links inside the destination become copies; links to folders, missing files or out are refused", async () => {
  const ok = await unpackHostile(
    "links.tar",
    await makeTar([
      { name: "d/a.txt", data: "A" },
      { name: "d/l1.txt", type: "symlink", linkname: "l2.txt" }, // a chain, before its target exists
      { name: "d/l2.txt", type: "symlink", linkname: "a.txt" },
      { name: "d/h.txt", type: "link", linkname: "d/l1.txt" },
    ]),
  );
  assertEquals(ok.err, null);
  for (const f of ["a.txt", "l1.txt", "l2.txt", "h.txt"]) {
    assertEquals(await Deno.readTextFile(path.join(ok.out, "d", f)), "A", f);
    assert((await Deno.lstat(path.join(ok.out, "d", f))).isFile, `${f} is a regular file`);
  }
  const cases: Array<[string, TarEntry[], RegExp]> = [
    [
      "folder.tar",
      [{ name: "d/x", data: "1" }, { name: "l", type: "symlink", linkname: "d" }],
      /links to folders/,
    ],
    ["dangling.tar", [{ name: "l", type: "symlink", linkname: "nothing" }], /does not contain/],
    ["loop.tar", [{ name: "a", type: "symlink", linkname: "b" }, {
      name: "b",
      type: "symlink",
      linkname: "a",
    }], /loop/],
    [
      "hardout.tar",
      [{ name: "h", type: "link", linkname: "../../../../victim" }],
      /outside the target folder/,
    ],
  ];
  for (const [name, ents, re] of cases) {
    const { err } = await unpackHostile(name, await makeTar(ents));
    assert(err && re.test(err.message), `${name}: ${err?.message}`);
  }
});

Deno.test("links already in the destination are never followed, as folders or as files", async () => {
  const { err, root } = await unpackHostile(
    "pre.tar",
    await makeTar([{ name: "f.txt", data: "new" }, { name: "pre-dir/g.txt", data: "x" }]),
    {},
    async (out, r) => {
      await Deno.mkdir(path.join(r, "elsewhere"));
      await Deno.writeTextFile(path.join(r, "victim.txt"), "precious");
      await Deno.symlink(path.join(r, "victim.txt"), path.join(out, "f.txt")); // a file entry lands on it
      await Deno.symlink(path.join(r, "elsewhere"), path.join(out, "pre-dir")); // a folder on the way
    },
  );
  assert(err && /through a link \('pre-dir'/.test(err.message), String(err));
  assertEquals(await Deno.readTextFile(path.join(root, "victim.txt")), "precious");
  assertEquals([...Deno.readDirSync(path.join(root, "elsewhere"))].length, 0);
});

Deno.test("zip: a link through a link and a link out are refused; nothing escapes", async () => {
  const zip = await buildZip([
    { name: "s/", data: "" },
    { name: "s/up", data: "..", symlink: true },
    { name: "s/up/.unpacked-z.zip.json.tmp", data: "../../../x", symlink: true },
  ]);
  const { err } = await unpackHostile("z.zip", zip);
  assert(err && /through a link|target folder itself/.test(err.message), String(err));
});

Deno.test("a zip bomb is refused from its declared size before anything is written (default bounds)", async () => {
  // 64 MiB of zeros deflate to ~64 KiB: 1000x, above the default 100x (and above the 16 MiB floor)
  const zip = await buildZip([
    { name: "ok.txt", data: "fine" },
    { name: "bomb.bin", data: new Uint8Array(64 << 20), method: 8 },
  ]);
  const { err, out } = await unpackHostile("bomb.zip", zip);
  assert(
    err && /entry 'bomb\.bin' .*more than .*100x its own size.*decompression bomb/.test(err.message),
    String(err),
  );
  assert(/PC_MAX_UNPACK_RATIO/.test(err.message), "the message says how to raise the bound");
  assert(!(await Deno.lstat(path.join(out, "bomb.bin")).catch(() => null)), "nothing of the bomb written");
});

Deno.test("a tar.gz bomb (one huge entry, or a flood of zero blocks) is refused while streaming", async () => {
  const big = await gzip(await makeTar([{ name: "zeros.bin", data: new Uint8Array(40 << 20) }]));
  const a = await unpackHostile("big.tar.gz", big);
  // (the entry's declared size, or the decompressed stream, whichever the first gzip chunk reaches)
  assert(
    a.err && /(zeros\.bin|before its first entry).*decompression bomb/.test(a.err.message),
    String(a.err),
  );
  const tar = await makeTar([{ name: "a.txt", data: "x" }]);
  const flood = new Uint8Array(tar.length + (40 << 20));
  flood.set(tar);
  const b = await unpackHostile("flood.tar.gz", await gzip(flood));
  assert(b.err && /decompresses to more than/.test(b.err.message), String(b.err));
});

Deno.test("size, entry-count and ratio bounds are configurable and name the entry", async () => {
  const ents: TarEntry[] = Array.from({ length: 12 }, (_, i) => ({ name: `f${i}.txt`, data: "0123456789" }));
  const tar = await makeTar(ents);
  const n = await unpackHostile("many.tar", tar, { limits: { unpackMaxEntries: 10 } });
  assert(
    n.err && /more than 10 entries \(at 'f10\.txt'\).*PC_MAX_UNPACK_ENTRIES/.test(n.err.message),
    String(n.err),
  );
  const s = await unpackHostile("size.tar", tar, { limits: { unpackMaxBytes: 55 } });
  assert(
    s.err && /at entry 'f5\.txt' .*more than 55 bytes.*PC_MAX_UNPACK_BYTES/.test(s.err.message),
    String(s.err),
  );
  const z = await buildZip([{ name: "z.bin", data: new Uint8Array(1 << 20), method: 8 }]);
  const r = await unpackHostile("ratio.zip", z, { limits: { unpackRatioFloor: 0, unpackMaxRatio: 10 } });
  assert(r.err && /entry 'z\.bin'.*10x its own size/.test(r.err.message), String(r.err));
  const ok = await unpackHostile("ratio-ok.zip", z, {
    limits: { unpackRatioFloor: 0, unpackMaxRatio: 2000 },
  });
  assertEquals(ok.err, null, "the same archive passes a larger bound");
  // an environment variable sets the default for every call
  Deno.env.set("PC_MAX_UNPACK_ENTRIES", "3");
  try {
    const e = await unpackHostile("env.tar", tar);
    assert(e.err && /more than 3 entries/.test(e.err.message), String(e.err));
  } finally {
    Deno.env.delete("PC_MAX_UNPACK_ENTRIES");
  }
});

Deno.test("a 5000-character member name is refused by name, not reported as a corrupt archive", async () => {
  const long = "n".repeat(5000);
  const { err } = await unpackHostile("long.tar", await makeTar([{ name: long, data: "x" }]));
  assert(err && /longer than a path may be \(4096 bytes\)/.test(err.message), String(err));
  assert(err.message.includes("[5000 characters]") && !/truncated or corrupt/.test(err.message), err.message);
  assertEquals((err as ArchiveError).entry, long);
  const comp = `d/${"c".repeat(300)}/f.txt`;
  const c = await unpackHostile("comp.tar", await makeTar([{ name: comp, data: "x" }]));
  assert(
    c.err && /component of 300 characters, longer than a file name may be/.test(c.err.message),
    String(c.err),
  );
});

Deno.test("an archive entry may not pose as the completion marker", async () => {
  const { err } = await unpackHostile(
    "fake.tar",
    await makeTar([{ name: ".unpacked-fake.tar.json", data: '{"size":0}' }]),
  );
  assert(err && /completion marker/.test(err.message), String(err));
});

Deno.test("a device or folder given as the archive is refused by name", async () => {
  const dir = await tmpDir("pc-hostile-");
  await assertRejects(
    () => unpackArchive("/dev/zero", path.join(dir, "o"), quiet),
    /'\/dev\/zero'.*character device/,
  );
  await assertRejects(() => unpackArchive(dir, path.join(dir, "o"), quiet), /a folder/);
});
