/**
 * Builders of hostile inputs for the security suite (generated in the test, no binary fixtures) and
 * checks that nothing was written outside a destination.
 */
import * as path from "node:path";
import { crc32 } from "node:zlib";
import { concatBytes } from "../../lib/util/bytes.ts";
import { buildZip, type ZipItem } from "../data/_archives.ts";

/** Every path under `root` (lstat, links not followed) except those under `skip`. */
export async function treeOutside(root: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = path.join(d, e.name);
      if (p === skip || p.startsWith(skip + path.sep)) continue;
      const st = await Deno.lstat(p);
      out.push(`${path.relative(root, p)} ${st.isSymlink ? "link" : st.isDirectory ? "dir" : st.size}`);
      if (st.isDirectory) await walk(p);
    }
  };
  await walk(root);
  return out.sort();
}

/** Symlinks under `dir`. */
export async function linksUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = path.join(d, e.name);
      if (e.isSymlink) out.push(path.relative(dir, p));
      else if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir).catch(() => {});
  return out;
}

/** A seeded generator (mulberry32) for the fuzz tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One mutation of `bytes`: truncation, bit flips, a run of 0xff (inflating a size or offset field),
 * or a little-endian u32 / u64 size field set to a huge or off-by-a-little value.
 */
export function mutate(bytes: Uint8Array, r: () => number): { bytes: Uint8Array; how: string } {
  const out = bytes.slice();
  const at = Math.floor(r() * Math.max(1, out.length));
  switch (Math.floor(r() * 5)) {
    case 0: {
      const n = Math.floor(r() * out.length);
      return { bytes: out.subarray(0, n), how: `truncated to ${n}` };
    }
    case 1: {
      const flips = 1 + Math.floor(r() * 8);
      for (let i = 0; i < flips; i++) out[Math.floor(r() * out.length)] ^= 1 << Math.floor(r() * 8);
      return { bytes: out, how: `${flips} bit flips` };
    }
    case 2: {
      const n = 1 + Math.floor(r() * 8);
      for (let i = 0; i < n && at + i < out.length; i++) out[at + i] = 0xff;
      return { bytes: out, how: `${n} bytes of 0xff at ${at}` };
    }
    case 3: {
      const dv = new DataView(out.buffer);
      const v = [0x7fffffff, 0xffffffff, 0x10000000, 0x40000000][Math.floor(r() * 4)];
      if (at + 4 <= out.length) dv.setUint32(at, v, true);
      return { bytes: out, how: `u32 ${v} at ${at}` };
    }
    default: {
      const dv = new DataView(out.buffer);
      const old = at + 4 <= out.length ? dv.getUint32(at, true) : 0;
      const v = (old + 1 + Math.floor(r() * 1024)) >>> 0;
      if (at + 4 <= out.length) dv.setUint32(at, v, true);
      return { bytes: out, how: `u32 ${old} -> ${v} at ${at}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Weight files: a small pickle writer (protocol 2 opcodes) and PyTorch zip checkpoints

/** Pickle opcodes as a little assembler: strings are latin-1 opcode text, numbers become BININT. */
export class PickleWriter {
  #parts: number[] = [0x80, 0x02];
  op(text: string): this {
    for (let i = 0; i < text.length; i++) this.#parts.push(text.charCodeAt(i));
    return this;
  }
  int(v: number): this {
    this.#parts.push(0x4a, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  str(s: string): this {
    return this.#counted(0x58, new TextEncoder().encode(s)); // BINUNICODE
  }
  bytes(b: Uint8Array): this {
    return this.#counted(0x42, b); // BINBYTES
  }
  /** An opcode with a 4-byte little-endian length, then the bytes. */
  #counted(op: number, b: Uint8Array): this {
    const n = b.length;
    this.#parts.push(op, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
    for (const x of b) this.#parts.push(x);
    return this;
  }
  global(module: string, name: string): this {
    return this.op(`c${module}\n${name}\n`);
  }
  ints(xs: number[]): this {
    this.op("(");
    for (const x of xs) this.int(x);
    return this.op("t");
  }
  done(): Uint8Array {
    return Uint8Array.from([...this.#parts, 0x2e]);
  }
}

export interface TorchTensorSpec {
  name: string;
  storage: string;
  numel: number;
  shape: number[];
  stride: number[];
  offset?: number;
}

/** data.pkl of a torch.save'd dict name -> tensor (`_rebuild_tensor_v2` on FloatStorage storages). */
export function torchPickle(tensors: TorchTensorSpec[]): Uint8Array {
  const w = new PickleWriter().op("}(");
  for (const t of tensors) {
    w.str(t.name).global("torch._utils", "_rebuild_tensor_v2").op("(");
    w.op("(").str("storage").global("torch", "FloatStorage").str(t.storage).str("cpu").int(t.numel).op("tQ");
    w.int(t.offset ?? 0).ints(t.shape).ints(t.stride).op("\x89}tR");
  }
  return w.op("u").done();
}

/** A PyTorch zip checkpoint: `archive/data.pkl` + `archive/data/<key>` storages (stored entries). */
export function torchZip(
  tensors: TorchTensorSpec[],
  storages: Record<string, Uint8Array>,
  extra: ZipItem[] = [],
): Promise<Uint8Array> {
  return buildZip([
    { name: "archive/data.pkl", data: torchPickle(tensors) },
    { name: "archive/byteorder", data: "little" },
    ...Object.entries(storages).map(([k, v]) => ({ name: `archive/data/${k}`, data: v })),
    ...extra,
  ]);
}

/** A .pdparams-style pickle of one numpy array: `{name: ndarray}` rebuilt by _reconstruct + BUILD. */
export function numpyPickle(name: string, shape: number[], raw: Uint8Array, fortran = false): Uint8Array {
  const w = new PickleWriter().op("}").str(name);
  w.global("numpy.core.multiarray", "_reconstruct").op("(").global("numpy", "ndarray").ints([0]).bytes(
    new Uint8Array([0x62]),
  ).op("tR");
  w.op("(").int(1).ints(shape).global("numpy", "dtype").op("(").str("f4").op("\x89\x88tR");
  w.op(fortran ? "\x88" : "\x89").bytes(raw).op("tb");
  return w.op("s").done();
}

/** Patches the central-directory local-header offset of zip entry `name` (first match). */
export function patchZipOffset(zip: Uint8Array, name: string, offset: number): Uint8Array {
  const out = zip.slice();
  const dv = new DataView(out.buffer);
  const enc = new TextEncoder().encode(name);
  for (let p = 0; p + 46 <= out.length; p++) {
    if (dv.getUint32(p, true) !== 0x02014b50) continue;
    const n = dv.getUint16(p + 28, true);
    if (n === enc.length && enc.every((b, i) => out[p + 46 + i] === b)) {
      dv.setUint32(p + 42, offset, true);
      return out;
    }
  }
  throw new Error(`no central entry ${name}`);
}

// ---------------------------------------------------------------------------------------------------
// Images

export async function zlib(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** A PNG with any IHDR (8-bit, colour type `color`) and the given zlib image data. */
export function png(width: number, height: number, idat: Uint8Array, color = 0): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, color, 0, 0, 0], 8);
  return concatBytes([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

/** The start of a baseline JPEG whose frame header (SOF0) declares width x height. */
export function jpegHeader(width: number, height: number): Uint8Array {
  const app0 = [0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sof = [0xff, 0xc0, 0, 11, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0];
  return new Uint8Array([0xff, 0xd8, ...app0, ...sof, 0xff, 0xd9]);
}
