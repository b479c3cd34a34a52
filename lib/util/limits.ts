/**
 * Bounds on what a user-supplied file may make us allocate, write or read (archives, weight files,
 * configs, images). Every reader checks declared sizes against these BEFORE allocating or writing, and
 * fails with a message naming the file, the entry or tensor, the bound and how to raise it.
 *
 * Defaults are chosen so that real inputs pass with a wide margin (numbers in README "Hostile inputs");
 * each can be changed per process with an environment variable (sizes accept K/M/G suffixes, powers of
 * 1024), or per call through the readers' options.
 */

export interface Limits {
  /** Total bytes one archive may unpack to (PC_MAX_UNPACK_BYTES; default 64 GiB). */
  unpackMaxBytes: number;
  /** Entries (files, folders, links) one archive may hold (PC_MAX_UNPACK_ENTRIES; default 1,000,000). */
  unpackMaxEntries: number;
  /** Unpacked bytes per archive byte, beyond the first `unpackRatioFloor` bytes (PC_MAX_UNPACK_RATIO; 100). */
  unpackMaxRatio: number;
  /** Bytes any archive may unpack to whatever its compression ratio (16 MiB). */
  unpackRatioFloor: number;
  /** Memory budget of one weight file: file size, decompressed size, decoded tensors (PC_MAX_WEIGHT_BYTES; 2 GiB). */
  weightMaxBytes: number;
  /** Size of one config file or `_base_` (PC_MAX_CONFIG_BYTES; 1 MiB). */
  configMaxBytes: number;
  /** Pixels (width x height) of one image, checked from its header (PC_MAX_IMAGE_PIXELS; 8192 x 8192). */
  imageMaxPixels: number;
  /** Size of one text file read whole: a dataset list file, a run's metrics.jsonl (PC_MAX_TEXT_BYTES; 256 MiB). */
  textMaxBytes: number;
}

const KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  unpackMaxBytes: 64 * GiB,
  unpackMaxEntries: 1_000_000,
  unpackMaxRatio: 100,
  unpackRatioFloor: 16 * MiB,
  weightMaxBytes: 2 * GiB,
  configMaxBytes: 1 * MiB,
  imageMaxPixels: 8192 * 8192,
  textMaxBytes: 256 * MiB,
});

/** Environment variable of each limit that can be set that way. */
export const LIMIT_ENV: Readonly<Partial<Record<keyof Limits, string>>> = Object.freeze({
  unpackMaxBytes: "PC_MAX_UNPACK_BYTES",
  unpackMaxEntries: "PC_MAX_UNPACK_ENTRIES",
  unpackMaxRatio: "PC_MAX_UNPACK_RATIO",
  weightMaxBytes: "PC_MAX_WEIGHT_BYTES",
  configMaxBytes: "PC_MAX_CONFIG_BYTES",
  imageMaxPixels: "PC_MAX_IMAGE_PIXELS",
  textMaxBytes: "PC_MAX_TEXT_BYTES",
});

/** Parses "123", "1.5G", "64GiB", "512M", "100k" (powers of 1024); NaN when malformed. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return NaN;
  const mult = { "": 1, k: KiB, m: MiB, g: GiB, t: 1024 * GiB }[m[2].toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: the defaults apply
  }
}

/** The limits in force: defaults, then environment variables, then `overrides`. */
export function getLimits(overrides: Partial<Limits> = {}): Limits {
  const out: Limits = { ...DEFAULT_LIMITS };
  for (const [key, name] of Object.entries(LIMIT_ENV) as [keyof Limits, string][]) {
    const v = env(name);
    if (v === undefined || v === "") continue;
    const n = parseSize(v);
    if (!(n > 0)) throw new Error(`environment variable ${name}='${v}' is not a positive number (e.g. 4G)`);
    out[key] = n;
  }
  for (const [k, v] of Object.entries(overrides) as [keyof Limits, number | undefined][]) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** "1.5 GiB"-style size for messages. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n, u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) (v /= 1024), u++;
  return u === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** How to raise a limit, for the end of a message. */
export function raiseHint(key: keyof Limits): string {
  const name = LIMIT_ENV[key];
  return name ? `if the file is trusted, raise the bound with ${name}` : "";
}
