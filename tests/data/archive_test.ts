/** Unpacking: tar, tar.gz, zip; refusal of unsafe entries; truncated/corrupt archives; resume. */
import * as path from "node:path";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { isUnpacked, unpackArchive } from "../../lib/data/archive.ts";
import { buildZip, gzip, makeTar, type TarEntry } from "./_archives.ts";
import { tmpDir } from "./_tmp.ts";

const quiet = { progress: false };
const big = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
const entries: TarEntry[] = [
  { name: "ds/", type: "directory" },
  { name: "ds/a.txt", data: "alpha" },
  { name: "ds/sub/big.bin", data: big },
  { name: "ds/sub/c.txt", data: "gamma" },
];

async function tmp(): Promise<string> {
  return await tmpDir("pc-archive-");
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = path.join(d, e.name);
      if (e.isDirectory) await walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
}

async function exists(p: string) {
  return await Deno.lstat(p).then(() => true, () => false);
}

for (const kind of ["tar", "tar.gz", "zip"] as const) {
  Deno.test(`unpacks a ${kind} archive, then skips it on re-run`, async () => {
    const dir = await tmp();
    const tar = await makeTar(entries);
    const bytes = kind === "tar"
      ? tar
      : kind === "tar.gz"
      ? await gzip(tar)
      : await buildZip(entries.filter((e) => e.data).map((e) => ({ name: e.name, data: e.data! })));
    const arc = path.join(dir, `x.${kind}`);
    await Deno.writeFile(arc, bytes);
    const out = path.join(dir, "out");
    const r = await unpackArchive(arc, out, quiet);
    assertEquals(r.kind, kind);
    assertEquals(r.written, 3);
    assertEquals(await Deno.readTextFile(path.join(out, "ds/a.txt")), "alpha");
    assertEquals(Array.from(await Deno.readFile(path.join(out, "ds/sub/big.bin"))), Array.from(big));
    assert(await isUnpacked(arc, out));
    const again = await unpackArchive(arc, out, quiet);
    assert(again.alreadyUnpacked && again.written === 0, "second run must not rewrite");
  });
}

Deno.test("stripComponents drops the top folder", async () => {
  const dir = await tmp();
  const arc = path.join(dir, "x.tar");
  await Deno.writeFile(arc, await makeTar(entries));
  await unpackArchive(arc, path.join(dir, "o"), { ...quiet, stripComponents: 1 });
  assertEquals(await listFiles(path.join(dir, "o")), [
    ".unpacked-x.tar.json",
    "a.txt",
    "sub/big.bin",
    "sub/c.txt",
  ]);
});

const unsafe: Array<[string, TarEntry[], RegExp]> = [
  [
    "a .. path",
    [{ name: "ok.txt", data: "x" }, { name: "../evil.txt", data: "x" }],
    /outside the target folder/,
  ],
  ["a nested .. path", [{ name: "a/../../evil.txt", data: "x" }], /outside the target folder/],
  ["an absolute path", [{ name: "/tmp/pc-evil.txt", data: "x" }], /absolute path/],
  [
    "a symlink pointing out",
    [{ name: "lnk", type: "symlink", linkname: "../../etc" }],
    /points to .* outside/,
  ],
  [
    "an absolute symlink",
    [{ name: "lnk", type: "symlink", linkname: "/etc/passwd" }],
    /points to .* outside/,
  ],
  [
    "a hard link pointing out",
    [{ name: "h", type: "link", linkname: "../outside.txt" }],
    /outside the target/,
  ],
];
for (const [what, ents, re] of unsafe) {
  Deno.test(`refuses a tar with ${what}`, async () => {
    const dir = await tmp();
    const arc = path.join(dir, "evil.tar");
    await Deno.writeFile(arc, await makeTar(ents));
    const out = path.join(dir, "inner", "out");
    const err = await assertRejects(() => unpackArchive(arc, out, quiet), re);
    assert(err.message.includes("evil.tar"), "the error names the archive");
    assert(
      !(await exists(path.join(dir, "inner", "evil.txt"))) && !(await exists(path.join(dir, "evil.txt"))),
    );
    assert(!(await isUnpacked(arc, out)));
  });
}

Deno.test("refuses zip entries with .. and zip symlinks pointing out", async () => {
  const dir = await tmp();
  for (
    const [name, zip] of [
      ["trav.zip", await buildZip([{ name: "../evil.txt", data: "x" }])],
      ["abs.zip", await buildZip([{ name: "/evil.txt", data: "x" }])],
      ["link.zip", await buildZip([{ name: "l", data: "../../etc", symlink: true }])],
    ] as const
  ) {
    const arc = path.join(dir, name);
    await Deno.writeFile(arc, zip);
    await assertRejects(() => unpackArchive(arc, path.join(dir, "o", name), quiet), /refusing to unpack/);
  }
  assert(!(await exists(path.join(dir, "o", "evil.txt"))));
});

Deno.test("refuses to write through a link in the target folder that points outside", async () => {
  const dir = await tmp();
  const out = path.join(dir, "out");
  await Deno.mkdir(path.join(dir, "elsewhere"), { recursive: true });
  await Deno.mkdir(out);
  await Deno.symlink(path.join(dir, "elsewhere"), path.join(out, "data"));
  const arc = path.join(dir, "x.tar");
  await Deno.writeFile(arc, await makeTar([{ name: "data/f.txt", data: "x" }]));
  await assertRejects(() => unpackArchive(arc, out, quiet), /through a link/);
  assert(!(await exists(path.join(dir, "elsewhere", "f.txt"))));
});

Deno.test("a symlink inside the target is allowed", async () => {
  const dir = await tmp();
  const arc = path.join(dir, "x.tar");
  await Deno.writeFile(
    arc,
    await makeTar([{ name: "d/a.txt", data: "A" }, { name: "d/l.txt", type: "symlink", linkname: "a.txt" }]),
  );
  await unpackArchive(arc, path.join(dir, "o"), quiet);
  assertEquals(await Deno.readTextFile(path.join(dir, "o/d/l.txt")), "A");
});

/** A truncated archive: clear error, complete files kept, the cut file absent, no temp files, no marker. */
async function checkTruncated(
  bytes: Uint8Array,
  name: string,
  re: RegExp,
  complete: string[],
  absent: string[],
) {
  const dir = await tmp();
  const arc = path.join(dir, name);
  await Deno.writeFile(arc, bytes);
  const out = path.join(dir, "out");
  const err = await assertRejects(() => unpackArchive(arc, out, quiet), re);
  assert(err.message.includes(name), `error names the archive: ${err.message}`);
  const files = await listFiles(out).catch(() => [] as string[]);
  assert(!files.some((f) => f.endsWith(".tmp")), `temporary files left: ${files}`);
  assert(!files.some((f) => f.startsWith(".unpacked")), "no completion marker");
  for (const f of complete) assert(files.includes(f), `${f} should be complete: ${files}`);
  for (const f of absent) assert(!files.includes(f), `${f} must not exist: ${files}`);
  if (complete.includes("ds/a.txt")) {
    assertEquals(await Deno.readTextFile(path.join(out, "ds/a.txt")), "alpha");
  }
  return { dir, out };
}

Deno.test("a tar cut inside a file: clear error, no partial file", async () => {
  const tar = await makeTar(entries);
  // a.txt's header+data = 1024 bytes after the dir entry (512); cut in the middle of big.bin's data
  await checkTruncated(tar.subarray(0, 512 + 1024 + 512 + 100_000), "cut.tar", /truncated/, ["ds/a.txt"], [
    "ds/sub/big.bin",
    "ds/sub/c.txt",
  ]);
});

Deno.test("a tar cut exactly at an entry boundary is detected (no end-of-archive marker)", async () => {
  const tar = await makeTar(entries);
  const boundary = 512 + 1024; // after the directory entry and a.txt
  await checkTruncated(tar.subarray(0, boundary), "boundary.tar", /end-of-archive marker/, ["ds/a.txt"], [
    "ds/sub/big.bin",
  ]);
});

Deno.test("a truncated tar.gz and a corrupt one give clear errors", async () => {
  const gz = await gzip(await makeTar(entries));
  await checkTruncated(
    gz.subarray(0, Math.floor(gz.length * 0.6)),
    "cut.tar.gz",
    /truncated or corrupt/,
    [],
    [
      "ds/sub/c.txt",
    ],
  );
  const bad = gz.slice();
  bad[bad.length - 6] ^= 0xff; // CRC-32 field of the gzip trailer
  await checkTruncated(bad, "crc.tar.gz", /truncated or corrupt/, [], []);
});

Deno.test("a truncated zip and a zip with a corrupted entry give clear errors", async () => {
  const zip = await buildZip([{ name: "ds/a.txt", data: "alpha" }, { name: "ds/b.bin", data: big }]);
  await checkTruncated(zip.subarray(0, 5000), "cut.zip", /truncated or corrupt/, [], [
    "ds/a.txt",
    "ds/b.bin",
  ]);
  const bad = zip.slice();
  bad[30 + "ds/a.txt".length + 5 + 30 + "ds/b.bin".length + 1000] ^= 0x55; // a byte of b.bin's data
  await checkTruncated(bad, "flip.zip", /CRC-32 mismatch/, ["ds/a.txt"], ["ds/b.bin"]);
});

Deno.test("not an archive: clear error", async () => {
  const dir = await tmp();
  const p = path.join(dir, "notes.zip");
  await Deno.writeTextFile(p, "hello, not a zip");
  await assertRejects(() => unpackArchive(p, path.join(dir, "o"), quiet), /not a .tar, .tar.gz or .zip/);
  await assertRejects(() => unpackArchive(path.join(dir, "missing.tar"), dir, quiet), /cannot read archive/);
});

Deno.test("re-running after an interrupted unpack writes only what is missing", async () => {
  const tar = await makeTar(entries);
  const { dir, out } = await checkTruncated(
    tar.subarray(0, 512 + 1024 + 512 + 100_000),
    "ds.tar",
    /truncated/,
    [
      "ds/a.txt",
    ],
    [],
  );
  await Deno.writeFile(path.join(dir, "ds.tar"), tar); // the complete download
  const r = await unpackArchive(path.join(dir, "ds.tar"), out, quiet);
  assertEquals([r.skipped, r.written], [1, 2]);
  assertEquals(Array.from(await Deno.readFile(path.join(out, "ds/sub/big.bin"))), Array.from(big));
});

Deno.test("progress prints plain lines with bytes, files and rate when not a terminal", async () => {
  const dir = await tmp();
  const arc = path.join(dir, "p.tar");
  await Deno.writeFile(arc, await makeTar(entries));
  const lines: string[] = [];
  await unpackArchive(arc, path.join(dir, "o"), { write: (l) => lines.push(l) });
  const last = lines.filter((l) => l).at(-1)!;
  assert(/unpack p\.tar .*100\.0%.*KiB.*\/s/.test(last) && /3 written/.test(last), `progress line: ${last}`);
});
