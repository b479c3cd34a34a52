/**
 * Safe, bounded, streamed, resumable unpacking of `.tar`, `.tar.gz`/`.tgz` and `.zip` archives.
 *
 * - Streamed: tar through tar-stream (gzip through the platform's DecompressionStream, which checks the
 *   gzip CRC and length); zip through yauzl (central directory, entries inflated as streams; we check
 *   each entry's CRC-32, with node:zlib's crc32, because yauzl does not).
 * - Never writes outside the destination: entry paths that are absolute or climb out with `..` are
 *   refused; every folder on an entry's path is created by us one component at a time and checked with
 *   `lstat`, so nothing is ever created or opened through a link (one already in the destination, or one
 *   the archive made); files are written to fresh temporary names opened with O_EXCL (which never follows
 *   a link) and renamed into place. Links in the archive are materialised as copies of the file they
 *   point to once the archive is read, and refused when their target — followed through the archive's
 *   other links — leaves the destination, is a folder, or is missing. Hard links are copies too. Special
 *   files (devices, FIFOs) are skipped; permission bits (setuid, ...) are not restored.
 * - Bounded (lib/util/limits.ts): total unpacked bytes, number of entries, and unpacked bytes per archive
 *   byte (decompression bombs) are checked against declared sizes before writing and against the real
 *   stream while writing; names longer than the file system allows are refused by name.
 * - Atomic per file: a truncated or corrupt archive leaves no file that looks complete but is not; the
 *   error names the archive (and entry). A marker `.unpacked-<archive name>.json` is written in the
 *   destination only after the whole archive was read; with it present and matching the archive's size
 *   and mtime, a re-run returns at once. Without it (interrupted run), files already present with the
 *   entry's size and mtime are skipped, so a re-run only writes what is missing.
 * - Progress: bytes of the archive read, files written, rate and ETA (lib/util/progress.ts: a bar on
 *   terminals, plain lines otherwise).
 */
import { posix as pathPosix } from "node:path";
import * as path from "node:path";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
// @ts-types="@types/tar-stream"
import tarStream from "tar-stream";
// @ts-types="@types/yauzl"
import yauzl from "yauzl";
import { formatBytes, getLimits, type Limits, raiseHint } from "../util/limits.ts";
import { fileKind, readFileBounded } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { concatBytes } from "../util/bytes.ts";

export type ArchiveKind = "tar" | "tar.gz" | "zip";

export interface UnpackOptions {
  /** Show progress (default true): a bar on terminals, plain lines otherwise. */
  progress?: boolean;
  /** Remove this many leading path components from every entry (like `tar --strip-components`). */
  stripComponents?: number;
  /** Where progress and notes go (default: stderr). */
  write?: (line: string, inPlace: boolean) => void;
  /** Bounds on what the archive may unpack to (default: `getLimits()`, i.e. defaults and PC_MAX_* variables). */
  limits?: Partial<
    Pick<Limits, "unpackMaxBytes" | "unpackMaxEntries" | "unpackMaxRatio" | "unpackRatioFloor">
  >;
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
    const mpath = path.join(dest, markerName(archive));
    if (!(await Deno.lstat(mpath)).isFile) return false; // only the regular file we wrote counts
    const m = JSON.parse(new TextDecoder().decode(await readFileBounded(mpath, 1 << 16))) as Marker;
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

/** Longest name of one path component, and of a whole path (Linux NAME_MAX and PATH_MAX, in bytes). */
const NAME_MAX = 255, PATH_MAX = 4096;
/** Links followed through each other before a chain counts as a loop (the kernel's ELOOP bound). */
const MAX_LINK_HOPS = 40;

/** An entry name for messages: long names shortened, with their length. */
export function showName(name: string): string {
  return name.length > 120 ? `${name.slice(0, 60)}...${name.slice(-40)} [${name.length} characters]` : name;
}

async function lstatOrNull(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(p);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

interface LinkEntry {
  rel: string;
  entry: string;
  target: string;
}

/** State shared by the tar and zip paths: where to write, what was done, bounds, progress. */
class Writer {
  written = 0;
  skipped = 0;
  /** Bytes written by this call. */
  bytes = 0;
  /** Content bytes of all entries so far, written or skipped: what the size bounds apply to. */
  content = 0;
  entries = 0;
  /** The entry being unpacked, for messages about the stream. */
  current = "";
  realDest = "";
  /** The bound on `content`: the smaller of the size bound and the ratio bound. */
  readonly maxBytes: number;
  /** Symlinks of the archive by path, materialised as copies once everything else is unpacked. */
  readonly links = new Map<string, LinkEntry>();
  readonly marker: string;
  #lastDraw = 0;
  constructor(
    readonly archive: string,
    readonly dest: string,
    readonly strip: number,
    readonly progress: Progress | null,
    readonly limits: Limits,
    readonly archiveSize: number,
  ) {
    const ratioBound = Math.max(limits.unpackRatioFloor, limits.unpackMaxRatio * archiveSize);
    this.maxBytes = Math.min(limits.unpackMaxBytes, ratioBound);
    this.marker = markerName(archive);
  }

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

  refuse(entry: string, why: string): ArchiveError {
    return new ArchiveError(
      `refusing to unpack '${this.archive}': entry '${showName(entry)}' ${why}`,
      this.archive,
      entry,
    );
  }

  /** Counts an entry against the entry bound and checks its name. */
  begin(rel: string | null, entry: string) {
    this.current = entry;
    if (++this.entries > this.limits.unpackMaxEntries) {
      throw new ArchiveError(
        `refusing to unpack '${this.archive}': it holds more than ${this.limits.unpackMaxEntries} entries ` +
          `(at '${showName(entry)}'); ${raiseHint("unpackMaxEntries")}`,
        this.archive,
        entry,
      );
    }
    if (rel === null) return;
    const enc = new TextEncoder();
    if (enc.encode(rel).length > PATH_MAX) {
      throw this.refuse(entry, `has a name longer than a path may be (${PATH_MAX} bytes)`);
    }
    for (const c of rel.split("/")) {
      if (enc.encode(c).length > NAME_MAX) {
        throw this.refuse(
          entry,
          `has a path component of ${c.length} characters, longer than a file name may be (${NAME_MAX} bytes)`,
        );
      }
    }
    if (rel === this.marker) {
      throw this.refuse(entry, "has the name of the completion marker this unpacker writes");
    }
  }

  /** Adds `n` content bytes (declared before writing) and checks the size and ratio bounds. */
  account(entry: string, n: number) {
    this.content += n;
    if (!(this.content <= this.maxBytes)) {
      const byRatio = this.maxBytes < this.limits.unpackMaxBytes;
      throw new ArchiveError(
        `refusing to unpack '${this.archive}': at entry '${showName(entry)}' it would unpack to more than ` +
          (byRatio
            ? `${formatBytes(this.maxBytes)}, ${this.limits.unpackMaxRatio}x its own size of ` +
              `${formatBytes(this.archiveSize)} (a decompression bomb?); ${raiseHint("unpackMaxRatio")}`
            : `${formatBytes(this.maxBytes)}; ${raiseHint("unpackMaxBytes")}`),
        this.archive,
        entry,
      );
    }
  }

  /** Bytes the decompressed tar stream may have: content plus headers and padding of every entry. */
  streamBound(): number {
    return this.maxBytes + 1024 * (this.entries + 2) + (1 << 20);
  }

  /**
   * The real folder that holds `rel`, created one component at a time. Each component is checked with
   * lstat, so a link on the way (already in the destination, or made by the archive) is refused, never
   * followed. With `create` false, null when a folder on the way is missing.
   */
  async parentDir(rel: string, entry: string, create: boolean): Promise<string | null> {
    const parts = rel.split("/");
    parts.pop();
    let cur = this.realDest;
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1).join("/");
      if (this.links.has(sub)) {
        throw this.refuse(entry, `would be written through a link ('${showName(sub)}', made by the archive)`);
      }
      const p = path.join(cur, parts[i]);
      let st = await lstatOrNull(p);
      if (!st) {
        if (!create) return null;
        await Deno.mkdir(p).catch((e) => {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        });
        st = await Deno.lstat(p);
      }
      if (st.isSymlink) {
        throw this.refuse(
          entry,
          `would be written through a link ('${showName(sub)}' in the target folder '${this.dest}'); ` +
            "links are never followed",
        );
      }
      if (!st.isDirectory) {
        throw this.refuse(entry, `needs '${showName(sub)}' to be a folder, but it is a file`);
      }
      cur = p;
    }
    return cur;
  }

  async dir(rel: string, entry: string) {
    this.links.delete(rel);
    const full = path.join((await this.parentDir(rel, entry, true))!, pathPosix.basename(rel));
    let st = await lstatOrNull(full);
    if (!st) {
      await Deno.mkdir(full).catch((e) => {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      });
      st = await Deno.lstat(full);
    }
    if (st.isSymlink) {
      throw this.refuse(entry, "is a folder where the target folder has a link (not followed)");
    }
    if (!st.isDirectory) throw this.refuse(entry, "is a folder, but a file of that name exists");
  }

  /** Link target check: relative to the link's folder (symlink) or the archive root (hardlink). */
  linkTarget(rel: string, entry: string, target: string, hard: boolean): string {
    const unified = target.replace(/\\/g, "/");
    const refuse = () =>
      this.refuse(entry, `is a link that points to '${showName(target)}', outside the target folder`);
    if (unified.startsWith("/") || /^[a-zA-Z]:/.test(unified) || unified.includes("\0")) throw refuse();
    const base = hard ? "" : pathPosix.dirname(rel);
    const resolved = pathPosix.normalize(pathPosix.join(base, unified));
    if (resolved === ".." || resolved.startsWith("../")) throw refuse();
    if (resolved === "." || resolved === "") {
      throw this.refuse(entry, `is a link to the target folder itself ('${showName(target)}')`);
    }
    return resolved;
  }

  /** Records a symlink; it becomes a copy of its target file once the archive is read (`finishLinks`). */
  symlink(rel: string, entry: string, target: string) {
    if (target.length > PATH_MAX) throw this.refuse(entry, "is a link with an overlong target");
    this.linkTarget(rel, entry, target, false); // refuse the obvious escapes at once
    this.links.delete(rel);
    this.links.set(rel, { rel, entry, target });
  }

  /** The archive path a link finally points to, following the archive's other links. */
  #resolveLink(link: LinkEntry): string {
    let { rel, target } = link;
    for (let hops = 0;; hops++) {
      const resolved = this.linkTarget(rel, link.entry, target, false);
      const next = this.links.get(resolved);
      if (!next) return resolved;
      if (hops >= MAX_LINK_HOPS) throw this.refuse(link.entry, "is part of a loop of links");
      ({ rel, target } = next);
    }
  }

  /** The real path of a regular file already unpacked at archive path `rel` (refusing anything else). */
  async #sourceFile(rel: string, entry: string, what: string): Promise<{ full: string; size: number }> {
    const dir = await this.parentDir(rel, entry, false);
    const full = dir ? path.join(dir, pathPosix.basename(rel)) : "";
    const st = dir ? await lstatOrNull(full) : null;
    if (!st) {
      throw this.refuse(entry, `is a ${what} to '${showName(rel)}', which the archive does not contain`);
    }
    if (st.isDirectory) {
      throw this.refuse(
        entry,
        `is a ${what} to the folder '${
          showName(rel)
        }': links to folders are not unpacked (links to files become copies)`,
      );
    }
    if (!st.isFile) {
      throw this.refuse(entry, `is a ${what} to '${showName(rel)}', which is not a regular file`);
    }
    return { full, size: st.size };
  }

  /** Materialises every recorded symlink as a copy of the file it resolves to. */
  async finishLinks() {
    for (const link of this.links.values()) {
      this.current = link.entry;
      const src = await this.#sourceFile(this.#resolveLink(link), link.entry, "link");
      await this.#copy(src, link.rel, link.entry);
    }
    this.links.clear();
  }

  async hardlink(rel: string, entry: string, target: string, targetRel: string | null) {
    if (targetRel === null) {
      throw this.refuse(
        entry,
        `is a hard link that points to '${showName(target)}', outside the target folder`,
      );
    }
    const srcRel = this.links.has(targetRel) ? this.#resolveLink(this.links.get(targetRel)!) : targetRel;
    const src = await this.#sourceFile(srcRel, entry, "hard link");
    this.links.delete(rel);
    await this.#copy(src, rel, entry);
  }

  async #copy(src: { full: string; size: number }, rel: string, entry: string) {
    const f = await Deno.open(src.full, { read: true });
    try {
      await this.file(rel, entry, f.readable, src.size, undefined, () => {});
    } finally {
      try {
        f.close();
      } catch { /* closed by the stream */ }
    }
  }

  /** Whether a complete copy is already there (same size and mtime, written by an earlier run). */
  async isComplete(rel: string, entry: string, size: number, mtime: Date | undefined): Promise<boolean> {
    const dir = await this.parentDir(rel, entry, false);
    const st = dir ? await lstatOrNull(path.join(dir, pathPosix.basename(rel))) : null;
    return !!st && st.isFile && st.size === size &&
      (!mtime || Math.abs((st.mtime?.getTime() ?? 0) - mtime.getTime()) < 1000);
  }

  /** A new, empty temporary file in `dir`: opened with O_EXCL, so never through a link. */
  async createTemp(dir: string): Promise<{ f: Deno.FsFile; tmp: string }> {
    for (let i = 0;; i++) {
      const tmp = path.join(dir, `.pc-unpack-${crypto.randomUUID().slice(0, 13)}.tmp`);
      try {
        return { f: await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 }), tmp };
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists) || i >= 8) throw e;
      }
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
    this.account(entry, size);
    this.links.delete(rel);
    const dir = (await this.parentDir(rel, entry, true))!;
    const full = path.join(dir, pathPosix.basename(rel));
    if ((await lstatOrNull(full))?.isDirectory) {
      throw this.refuse(entry, "is a file, but a folder of that name exists");
    }
    const { f, tmp } = await this.createTemp(dir);
    let n = 0, c = 0;
    try {
      for await (const chunk of data) {
        const u8 = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk as ArrayBuffer);
        n += u8.length;
        if (n > size) break; // more than declared (and accounted for): never written
        let off = 0;
        while (off < u8.length) off += await f.write(u8.subarray(off));
        if (crc !== undefined) c = crc32(u8, c); // CRC-32 (IEEE) of the zip entry so far
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
        `archive '${this.archive}' is truncated or corrupt: entry '${showName(entry)}' has ` +
          `${n > size ? "more than " : ""}${n} bytes, expected ${size}` +
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

  /** Writes the completion marker (same way as the files: fresh temporary name, then rename). */
  async writeMarker(marker: Marker) {
    const { f, tmp } = await this.createTemp(this.realDest);
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(marker, null, 2) + "\n");
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path.join(this.realDest, this.marker));
  }
}

/**
 * Unpacks `archive` into `dest` (created if needed). Refuses unsafe entries and archives beyond the
 * bounds, resumes interrupted runs, returns at once when the completion marker says it is already
 * unpacked.
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
  if (!st.isFile) throw new ArchiveError(`cannot read archive '${archive}': it is ${fileKind(st)}`, archive);
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
  const w = new Writer(archive, dest, opts.stripComponents ?? 0, progress, getLimits(opts.limits), st.size);
  await w.init();
  const wrap = (e: unknown): Error => {
    if (e instanceof ArchiveError) return e;
    const msg = (e as Error)?.message ?? String(e);
    const at = w.current ? ` (at entry '${showName(w.current)}')` : "";
    return new ArchiveError(`archive '${archive}' is truncated or corrupt${at}: ${msg}`, archive, w.current);
  };
  try {
    if (kind === "zip") await unpackZip(archive, w);
    else await unpackTar(archive, kind === "tar.gz", w);
    await w.finishLinks();
  } catch (e) {
    progress?.finish("failed");
    throw wrap(e);
  }
  w.tick(st.size, true);
  progress?.finish(`${w.written} written, ${w.skipped} already there`);
  await w.writeMarker({
    archive: path.resolve(archive),
    size: st.size,
    mtimeMs: st.mtime?.getTime() ?? 0,
    files: w.written + w.skipped,
  });
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
        // a bomb of headers or zero blocks: stop reading, not only writing
        if (total > w.streamBound()) {
          ctl.error(
            new ArchiveError(
              `refusing to unpack '${archive}': it decompresses to more than ${
                formatBytes(w.streamBound())
              } ` +
                `(${
                  w.current ? `at entry '${showName(w.current)}'` : "before its first entry"
                }; a decompression ` +
                `bomb?); ${raiseHint("unpackMaxRatio")}`,
              archive,
              w.current,
            ),
          );
          return;
        }
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
      w.begin(rel, h.name);
      if (rel === null) {
        entry.resume();
        continue;
      }
      switch (h.type) {
        case "file":
        case "contiguous-file": {
          const size = h.size ?? 0;
          if (await w.isComplete(rel, h.name, size, h.mtime)) {
            w.account(h.name, size);
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
          w.symlink(rel, h.name, h.linkname ?? "");
          entry.resume();
          break;
        case "link": {
          const target = h.linkname ?? "";
          // hard link names are archive paths; one that climbs out is refused by hardlink()
          let targetRel: string | null;
          try {
            targetRel = safeEntryPath(archive, target, w.strip);
          } catch {
            targetRel = null;
          }
          await w.hardlink(rel, h.name, target, targetRel);
          entry.resume();
          break;
        }
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
      if (zip.entryCount > w.limits.unpackMaxEntries) {
        return fail(
          new ArchiveError(
            `refusing to unpack '${archive}': it holds ${zip.entryCount} entries, more than ` +
              `${w.limits.unpackMaxEntries}; ${raiseHint("unpackMaxEntries")}`,
            archive,
          ),
        );
      }
      zip.on("error", fail);
      zip.on("end", () => resolve());
      zip.on("entry", (e: yauzl.Entry) => {
        (async () => {
          const name = new TextDecoder().decode(e.fileName as unknown as Uint8Array);
          const rel = safeEntryPath(archive, name, w.strip);
          w.begin(rel, name);
          const mode = (e.externalFileAttributes >>> 16) & 0o170000;
          if (rel === null) return;
          if (name.endsWith("/")) return await w.dir(rel, name);
          const open = () =>
            new Promise<AsyncIterable<Uint8Array>>((res, rej) =>
              zip.openReadStream(
                e,
                (er, s) => (er || !s ? rej(er ?? new Error("no stream")) : res(chunksOf(s))),
              )
            );
          if (mode === 0o120000) {
            if (e.uncompressedSize > 4096) throw w.refuse(name, "is a link with an overlong target");
            const chunks: Uint8Array[] = [];
            for await (const c of await open()) chunks.push(c as Uint8Array);
            return w.symlink(rel, name, new TextDecoder().decode(concatBytes(chunks)));
          }
          const mtime = e.getLastModDate();
          if (await w.isComplete(rel, name, e.uncompressedSize, mtime)) {
            w.account(name, e.uncompressedSize);
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

/**
 * The chunks of a yauzl entry stream, with every error it emits delivered to the reader — also one
 * emitted before reading starts or after it stopped (yauzl forwards inflate errors with setImmediate;
 * Node's own iterator would hang on the first and leave the second uncaught, crashing the process).
 * A stream that closes early just ends: the caller's size and CRC checks report it.
 */
function chunksOf(s: Readable): AsyncIterable<Uint8Array> {
  let error: unknown = null, ended = false, wake: (() => void) | null = null;
  const queue: Uint8Array[] = [];
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  s.on("data", (c: Uint8Array) => {
    queue.push(c);
    if (queue.length >= 16) s.pause();
    poke();
  });
  s.on("end", () => ((ended = true), poke()));
  s.on("close", () => ((ended = true), poke()));
  s.on("error", (e: unknown) => ((error ??= e), poke()));
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (error) throw error;
          const c = queue.shift();
          if (c) {
            if (queue.length < 4) s.resume();
            yield c;
            continue;
          }
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
        }
      } finally {
        s.destroy();
      }
    },
  };
}
