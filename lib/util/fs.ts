/**
 * Atomic file writes: the data goes to a temporary file in the same folder, which is then renamed over
 * the target, so a crash (or SIGKILL) never leaves a file that looks complete but is not. Used for
 * weights, checkpoints, reports, exported PNGs and generated archives.
 */
import { dirname } from "node:path";

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
