/**
 * Atomic file writes: the data goes to a temporary file in the same folder, which is then renamed over
 * the target, so a crash (or SIGKILL) never leaves a file that looks complete but is not. Used for
 * weights, checkpoints, reports, exported PNGs and generated archives. Also: bounded reads of files a
 * user hands over (`readFileBounded`) and crash-safe replacement of whole folders (`replaceDir`).
 */
import { basename, dirname, join } from "node:path";
import { formatBytes } from "./limits.ts";

function tmpName(path: string): string {
  return `${path}.tmp-${Deno.pid}-${Date.now().toString(36)}-${Math.floor(performance.now() * 1000) % 1e6}`;
}

function failure(path: string, e: unknown): Error {
  return new Error(`cannot write '${path}': ${(e as Error).message}`);
}

/** Writes bytes or text to `path` atomically (creating its folder). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tmpName(path);
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw failure(path, e);
  }
}

/** Synchronous twin of `writeFileAtomic` (for callers that cannot await, e.g. report writers). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const tmp = tmpName(path);
  try {
    Deno.mkdirSync(dirname(path), { recursive: true });
    if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
    else Deno.writeFileSync(tmp, data);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw failure(path, e);
  }
}

// ---------------------------------------------------------------------------------------------------
// Reading user-supplied files with a bound

/** A file we refuse to read (not a regular file, or larger than the bound); `reason` omits the path. */
export class FileCheckError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`'${path}' ${reason}`);
    this.name = "FileCheckError";
  }
}

/** What a non-regular file is, for messages ("a folder", "a named pipe (FIFO)", ...). */
export function fileKind(st: Deno.FileInfo): string {
  if (st.isFile) return "a regular file";
  if (st.isDirectory) return "a folder";
  if (st.isFifo) return "a named pipe (FIFO)";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  if (st.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * Reads a whole file that must be a regular file (symlinks to one are followed) of at most `maxBytes`;
 * devices (`/dev/zero`), FIFOs and folders are refused before anything is read, and no more than
 * `maxBytes + 1` bytes are ever read (a file that grows meanwhile is refused too). `hint` ends the
 * size message (e.g. how to raise the bound). NotFound and permission errors propagate unchanged.
 */
export async function readFileBounded(path: string, maxBytes: number, hint = ""): Promise<Uint8Array> {
  const check = (st: Deno.FileInfo) => {
    if (!st.isFile) throw new FileCheckError(path, `is ${fileKind(st)}, not a regular file`);
    if (st.size > maxBytes) {
      throw new FileCheckError(
        path,
        `is ${formatBytes(st.size)}, larger than the bound of ${formatBytes(maxBytes)}${
          hint ? `; ${hint}` : ""
        }`,
      );
    }
  };
  check(await Deno.stat(path));
  const f = await Deno.open(path, { read: true });
  try {
    const st = await f.stat(); // the file actually opened (it may have been replaced since the stat above)
    check(st);
    const buf = new Uint8Array(Math.min(maxBytes, st.size) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        throw new FileCheckError(path, `grew beyond ${formatBytes(maxBytes)} while being read`);
      }
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return buf.subarray(0, n);
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Folders replaced as a whole (checkpoints), crash-safe

/**
 * Test hook: `PC_FAULT_KILL_AT=<folder name>:<step>` makes the process SIGKILL itself at that step of
 * `replaceDir` (steps: filled, old-moved, new-moved), so tests can prove the swap crash-safe with a
 * real kill. Unset in normal use.
 */
function faultPoint(base: string, step: string): void {
  let spec: string | undefined;
  try {
    spec = Deno.env.get("PC_FAULT_KILL_AT");
  } catch {
    return;
  }
  if (spec && (spec === `${base}:${step}` || spec === `*:${step}`)) Deno.kill(Deno.pid, "SIGKILL");
}

let swapSeq = 0;
const suffix = () => `${Deno.pid}-${(swapSeq++).toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

async function lexists(p: string): Promise<boolean> {
  return await Deno.lstat(p).then(() => true, () => false);
}

/**
 * Writes folder `dest` as a whole: `fill` writes a fresh temporary sibling, which then replaces `dest`.
 * At every instant either `dest` is a complete copy (old or new), or — in the window between the two
 * renames — both the old copy (`<name>.old-*`) and the new one (`.<name>.tmp-*`) are complete leftovers,
 * which `recoverDir` finds (read-only) or restores (repair) at the next start.
 */
export async function replaceDir(dest: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const parent = dirname(dest), base = basename(dest);
  const tmp = join(parent, `.${base}.tmp-${suffix()}`);
  await Deno.mkdir(tmp);
  let old: string | null = null, placed = false;
  try {
    await fill(tmp);
    faultPoint(base, "filled");
    if (await lexists(dest)) {
      old = join(parent, `${base}.old-${suffix()}`);
      await Deno.rename(dest, old);
      faultPoint(base, "old-moved");
    }
    await Deno.rename(tmp, dest);
    placed = true;
    faultPoint(base, "new-moved");
  } catch (e) {
    if (!placed) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      if (old) await Deno.rename(old, dest).catch(() => {}); // put the old copy back
    }
    throw e;
  }
  if (old) {
    // renamed first so that a crash while deleting never leaves a partial folder named like a copy
    const trash = join(parent, `.${base}.trash-${suffix()}`);
    await Deno.rename(old, trash);
    await Deno.remove(trash, { recursive: true });
  }
}

export interface RecoveredDir {
  /** The complete copy: `dest` itself, or a leftover (read-only mode), or null when there is none. */
  path: string | null;
  /** The leftover `dest` was restored from, or that `path` is (null when `dest` was complete). */
  from: string | null;
  /** Leftovers removed (repair mode). */
  removed: string[];
}

/** Leftovers of interrupted `replaceDir(dest)` calls in `dest`'s folder. */
export async function dirLeftovers(dest: string): Promise<{ tmp: string[]; old: string[]; trash: string[] }> {
  const parent = dirname(dest), base = basename(dest);
  const out = { tmp: [] as string[], old: [] as string[], trash: [] as string[] };
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const reTmp = new RegExp(`^\\.${esc}\\.tmp-[0-9a-z-]+$`), reOld = new RegExp(`^${esc}\\.old-[0-9a-z-]+$`);
  const reTrash = new RegExp(`^\\.${esc}\\.trash-[0-9a-z-]+$`);
  try {
    for await (const e of Deno.readDir(parent)) {
      if (!e.isDirectory) continue;
      const p = join(parent, e.name);
      if (reTmp.test(e.name)) out.tmp.push(p);
      else if (reOld.test(e.name)) out.old.push(p);
      else if (reTrash.test(e.name)) out.trash.push(p);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/**
 * Finds the complete copy of a folder written by `replaceDir`: `dest` when complete, else the newest
 * complete leftover (a finished new copy before an old one). With `repair`, that leftover is renamed to
 * `dest` and the other leftovers are removed — only for the process that owns the folder (the trainer).
 */
export async function recoverDir(
  dest: string,
  isComplete: (dir: string) => Promise<boolean>,
  opts: { repair?: boolean } = {},
): Promise<RecoveredDir> {
  const left = await dirLeftovers(dest);
  const removed: string[] = [];
  const drop = async (ps: string[]) => {
    if (!opts.repair) return;
    for (const p of ps) {
      await Deno.remove(p, { recursive: true }).catch(() => {});
      removed.push(p);
    }
  };
  if (await isComplete(dest)) {
    await drop([...left.tmp, ...left.old, ...left.trash]);
    return { path: dest, from: null, removed };
  }
  const mtime = async (p: string) => (await Deno.stat(p).catch(() => null))?.mtime?.getTime() ?? 0;
  const candidates: { p: string; rank: number }[] = [];
  for (const [list, kind] of [[left.tmp, 1], [left.old, 0]] as const) {
    for (const p of list) if (await isComplete(p)) candidates.push({ p, rank: kind * 1e15 + await mtime(p) });
  }
  candidates.sort((a, b) => b.rank - a.rank);
  const best = candidates[0]?.p ?? null;
  if (!opts.repair || !best) {
    await drop([...left.tmp, ...left.trash]); // nothing complete among them
    return { path: best, from: best, removed };
  }
  if (await lexists(dest)) {
    const trash = join(dirname(dest), `.${basename(dest)}.trash-${suffix()}`);
    await Deno.rename(dest, trash);
    left.trash.push(trash);
  }
  await Deno.rename(best, dest);
  await drop([...left.tmp, ...left.old, ...left.trash].filter((p) => p !== best));
  return { path: dest, from: best, removed };
}
