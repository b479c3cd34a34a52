/**
 * Minimal ZIP reader for PyTorch `.pth` archives (stored or deflated entries, ZIP64 sizes and offsets).
 * Entries are returned as views into the input when stored (PyTorch writes them uncompressed).
 */

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

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  readonly #bytes: Uint8Array;
  readonly #dv: DataView;

  constructor(bytes: Uint8Array, readonly source: string) {
    this.#bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const dv = this.#dv;
    let eocd = -1;
    for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
      if (dv.getUint32(i, true) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Error(`${source}: not a zip archive (no end-of-central-directory record)`);
    let count = dv.getUint16(eocd + 10, true);
    let cdOffset = dv.getUint32(eocd + 16, true);
    if (
      (count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && dv.getUint32(eocd - 20, true) === Z64_LOC
    ) {
      const z64 = Number(dv.getBigUint64(eocd - 20 + 8, true));
      if (dv.getUint32(z64, true) !== Z64_EOCD) throw new Error(`${source}: bad ZIP64 end record`);
      count = Number(dv.getBigUint64(z64 + 32, true));
      cdOffset = Number(dv.getBigUint64(z64 + 48, true));
    }
    let p = cdOffset;
    for (let k = 0; k < count; k++) {
      if (p + 46 > bytes.length || dv.getUint32(p, true) !== CEN) {
        throw new Error(`${source}: corrupt zip central directory`);
      }
      const method = dv.getUint16(p + 10, true);
      let compressedSize = dv.getUint32(p + 20, true);
      let size = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true);
      const extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      let localHeaderOffset = dv.getUint32(p + 42, true);
      const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field: the 0xffffffff fields, in order size, compressed size, offset.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = dv.getUint16(e, true), len = dv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) (size = Number(dv.getBigUint64(q, true))), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = Number(dv.getBigUint64(q, true))), (q += 8);
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(dv.getBigUint64(q, true));
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      p = eEnd + commentLen;
    }
  }

  /** Entry contents (async because deflated entries go through DecompressionStream). */
  async read(name: string): Promise<Uint8Array> {
    const ent = this.entries.get(name);
    if (!ent) throw new Error(`${this.source}: zip entry '${name}' not found`);
    const dv = this.#dv;
    const off = ent.localHeaderOffset;
    if (dv.getUint32(off, true) !== LOC) throw new Error(`${this.source}: bad local header for '${name}'`);
    const start = off + 30 + dv.getUint16(off + 26, true) + dv.getUint16(off + 28, true);
    const raw = this.#bytes.subarray(start, start + ent.compressedSize);
    if (raw.length !== ent.compressedSize) {
      throw new Error(`${this.source}: zip entry '${name}' is truncated`);
    }
    if (ent.method === 0) return raw;
    if (ent.method === 8) {
      const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
        new DecompressionStream("deflate-raw"),
      );
      const out = new Uint8Array(await new Response(stream).arrayBuffer());
      if (out.length !== ent.size) {
        throw new Error(`${this.source}: zip entry '${name}' inflated to a wrong size`);
      }
      return out;
    }
    throw new Error(`${this.source}: zip entry '${name}' uses unsupported compression method ${ent.method}`);
  }
}
