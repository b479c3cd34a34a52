/**
 * Safe, streamed, resumable unpacking of `.tar`, `.tar.gz`/`.tgz` and `.zip` archives.
 *
 * - Streamed: tar through tar-stream (gzip through the platform's DecompressionStream, which checks the
 *   gzip CRC and length); zip through yauzl (central directory, entries inflated as streams; we check
 *   each entry's CRC-32 because yauzl does not).
 * - Safe: an entry whose path is absolute, climbs out with `..`, passes through a link, or is a link
 *   whose target lies outside the destination is refused with an error naming the archive and the entry.
 * - Atomic per file: each file is written to a temporary name and renamed when complete, so a truncated
 *   or corrupt archive leaves no file that looks complete but is not; the error says the archive is
 *   truncated or corrupt. A marker `.unpacked-<archive name>.json` is written in the destination only
 *   after the whole archive was read; with it present and matching the archive's size and mtime, a
 *   re-run returns at once. Without it (interrupted run), files already present with the entry's size
 *   and mtime are skipped, so a re-run only writes what is missing.
 * - Progress: bytes of the archive read, files written, rate and ETA (lib/util/progress.ts: a bar on
 *   terminals, plain lines otherwise).
 */
import { posix as pathPosix } from "node:path";
import * as path from "node:path";
import { Readable } from "node:stream";
// @ts-types="@types/tar-stream"
import tarStream from "tar-stream";
// @ts-types="@types/yauzl"
import yauzl from "yauzl";
import { Progress } from "../util/progress.ts";

export type ArchiveKind = "tar" | "tar.gz" | "zip";

export interface UnpackOptions {
  /** Show progress (default true): a bar on terminals, plain lines otherwise. */
  progress?: boolean;
  /** Remove this many leading path components from every entry (like `tar --strip-components`). */
  stripComponents?: number;
  /** Where progress and notes go (default: stderr). */
  write?: (line: string, inPlace: boolean) => void;
}

export interface UnpackResult {
  archive: string;
  dest: string;
  kind: ArchiveKind;
  /** Files written by this call. */
  written: number;
  /** Files already present and complete (skipped). */
  skipped: number;
  /** Bytes of file content written by this call. */
  bytes: number;
  /** True when the completion marker showed the archive was already unpacked (nothing read). */
  alreadyUnpacked: boolean;
}

/** Error for archives we refuse to unpack or cannot read; `entry` names the offending entry if any. */
export class ArchiveError extends Error {
  constructor(message: string, readonly archive: string, readonly entry?: string) {
    super(message);
    this.name = "ArchiveError";
  }
}

/** The archive kind, from the magic bytes (falling back to the file name for tar). */
export async function detectArchiveKind(file: string): Promise<ArchiveKind> {
  const head = new Uint8Array(512);
  let n = 0;
  const f = await Deno.open(file);
  try {
    while (n < 512) {
      const r = await f.read(head.subarray(n));
      if (r === null) break;
      n += r;
    }
  } finally {
    f.close();
  }
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "tar.gz";
  if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5)) return "zip";
  const magic = new TextDecoder().decode(head.subarray(257, 262));
  if (magic === "ustar") return "tar";
  if (/\.tar$/i.test(file)) return "tar";
  throw new ArchiveError(
    `'${file}' is not a .tar, .tar.gz or .zip archive (unrecognised first bytes)`,
    file,
  );
}

const markerName = (archive: string) => `.unpacked-${path.basename(archive)}.json`;

interface Marker {
  archive: string;
  size: number;
  mtimeMs: number;
  files: number;
}

/** Whether `dest` holds a complete unpack of `archive` (marker present and matching size and mtime). */
export async function isUnpacked(archive: string, dest: string): Promise<boolean> {
  try {
    const st = await Deno.stat(archive);
    const m = JSON.parse(await Deno.readTextFile(path.join(dest, markerName(archive)))) as Marker;
    return m.size === st.size && m.mtimeMs === (st.mtime?.getTime() ?? 0);
  } catch {
    return false;
  }
}

/** Normalises an entry name to a safe relative path, or throws naming the entry. */
export function safeEntryPath(archive: string, name: string, strip = 0): string | null {
  const refuse = (why: string) =>
    new ArchiveError(
      `refusing to unpack '${archive}': entry '${name}' ${why}; the archive may be malicious or was made ` +
        "with absolute paths (re-create it with relative paths)",
      archive,
      name,
    );
  if (name.includes("\0")) throw refuse("contains a NUL byte");
  const unified = name.replace(/\\/g, "/");
  if (unified.startsWith("/") || /^[a-zA-Z]:/.test(unified)) throw refuse("has an absolute path");
  const norm = pathPosix.normalize(unified);
  if (norm === ".." || norm.startsWith("../")) {
    throw refuse("would be written outside the target folder (..)");
  }
  const parts = norm.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.length <= strip) return null; // stripped away (e.g. the top folder itself)
  return parts.slice(strip).join("/");
}

/** CRC-32 (IEEE) for zip entries. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32Update(crc: number, buf: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** State shared by the tar and zip paths: where to write, what was done, progress. */
class Writer {
  written = 0;
  skipped = 0;
  bytes = 0;
  realDest = "";
  #lastDraw = 0;
  constructor(
    readonly archive: string,
    readonly dest: string,
    readonly strip: number,
    readonly progress: Progress | null,
  ) {}

  async init() {
    await Deno.mkdir(this.dest, { recursive: true });
    this.realDest = await Deno.realPath(this.dest);
  }

  tick(archiveBytes: number, force = false) {
    if (!this.progress) return;
    const now = performance.now();
    if (!force && now - this.#lastDraw < 200) return;
    this.#lastDraw = now;
    this.progress.update(archiveBytes, `${this.written + this.skipped} files`);
  }

  #inside(real: string): boolean {
    return real === this.realDest || real.startsWith(this.realDest + path.sep);
  }

  /** Creates the parent folder and checks that it really lies inside dest (no link in between). */
  async #parent(rel: string, entry: string): Promise<string> {
    const full = path.join(this.realDest, rel);
    const dir = path.dirname(full);
    await Deno.mkdir(dir, { recursive: true });
    const real = await Deno.realPath(dir);
    if (!this.#inside(real)) {
      throw new ArchiveError(
        `refusing to unpack '${this.archive}': entry '${entry}' would be written through a link to '${real}', ` +
          `outside the target folder '${this.dest}'`,
        this.archive,
        entry,
      );
    }
    return full;
  }

  async dir(rel: string, entry: string) {
    const full = await this.#parent(rel, entry);
    await Deno.mkdir(full, { recursive: true });
    const real = await Deno.realPath(full);
    if (!this.#inside(real)) {
      throw new ArchiveError(
        `refusing to unpack '${this.archive}': folder entry '${entry}' resolves outside the target folder`,
        this.archive,
        entry,
      );
    }
  }

  /** Link target check: relative to the link's folder (symlink) or the archive root (hardlink). */
  linkTarget(rel: string, entry: string, target: string, hard: boolean): string {
    const unified = target.replace(/\\/g, "/");
    const refuse = () =>
      new ArchiveError(
        `refusing to unpack '${this.archive}': link '${entry}' points to '${target}', outside the target folder`,
        this.archive,
        entry,
      );
    if (unified.startsWith("/") || /^[a-zA-Z]:/.test(unified)) throw refuse();
    const base = hard ? "" : pathPosix.dirname(rel);
    const resolved = pathPosix.normalize(pathPosix.join(base, unified));
    if (resolved === ".." || resolved.startsWith("../")) throw refuse();
    return resolved;
  }

  async symlink(rel: string, entry: string, target: string) {
    this.linkTarget(rel, entry, target, false);
    const full = await this.#parent(rel, entry);
    await Deno.remove(full).catch(() => {});
    await Deno.symlink(target, full);
    this.written++;
  }

  async hardlink(rel: string, entry: string, target: string) {
    const resolved = this.linkTarget(rel, entry, target, true);
    const full = await this.#parent(rel, entry);
    const src = path.join(this.realDest, resolved);
    const realSrc = await Deno.realPath(src).catch(() => {
      throw new ArchiveError(
        `'${this.archive}': hard link '${entry}' points to '${target}', which is not in the archive before it`,
        this.archive,
        entry,
      );
    });
    if (!this.#inside(realSrc)) {
      throw new ArchiveError(
        `refusing to unpack '${this.archive}': link '${entry}' points to '${target}', outside the target folder`,
        this.archive,
        entry,
      );
    }
    await Deno.remove(full).catch(() => {});
    await Deno.copyFile(realSrc, full);
    this.written++;
  }

  /** Whether a complete copy is already there (same size and mtime, written by an earlier run). */
  async isComplete(rel: string, size: number, mtime: Date | undefined): Promise<boolean> {
    try {
      const st = await Deno.lstat(path.join(this.realDest, rel));
      return st.isFile && st.size === size &&
        (!mtime || Math.abs((st.mtime?.getTime() ?? 0) - mtime.getTime()) < 1000);
    } catch {
      return false;
    }
  }

  /** Streams one file to a temporary name, verifies its size (and CRC for zip), then renames it. */
  async file(
    rel: string,
    entry: string,
    data: AsyncIterable<Uint8Array>,
    size: number,
    mtime: Date | undefined,
    onChunk: () => void,
    crc?: number,
  ) {
    const full = await this.#parent(rel, entry);
    const tmp = `${full}.${Deno.pid}.unpack.tmp`;
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    let n = 0, c = 0;
    try {
      for await (const chunk of data) {
        const u8 = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBuffer);
        let off = 0;
        while (off < u8.length) off += await f.write(u8.subarray(off));
        n += u8.length;
        if (crc !== undefined) c = crc32Update(c, u8);
        onChunk();
      }
      f.close();
    } catch (e) {
      try {
        f.close();
      } catch { /* already closed */ }
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    if (n !== size || (crc !== undefined && c !== crc)) {
      await Deno.remove(tmp).catch(() => {});
      throw new ArchiveError(
        `archive '${this.archive}' is truncated or corrupt: entry '${entry}' has ${n} bytes, expected ${size}` +
          (crc !== undefined && n === size ? " (CRC-32 mismatch)" : ""),
        this.archive,
        entry,
      );
    }
    if (mtime) await Deno.utime(tmp, mtime, mtime).catch(() => {});
    await Deno.rename(tmp, full);
    this.written++;
    this.bytes += n;
  }
}

/**
 * Unpacks `archive` into `dest` (created if needed). Refuses unsafe entries, resumes interrupted runs,
 * returns at once when the completion marker says it is already unpacked.
 */
export async function unpackArchive(
  archive: string,
  dest: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(archive);
  } catch (e) {
    throw new ArchiveError(`cannot read archive '${archive}': ${(e as Error).message}`, archive);
  }
  const kind = await detectArchiveKind(archive);
  const result: UnpackResult = {
    archive,
    dest,
    kind,
    written: 0,
    skipped: 0,
    bytes: 0,
    alreadyUnpacked: false,
  };
  if (await isUnpacked(archive, dest)) return { ...result, alreadyUnpacked: true };

  const progress = opts.progress === false ? null : new Progress({
    total: st.size,
    label: `unpack ${path.basename(archive)}`,
    bytes: true,
    write: opts.write,
  });
  const w = new Writer(archive, dest, opts.stripComponents ?? 0, progress);
  await w.init();
  const wrap = (e: unknown): Error => {
    if (e instanceof ArchiveError) return e;
    const msg = (e as Error)?.message ?? String(e);
    return new ArchiveError(`archive '${archive}' is truncated or corrupt: ${msg}`, archive);
  };
  try {
    if (kind === "zip") await unpackZip(archive, w);
    else await unpackTar(archive, kind === "tar.gz", w);
  } catch (e) {
    progress?.finish("failed");
    throw wrap(e);
  }
  w.tick(st.size, true);
  progress?.finish(`${w.written} written, ${w.skipped} already there`);
  const marker: Marker = {
    archive: path.resolve(archive),
    size: st.size,
    mtimeMs: st.mtime?.getTime() ?? 0,
    files: w.written + w.skipped,
  };
  const mpath = path.join(dest, markerName(archive));
  await Deno.writeTextFile(`${mpath}.tmp`, JSON.stringify(marker, null, 2) + "\n");
  await Deno.rename(`${mpath}.tmp`, mpath);
  return { ...result, written: w.written, skipped: w.skipped, bytes: w.bytes };
}

async function unpackTar(archive: string, gzip: boolean, w: Writer): Promise<void> {
  const file = await Deno.open(archive);
  let read = 0;
  // the end-of-archive marker (two zero blocks) must be seen, else the tar was cut at an entry boundary
  let tail = new Uint8Array(0);
  let raw: ReadableStream<Uint8Array> = file.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        read += chunk.length;
        w.tick(read);
        ctl.enqueue(chunk);
      },
    }),
  );
  if (gzip) {
    raw = raw.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  let total = 0;
  raw = raw.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        total += chunk.length;
        const keep = Math.min(1024, tail.length + chunk.length);
        const next = new Uint8Array(keep);
        const fromChunk = Math.min(chunk.length, keep);
        next.set(tail.subarray(tail.length - (keep - fromChunk)), 0);
        next.set(chunk.subarray(chunk.length - fromChunk), keep - fromChunk);
        tail = next;
        ctl.enqueue(chunk);
      },
    }),
  );
  const extract = tarStream.extract();
  const source = Readable.fromWeb(raw as unknown as Parameters<typeof Readable.fromWeb>[0]);
  source.on("error", (e) => extract.destroy(e));
  source.pipe(extract);
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = safeEntryPath(archive, h.name, w.strip);
      if (rel === null) {
        entry.resume();
        continue;
      }
      switch (h.type) {
        case "file":
        case "contiguous-file": {
          const size = h.size ?? 0;
          if (await w.isComplete(rel, size, h.mtime)) {
            for await (const _ of entry) { /* drain */ }
            w.skipped++;
          } else {
            await w.file(rel, h.name, entry, size, h.mtime, () => w.tick(read));
          }
          break;
        }
        case "directory":
          await w.dir(rel, h.name);
          entry.resume();
          break;
        case "symlink":
          await w.symlink(rel, h.name, h.linkname ?? "");
          entry.resume();
          break;
        case "link":
          await w.hardlink(rel, h.name, safeEntryPath(archive, h.linkname ?? "", w.strip) ?? "");
          entry.resume();
          break;
        default:
          // devices, fifos: nothing a dataset needs; skip rather than create special files
          entry.resume();
      }
    }
  } finally {
    source.destroy();
  }
  if (total % 512 !== 0 || tail.length < 1024 || tail.some((b) => b !== 0)) {
    throw new ArchiveError(
      `archive '${archive}' is truncated: it ends without the tar end-of-archive marker ` +
        `(${total} bytes${
          gzip ? " uncompressed" : ""
        }); files before the cut were kept, re-download the archive`,
      archive,
    );
  }
}

function unpackZip(archive: string, w: Writer): Promise<void> {
  return new Promise((resolve, reject) => {
    yauzl.open(archive, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error("cannot open zip"));
      let read = 0;
      const fail = (e: unknown) => {
        zip.close();
        reject(e);
      };
      zip.on("error", fail);
      zip.on("end", () => resolve());
      zip.on("entry", (e: yauzl.Entry) => {
        (async () => {
          const name = new TextDecoder().decode(e.fileName as unknown as Uint8Array);
          const rel = safeEntryPath(archive, name, w.strip);
          const mode = (e.externalFileAttributes >>> 16) & 0o170000;
          if (rel === null) return;
          if (name.endsWith("/")) return await w.dir(rel, name);
          const open = () =>
            new Promise<Readable>((res, rej) =>
              zip.openReadStream(e, (er, s) => (er || !s ? rej(er ?? new Error("no stream")) : res(s)))
            );
          if (mode === 0o120000) {
            const chunks: Uint8Array[] = [];
            for await (const c of await open()) chunks.push(c as Uint8Array);
            return await w.symlink(rel, name, new TextDecoder().decode(concat(chunks)));
          }
          const mtime = e.getLastModDate();
          if (await w.isComplete(rel, e.uncompressedSize, mtime)) {
            w.skipped++;
          } else {
            await w.file(rel, name, await open(), e.uncompressedSize, mtime, () => {}, e.crc32);
          }
          read += e.compressedSize + 30 + e.fileNameLength;
          w.tick(read);
        })().then(() => zip.readEntry(), fail);
      });
      zip.readEntry();
    });
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
