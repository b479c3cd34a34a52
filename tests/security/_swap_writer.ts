/**
 * Subprocess for the crash-safety tests: replaces folder `dest` by a copy of folder `source` with the
 * same `replaceDir` the trainer's checkpoints use (state.json copied last, as saveCheckpoint writes it).
 * Run with PC_FAULT_KILL_AT=<name>:<step> it SIGKILLs itself at that step.
 *
 *   deno run -A tests/security/_swap_writer.ts <source> <dest>
 */
import { join } from "node:path";
import { replaceDir } from "../../lib/util/fs.ts";

const [source, dest] = Deno.args;
await replaceDir(dest, async (tmp) => {
  const names = [...Deno.readDirSync(source)].map((e) => e.name).sort((a, b) =>
    Number(a === "state.json") - Number(b === "state.json")
  );
  for (const n of names) await Deno.copyFile(join(source, n), join(tmp, n));
});
console.log("replaced");
