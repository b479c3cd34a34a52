/**
 * Minimal ZIP reader for PyTorch `.pth` archives (stored or deflated entries, ZIP64 sizes and offsets).
 * Entries are returned as views into the input when stored (PyTorch writes them uncompressed).
 *
 * Every offset and size read from the file is checked against the file's length before it is used, a
 * name that appears twice is refused (readers disagree on which copy counts), and a deflated entry's
 * declared size is reserved from the memory budget before it is inflated, then enforced while inflating.
 *
 * Why not yauzl (which lib/data/archive.ts uses to unpack datasets to disk): a weight file is already in
 * memory, read once under the weight reader's budget, and yauzl's `fromBuffer` hands every entry out as a
 * stream of 64 KiB chunks that would have to be copied back together — a second copy of every tensor storage
 * (HRNet-W48's .pth is 270 MB) where this reader returns views. yauzl also reports entries one at a time and
 * does not refuse duplicate names, does not know our memory budget, and its errors name neither the weight
 * file nor the entry in the way tests/security/weights_test.ts checks. What is ours is small: the central
 * directory (ZIP64 included), bounds checks, and stored/deflated entries (inflated by the platform's
 * DecompressionStream).
 */
import { ReadBudget, WeightFileError } from "./tensor.ts";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50, CEN = 0x02014b50, LOC = 0x04034b50, Z64_LOC = 0x07064b50, Z64_EOCD = 0x06064b50;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 &&
    bytes[3] === 0x04;
}

function shown(name: string): string {
  return name.length > 120 ? `${name.slice(0, 80)}... [${name.length} characters]` : name;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  readonly #bytes: Uint8Array;
  readonly #dv: DataView;

  constructor(bytes: Uint8Array, readonly source: string) {
    this.#bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let eocd = -1;
    for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
      if (this.#u32(i, "end record") === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw this.#fail("not a zip archive (no end-of-central-directory record)");
    let count = this.#u16(eocd + 10, "entry count");
    let cdOffset = this.#u32(eocd + 16, "central directory offset");
    if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && this.#u32(eocd - 20, "") === Z64_LOC) {
      const z64 = this.#u64(eocd - 20 + 8, "ZIP64 end record offset");
      if (this.#u32(z64, "ZIP64 end record") !== Z64_EOCD) throw this.#fail("bad ZIP64 end record");
      count = this.#u64(z64 + 32, "ZIP64 entry count");
      cdOffset = this.#u64(z64 + 48, "ZIP64 central directory offset");
    }
    if (count > (bytes.length - Math.min(cdOffset, bytes.length)) / 46) {
      throw this.#fail(`the central directory declares ${count} entries, more than the file can hold`);
    }
    let p = cdOffset;
    for (let k = 0; k < count; k++) {
      if (this.#u32(p, "central directory entry") !== CEN) throw this.#fail("corrupt zip central directory");
      const method = this.#u16(p + 10, "");
      let compressedSize = this.#u32(p + 20, "");
      let size = this.#u32(p + 24, "");
      const nameLen = this.#u16(p + 28, "");
      const extraLen = this.#u16(p + 30, "");
      const commentLen = this.#u16(p + 32, "");
      let localHeaderOffset = this.#u32(p + 42, "");
      this.#need(p + 46, nameLen + extraLen + commentLen, "central directory entry");
      const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field: the 0xffffffff fields, in order size, compressed size, offset.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = this.#u16(e, ""), len = this.#u16(e + 2, "");
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) (size = this.#u64(q, `ZIP64 size of '${shown(name)}'`)), (q += 8);
          if (compressedSize === 0xffffffff) {
            (compressedSize = this.#u64(q, `ZIP64 compressed size of '${shown(name)}'`)), (q += 8);
          }
          if (localHeaderOffset === 0xffffffff) {
            localHeaderOffset = this.#u64(q, `ZIP64 offset of '${shown(name)}'`);
          }
        }
        e += 4 + len;
      }
      if (this.entries.has(name)) {
        throw this.#fail(
          `zip entry '${
            shown(name)
          }' appears twice; refusing an ambiguous archive (readers disagree on which ` +
            "copy counts)",
        );
      }
      this.entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      p = eEnd + commentLen;
    }
  }

  #fail(what: string): WeightFileError {
    return new WeightFileError(`${this.source}: ${what}`);
  }

  #need(at: number, n: number, what: string): void {
    if (!(at >= 0 && at + n <= this.#bytes.length)) {
      throw this.#fail(
        `corrupt zip: ${
          what || "a field"
        } at offset ${at} lies past the end of the file (${this.#bytes.length} bytes)`,
      );
    }
  }

  #u16(at: number, what: string): number {
    this.#need(at, 2, what);
    return this.#dv.getUint16(at, true);
  }

  #u32(at: number, what: string): number {
    this.#need(at, 4, what);
    return this.#dv.getUint32(at, true);
  }

  #u64(at: number, what: string): number {
    this.#need(at, 8, what);
    const v = this.#dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#fail(`corrupt zip: ${what || "a field"} is ${v}`);
    return Number(v);
  }

  /** Entry contents (async because deflated entries go through DecompressionStream). */
  async read(name: string, budget?: ReadBudget): Promise<Uint8Array> {
    const ent = this.entries.get(name);
    if (!ent) throw this.#fail(`zip entry '${shown(name)}' not found`);
    const off = ent.localHeaderOffset;
    const what = `the local header of '${shown(name)}'`;
    if (off + 30 > this.#bytes.length) {
      throw this.#fail(
        `${what} at offset ${off} lies past the end of the file (${this.#bytes.length} bytes); the file is ` +
          "truncated or corrupt",
      );
    }
    if (this.#u32(off, what) !== LOC) throw this.#fail(`bad local header for '${shown(name)}'`);
    const start = off + 30 + this.#u16(off + 26, what) + this.#u16(off + 28, what);
    if (start + ent.compressedSize > this.#bytes.length) {
      throw this.#fail(
        `zip entry '${shown(name)}' is truncated: ${ent.compressedSize} bytes declared at offset ${start}, ` +
          `the file has ${this.#bytes.length}`,
      );
    }
    const raw = this.#bytes.subarray(start, start + ent.compressedSize);
    if (ent.method === 0) {
      if (ent.size !== ent.compressedSize) {
        throw this.#fail(
          `stored zip entry '${shown(name)}' declares ${ent.size} bytes but holds ${raw.length}`,
        );
      }
      return raw;
    }
    if (ent.method === 8) {
      budget?.reserve(ent.size, `zip entry '${shown(name)}' (inflated)`);
      return await inflateExact(
        raw,
        ent.size,
        () =>
          this.#fail(
            `zip entry '${shown(name)}' does not inflate to its declared ${ent.size} bytes (corrupt)`,
          ),
      );
    }
    throw this.#fail(`zip entry '${shown(name)}' uses unsupported compression method ${ent.method}`);
  }
}

/** Inflates raw deflate data that must give exactly `size` bytes; stops as soon as it would give more. */
async function inflateExact(raw: Uint8Array, size: number, wrong: () => Error): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let n = 0;
  const reader = new Blob([raw as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch {
        throw wrong();
      }
      if (r.done) break;
      if (n + r.value.length > size) throw wrong();
      out.set(r.value, n);
      n += r.value.length;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  if (n !== size) throw wrong();
  return out;
}
