/**
 * Datasets the repository ships as an archive: `<dataset_root>.tar` with its checksum `<tar>.sha256`
 * (`sha256sum` format) beside it, e.g. data/camvid.tar for `dataset_root: data/camvid` (data/README.md).
 * `ensureShippedDataset` is the seed's "unpack the dataset" step for them: it verifies the archive against
 * its checksum and unpacks it with the project's archive code (archive.ts) into dataset_root, once —
 * archive.ts' completion marker makes later calls return at once. The set-up step `dataset` and
 * `openDataset` call it, so a config that points at a shipped dataset works from a fresh clone.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { isUnpacked, unpackArchive } from "./archive.ts";
import { DataError } from "./dataset.ts";

/** The archive and checksum files of a shipped dataset root. */
export function shippedArchive(root: string): { archive: string; checksum: string } {
  const archive = `${root.replace(/[/\\]+$/, "")}.tar`;
  return { archive, checksum: `${archive}.sha256` };
}

/** SHA-256 of a file, hex (streamed). */
export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(file), h);
  return h.digest("hex");
}

/** Reads the expected digest from a `sha256sum`-format file (`<64 hex>  <name>`). */
export async function readChecksum(checksum: string): Promise<string> {
  const text = await Deno.readTextFile(checksum);
  const m = text.match(/^([0-9a-f]{64})\b/i);
  if (!m) {
    throw new DataError(
      `'${checksum}' is not a sha256sum line ('<64 hex digits>  <file name>')`,
      "bad-checksum-file",
      "restore it from the repository (git checkout -- <file>)",
    );
  }
  return m[1].toLowerCase();
}

/** Throws a DataError naming the archive when its SHA-256 differs from the checksum file's. */
export async function verifyArchive(archive: string, checksum: string): Promise<string> {
  const want = await readChecksum(checksum);
  const got = await sha256File(archive);
  if (got !== want) {
    throw new DataError(
      `'${archive}' is damaged or not the shipped file: its SHA-256 is ${got}, '${checksum}' expects ${want}`,
      "checksum-mismatch",
      `restore it from the repository (git checkout -- ${archive}) or clone again; nothing was unpacked`,
    );
  }
  return got;
}

export interface ShippedResult {
  root: string;
  archive: string;
  /** True when this call unpacked the archive (false: already unpacked). */
  unpacked: boolean;
  /** Files written by this call. */
  written: number;
}

const inFlight = new Map<string, Promise<ShippedResult | null>>();

/**
 * Makes sure a shipped dataset is unpacked in `root`: returns null when `root` is not a shipped dataset
 * (no `<root>.tar.sha256`), else verifies and unpacks if needed.
 */
export function ensureShippedDataset(
  root: string,
  o: { progress?: boolean } = {},
): Promise<ShippedResult | null> {
  // one preparation per folder at a time (train and val datasets open the same folder together)
  const key = path.resolve(root);
  const prev = inFlight.get(key) ?? Promise.resolve(null);
  const next = prev.catch(() => null).then(() => ensureUnlocked(root, o));
  inFlight.set(key, next);
  return next;
}

async function ensureUnlocked(root: string, o: { progress?: boolean }): Promise<ShippedResult | null> {
  const { archive, checksum } = shippedArchive(root);
  const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
  if (!(await exists(checksum))) return null;
  if (!(await exists(archive))) {
    throw new DataError(
      `'${checksum}' is here but the archive '${archive}' is missing`,
      "missing-archive",
      `restore it from the repository (git checkout -- ${archive})`,
    );
  }
  if (await isUnpacked(archive, root)) return { root, archive, unpacked: false, written: 0 };
  await verifyArchive(archive, checksum);
  const r = await unpackArchive(archive, root, { progress: o.progress });
  return { root, archive, unpacked: !r.alreadyUnpacked, written: r.written };
}
