/** Test helpers that build small archives in memory (tar via tar-stream's packer, zip by hand: stored or deflated entries). */
// @ts-types="@types/tar-stream"
import tarStream from "tar-stream";
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { concatBytes } from "../../lib/util/bytes.ts";

export interface TarEntry {
  name: string;
  data?: Uint8Array | string;
  type?: "file" | "directory" | "symlink" | "link";
  linkname?: string;
}

export async function makeTar(entries: TarEntry[]): Promise<Uint8Array> {
  const pack = tarStream.pack();
  const chunks: Uint8Array[] = [];
  const done = new Promise<void>((res, rej) => {
    pack.on("data", (c: Uint8Array) => chunks.push(c));
    pack.on("end", () => res());
    pack.on("error", rej);
  });
  for (const e of entries) {
    const data = typeof e.data === "string" ? new TextEncoder().encode(e.data) : e.data;
    const type = e.type ?? "file";
    const header = { name: e.name, type, linkname: e.linkname, mtime: new Date(1_600_000_000_000) };
    if (type === "file") {
      pack.entry({ ...header, size: data?.length ?? 0 }, Buffer.from(data ?? new Uint8Array(0)));
    } else pack.entry(header);
  }
  pack.finalize();
  await done;
  return concatBytes(chunks);
}

export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

async function deflateRaw(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

export interface ZipItem {
  name: string;
  data: Uint8Array | string;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
  symlink?: boolean;
}

/** A zip archive (stored or deflated entries, unix modes) built in memory. */
export async function buildZip(items: ZipItem[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const local: Uint8Array[] = [], central: Uint8Array[] = [];
  let offset = 0;
  for (const it of items) {
    const name = enc.encode(it.name);
    const data = typeof it.data === "string" ? enc.encode(it.data) : it.data;
    const method = it.method ?? 0;
    const body = method === 8 ? await deflateRaw(data) : data;
    const crc = crc32(data);
    const lh = new DataView(new ArrayBuffer(30));
    lh.setUint32(0, 0x04034b50, true);
    lh.setUint16(4, 20, true);
    lh.setUint16(6, 0x0800, true); // UTF-8 names
    lh.setUint16(8, method, true); // 0 stored, 8 deflated
    lh.setUint16(12, 0x5121, true); // 2020-09-01
    lh.setUint32(14, crc, true);
    lh.setUint32(18, body.length, true);
    lh.setUint32(22, data.length, true);
    lh.setUint16(26, name.length, true);
    const ch = new DataView(new ArrayBuffer(46));
    ch.setUint32(0, 0x02014b50, true);
    ch.setUint16(4, 0x031e, true); // made by unix (the mode in the external attributes counts)
    ch.setUint16(6, 20, true);
    ch.setUint16(8, 0x0800, true);
    ch.setUint16(10, method, true);
    ch.setUint16(14, 0x5121, true);
    ch.setUint32(16, crc, true);
    ch.setUint32(20, body.length, true);
    ch.setUint32(24, data.length, true);
    ch.setUint16(28, name.length, true);
    ch.setUint32(38, ((it.symlink ? 0o120777 : 0o100644) << 16) >>> 0, true);
    ch.setUint32(42, offset, true);
    local.push(new Uint8Array(lh.buffer), name, body);
    central.push(new Uint8Array(ch.buffer), name);
    offset += 30 + name.length + body.length;
  }
  const cd = concatBytes(central);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, items.length, true);
  end.setUint16(10, items.length, true);
  end.setUint32(12, cd.length, true);
  end.setUint32(16, offset, true);
  return concatBytes([...local, cd, new Uint8Array(end.buffer)]);
}
