/**
 * Bounded fuzzing of the archive and weight readers: seeded mutations (truncation, bit flips, runs of
 * 0xff, size and offset fields inflated) of small valid files generated here. Each input must either load
 * or fail with our named error (ArchiveError / WeightFileError naming the file) — never an uncaught
 * RangeError, an "Array buffer allocation failed", a stack overflow — and an archive must never write
 * outside its destination. Reproducible: PC_FUZZ_SEED picks another seed, PC_FUZZ_CASES more cases.
 */
import * as path from "node:path";
import { ArchiveError, unpackArchive } from "../../lib/data/archive.ts";
import { parseWeightFile } from "../../lib/models/io/read.ts";
import { encodeSafetensors } from "../../lib/models/io/safetensors.ts";
import { type RawTensor, WeightFileError } from "../../lib/models/io/tensor.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { buildZip, gzip, makeTar } from "../data/_archives.ts";
import { tmpDir } from "../data/_tmp.ts";
import {
  linksUnder,
  mutate,
  numpyPickle,
  PickleWriter,
  rng,
  torchPickle,
  torchZip,
  treeOutside,
} from "./_hostile.ts";

const SEED = Number(Deno.env.get("PC_FUZZ_SEED") ?? 20261203);
const CASES = Number(Deno.env.get("PC_FUZZ_CASES") ?? 0); // 0: the defaults below
/** Wall-clock cap per test, so a slow machine still finishes in seconds (the count is reported). */
const CAP_MS = 4000;

const ALLOCATION = /allocation failed|Invalid array length|Invalid typed array length|Maximum call stack/i;

function describe(kind: string, seed: number, i: number, how: string) {
  return `${kind} case ${i} (seed ${seed}, ${how})`;
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

/** A legacy (PyTorch < 1.6) torch.save file: pickles of magic, protocol, sys info, object, keys; storages. */
function legacyTorch(): Uint8Array {
  const magic = new PickleWriter().op("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19").done();
  const proto = new PickleWriter().int(1001).done();
  const sys = new PickleWriter().op("}").str("little_endian").op("\x88s").done();
  const obj = torchPickle([
    { name: "a", storage: "0", numel: 6, shape: [2, 3], stride: [3, 1] },
    { name: "b", storage: "0", numel: 6, shape: [3], stride: [2], offset: 0 },
  ]);
  const keys = new PickleWriter().op("(").str("0").op("l").done();
  const storage = new Uint8Array(8 + 24);
  new DataView(storage.buffer).setBigInt64(0, 6n, true);
  storage.set(f32(1, 2, 3, 4, 5, 6), 8);
  const parts = [magic, proto, sys, obj, keys, storage];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

async function weightBases(): Promise<[string, Uint8Array][]> {
  const st = encodeSafetensors(
    new Map<string, RawTensor>([
      ["conv.weight", { dtype: "float32", shape: [2, 1, 1, 2], data: f32(1, 2, 3, 4) }],
      ["bn.var", { dtype: "float16", shape: [2], data: new Uint8Array([0, 60, 0, 64]) }],
      ["steps", { dtype: "int64", shape: [], data: new Uint8Array(8) }],
    ]),
    { layout: "HWIO", note: "fuzz" },
  );
  return [
    ["w.safetensors", st],
    ["w.safetensors.gz", await gzip(st)],
    [
      "w.pth",
      await torchZip(
        [
          { name: "a", storage: "0", numel: 6, shape: [2, 3], stride: [3, 1] },
          { name: "t", storage: "0", numel: 6, shape: [3, 2], stride: [1, 3] },
          { name: "c", storage: "1", numel: 2, shape: [2], stride: [1] },
        ],
        { "0": f32(1, 2, 3, 4, 5, 6), "1": f32(7, 8) },
      ),
    ],
    [
      "w-deflated.pth",
      await buildZip([
        {
          name: "a/data.pkl",
          data: torchPickle([{ name: "x", storage: "0", numel: 4, shape: [4], stride: [1] }]),
          method: 8,
        },
        { name: "a/data/0", data: f32(1, 2, 3, 4), method: 8 },
      ]),
    ],
    ["w-legacy.pth", legacyTorch()],
    ["w.pdparams", numpyPickle("conv.weight", [2, 3], f32(1, 2, 3, 4, 5, 6), true)],
  ];
}

Deno.test("fuzz: mutated weight files load or fail with a WeightFileError naming the file", async () => {
  const bases = await weightBases();
  for (const [name, bytes] of bases) {
    const wf = await parseWeightFile(bytes, name);
    assert(wf.tensors.size > 0, `the unmutated ${name} loads`);
  }
  const r = rng(SEED);
  const perBase = CASES || 400;
  const t0 = performance.now();
  let n = 0, loaded = 0;
  outer: for (let i = 0; i < perBase; i++) {
    for (const [name, base] of bases) {
      if (performance.now() - t0 > CAP_MS && !CASES) break outer;
      const { bytes, how } = mutate(base, r);
      const what = describe(name, SEED, i, how);
      n++;
      try {
        await parseWeightFile(bytes, name, { maxBytes: 64 << 20 });
        loaded++;
      } catch (e) {
        const err = e as Error;
        assert(err instanceof WeightFileError, `${what}: ${err.name}: ${err.message}`);
        assert(err.message.startsWith(`${name}: `), `${what}: does not name the file: ${err.message}`);
        assert(!ALLOCATION.test(err.message), `${what}: ${err.message}`);
        assert(err.cause === undefined, `${what}: unanticipated ${String(err.cause)}`);
      }
    }
  }
  assert(n >= 60, `only ${n} cases ran`);
  console.log(
    `weight fuzz: ${n} mutated files (seed ${SEED}), ${loaded} still loaded, the rest refused by name`,
  );
});

async function archiveBases(): Promise<[string, Uint8Array][]> {
  const tar = await makeTar([
    { name: "ds/", type: "directory" },
    { name: "ds/a.txt", data: "alpha" },
    { name: "ds/sub/b.bin", data: new Uint8Array(3000).map((_, i) => i % 251) },
    { name: "ds/l.txt", type: "symlink", linkname: "a.txt" },
    { name: "ds/h.txt", type: "link", linkname: "ds/a.txt" },
  ]);
  const zip = await buildZip([
    { name: "ds/", data: "" },
    { name: "ds/a.txt", data: "alpha" },
    { name: "ds/sub/b.bin", data: new Uint8Array(3000).map((_, i) => i % 7), method: 8 },
    { name: "ds/l.txt", data: "a.txt", symlink: true },
  ]);
  return [["x.tar", tar], ["x.tar.gz", await gzip(tar)], ["x.zip", zip]];
}

Deno.test("fuzz: mutated archives unpack or fail with an ArchiveError, never writing outside", async () => {
  const bases = await archiveBases();
  const root = await tmpDir("pc-fuzz-");
  const r = rng(SEED + 1);
  const perBase = CASES || 150;
  const t0 = performance.now();
  let n = 0, unpacked = 0;
  outer: for (let i = 0; i < perBase; i++) {
    for (const [name, base] of bases) {
      if (performance.now() - t0 > CAP_MS && !CASES) break outer;
      const { bytes, how } = mutate(base, r);
      const what = describe(name, SEED + 1, i, how);
      const caseDir = path.join(root, `c${n++}`);
      const out = path.join(caseDir, "d1", "d2", "out");
      await Deno.mkdir(out, { recursive: true });
      const arc = path.join(caseDir, name);
      await Deno.writeFile(arc, bytes);
      const before = await treeOutside(caseDir, out);
      try {
        await unpackArchive(arc, out, { progress: false, limits: { unpackRatioFloor: 1 << 20 } });
        unpacked++;
      } catch (e) {
        const err = e as Error;
        assert(err instanceof ArchiveError, `${what}: ${err.name}: ${err.message}`);
        assert(err.message.includes(arc), `${what}: does not name the archive: ${err.message}`);
        assert(!ALLOCATION.test(err.message), `${what}: ${err.message}`);
      }
      assertEquals(await treeOutside(caseDir, out), before, `${what}: wrote outside the destination`);
      assertEquals(await linksUnder(out), [], `${what}: left a link`);
      await Deno.remove(caseDir, { recursive: true });
    }
  }
  assert(n >= 30, `only ${n} cases ran`);
  console.log(
    `archive fuzz: ${n} mutated archives (seed ${SEED + 1}), ${unpacked} unpacked, the rest refused by name`,
  );
});
