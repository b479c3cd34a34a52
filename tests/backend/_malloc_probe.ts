/**
 * Run as a subprocess by native_malloc_test.ts: applies lib/backend/native_malloc.ts (as loading the native
 * backend does), then makes a train step's allocation pattern with libc directly — 48 blocks of 4 MiB allocated,
 * written, all freed, twice — and prints JSON: the line `tuneNativeMalloc` returned and the minor page faults of
 * the second round (memory the kernel had to hand out afresh).
 */
import { tuneNativeMalloc } from "../../lib/backend/native_malloc.ts";

const line = tuneNativeMalloc();
const libc = Deno.dlopen("libc.so.6", {
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  memset: { parameters: ["pointer", "i32", "usize"], result: "pointer" },
});
const faults = () => Number(Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ")[7]);
const BLOCK = 4 * 2 ** 20, COUNT = 48;
function round(): number {
  const before = faults();
  const blocks = Array.from({ length: COUNT }, () => libc.symbols.malloc(BigInt(BLOCK)));
  for (const b of blocks) libc.symbols.memset(b, 1, BigInt(BLOCK));
  for (const b of blocks) libc.symbols.free(b);
  return faults() - before;
}
round();
console.log(JSON.stringify({ line, faults: round(), pages: (BLOCK * COUNT) / 4096 }));
