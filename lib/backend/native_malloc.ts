/**
 * glibc malloc settings for the native backend. libtensorflow allocates every tensor with posix_memalign, and
 * glibc serves a block above its mmap threshold with a fresh mmap (unmapped again on free) and trims the heap top
 * on free. A train step allocates and frees thousands of 0.1–30 MB tensors, so the kernel kept zeroing fresh
 * pages: HRNet-W18-Small-V2 512x256 batch 2 took 13,000–32,000 minor page faults and 0.1–0.3 s of system time per
 * step (of ~1.1 s). With the mmap threshold at glibc's maximum (32 MiB), no trimming below 2 GiB of free heap top
 * and the heap grown 256 MiB at a time, freed blocks are mostly reused: 1.7k–24k faults per W18-Small-V2 b2 step
 * against 15k–30k (HRNet-W48 b1: ~1k once warm), and steps 7% (W18-Small-V2 b2) to 15% (HRNet-W48 b1) shorter
 * (bench/FIXES.md). The price: memory freed by libtensorflow
 * stays with the process (up to its peak, which does not change) instead of going back to the system.
 *
 * `mallopt` is called through Deno's FFI on Linux/glibc only; `PC_MALLOC_TUNING=0` leaves malloc as it is.
 */

/** mallopt parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_TOP_PAD = -2;
const M_MMAP_THRESHOLD = -3;

/**
 * The settings applied, by mallopt parameter name (glibc's largest mmap threshold on 64-bit is 32 MiB; mallopt takes
 * an int, so the trim threshold is the largest page multiple below 2 GiB). With 1 GiB / 64 MiB instead, a
 * W18-Small-V2 b2 step still took ~14,700 faults, as many as glibc's defaults.
 */
export const NATIVE_MALLOC_SETTINGS = {
  M_MMAP_THRESHOLD: 32 * 2 ** 20,
  M_TRIM_THRESHOLD: 2 ** 31 - 2 ** 12,
  M_TOP_PAD: 256 * 2 ** 20,
} as const;

let result: string | undefined;

/**
 * Applies {@link NATIVE_MALLOC_SETTINGS} once per process; returns one line saying what happened (never throws:
 * without glibc, FFI permission or with `PC_MALLOC_TUNING=0` malloc stays as it is and the line says why).
 */
export function tuneNativeMalloc(env = Deno.env.get("PC_MALLOC_TUNING")): string {
  if (result !== undefined) return result;
  if (env === "0") return (result = "malloc: left as it is (PC_MALLOC_TUNING=0)");
  if (Deno.build.os !== "linux") return (result = `malloc: left as it is (${Deno.build.os}, not glibc)`);
  let dl: Deno.DynamicLibrary<{ mallopt: { parameters: ["i32", "i32"]; result: "i32" } }> | undefined;
  try {
    dl = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
    const s = NATIVE_MALLOC_SETTINGS;
    const ok = dl.symbols.mallopt(M_MMAP_THRESHOLD, s.M_MMAP_THRESHOLD) === 1 &&
      dl.symbols.mallopt(M_TRIM_THRESHOLD, s.M_TRIM_THRESHOLD) === 1 &&
      dl.symbols.mallopt(M_TOP_PAD, s.M_TOP_PAD) === 1;
    result = ok
      ? "malloc: freed tensor memory is reused (mmap threshold 32 MiB, no trim below 2 GiB; PC_MALLOC_TUNING=0 turns this off)"
      : "malloc: left as it is (glibc refused a mallopt setting)";
  } catch (e) {
    result = `malloc: left as it is (${(e as Error).message.split("\n")[0]})`;
  } finally {
    dl?.close();
  }
  return result;
}
