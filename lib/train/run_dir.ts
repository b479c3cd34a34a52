/**
 * A run's claim on its `save_dir`: one run per folder, and a run never overwrites another.
 *
 * - A new run (no `--resume_model`) needs an empty or missing `save_dir`; a folder holding anything
 *   (another run's checkpoints, metrics, report) is refused with a message naming what is there and
 *   the three ways out (resume it, another `--save_dir`, delete it). We refuse rather than write to a
 *   numbered sibling: PaddleSeg users chain `train --save_dir D` with `val --model_path D/best_model`,
 *   which would then silently evaluate the old run.
 * - A resumed run may write into a non-empty `save_dir` only if it is the folder of the checkpoint it
 *   resumes from (the same run).
 * - `.train.lock` (the owner's pid) keeps two processes out of one folder; a lock whose process is gone
 *   (a killed run) is taken over.
 * - An unwritable folder fails at once with its path.
 */
import { basename, dirname, join, resolve } from "node:path";
import { readFileBounded } from "../util/fs.ts";

export const LOCK_NAME = ".train.lock";

export class SaveDirError extends Error {
  override name = "SaveDirError";
}

/** The OS reason of a file-system error without the path Deno appends ("... (os error 30)"). */
function reason(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  return /^(.*?\(os error \d+\))/.exec(msg)?.[1] ?? msg;
}

function unwritable(dir: string, e: unknown): SaveDirError {
  return new SaveDirError(
    `cannot write to save_dir '${dir}': ${reason(e)}; choose a writable folder with --save_dir`,
  );
}

async function realOrResolved(p: string): Promise<string> {
  return await Deno.realPath(p).catch(() => resolve(p));
}

/** The pid in a lock file (NaN when unreadable, e.g. not a regular file). */
async function lockPid(lock: string): Promise<number> {
  const bytes = await readFileBounded(lock, 64).catch(() => null);
  return bytes ? Number(new TextDecoder().decode(bytes).trim()) : NaN;
}

function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === Deno.pid) return false;
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}

/** Entries of `dir` that make it "not empty" for a new run (our own lock excluded). */
async function contents(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name !== LOCK_NAME) names.push(e.name);
  return names.sort();
}

function newestCheckpoint(names: string[]): string | null {
  const iters = names.map((n) => /^iter_(\d+)$/.exec(n)).filter((m) => m).map((m) => Number(m![1]));
  return iters.length ? `iter_${Math.max(...iters)}` : null;
}

export interface SaveDirClaim {
  /** Removes the lock (call when the run ends, also on failure). */
  release(): Promise<void>;
}

/**
 * Creates `saveDir` if needed, checks that this run may write there, and locks it. `resumeFrom` is the
 * checkpoint folder of `--resume_model`, if any.
 */
export async function claimSaveDir(saveDir: string, resumeFrom: string | null): Promise<SaveDirClaim> {
  try {
    await Deno.mkdir(saveDir, { recursive: true });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new SaveDirError(`save_dir '${saveDir}' exists and is not a folder`);
    }
    throw unwritable(saveDir, e);
  }
  const names = await contents(saveDir);
  if (names.length) {
    const sameRun = resumeFrom !== null &&
      (await realOrResolved(dirname(resolve(resumeFrom)))) === (await realOrResolved(saveDir));
    if (!sameRun) {
      const shown = names.slice(0, 6).join(", ") +
        (names.length > 6 ? `, ... (${names.length - 6} more)` : "");
      const newest = newestCheckpoint(names);
      throw new SaveDirError(
        `save_dir '${saveDir}' is not empty (${shown})` +
          (resumeFrom ? `, and it is not the folder of the checkpoint '${resumeFrom}' being resumed` : "") +
          "; a new run there would overwrite another run's checkpoints and logs. " +
          (newest && !resumeFrom ? `Resume that run with --resume_model ${join(saveDir, newest)}, ` : "") +
          "choose another --save_dir, or delete the folder yourself",
      );
    }
  }
  const lock = join(saveDir, LOCK_NAME);
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.writeTextFile(lock, `${Deno.pid}\n`, { createNew: true });
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt > 2) throw unwritable(saveDir, e);
      const pid = await lockPid(lock);
      if (pidAlive(pid)) {
        throw new SaveDirError(
          `save_dir '${saveDir}' is in use by another training process (pid ${pid}); if no run is active ` +
            `there, delete '${lock}'`,
        );
      }
      await Deno.remove(lock).catch(() => {}); // left by a run that was killed
    }
  }
  return {
    release: async () => {
      if ((await lockPid(lock)) === Deno.pid) await Deno.remove(lock).catch(() => {});
    },
  };
}

/** Names of folders in `saveDir` that `replaceDir` leftovers belong to (`.X.tmp-*`, `X.old-*`, `.X.trash-*`). */
export async function leftoverTargets(saveDir: string): Promise<string[]> {
  const out = new Set<string>();
  for await (const e of Deno.readDir(saveDir)) {
    const m = /^\.(.+)\.(?:tmp|trash)-[0-9a-z-]+$/.exec(e.name) ?? /^(.+)\.old-[0-9a-z-]+$/.exec(e.name);
    if (m && e.isDirectory) out.add(basename(m[1]));
  }
  return [...out].sort();
}
