/**
 * Packs a dataset folder into the reproducible `.tar` the repository ships (e.g. data/camvid.tar), and
 * writes its checksum beside it (`<tar>.sha256`, `sha256sum` format) for lib/data/shipped.ts to verify
 * before unpacking.
 *
 *   deno run -A scripts/data/pack_dataset.ts SOURCE_FOLDER data/camvid.tar
 *
 * Reproducible: regular files only (a link or any other kind of entry is refused), in sorted path order,
 * with paths relative to SOURCE_FOLDER, a fixed mtime, mode 0644 and owner 0 — packing the same files
 * again gives the same bytes and the same checksum.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
// @ts-types="@types/tar-stream"
import tarStream from "tar-stream";
import { Buffer } from "node:buffer";

const MTIME = new Date(Date.UTC(2021, 8, 4));

async function walk(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path.join(root, rel))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isSymlink) throw new Error(`${path.join(root, r)} is a link: refusing to pack it`);
    if (e.isDirectory) out.push(...await walk(root, r));
    else if (e.isFile) out.push(r);
    else throw new Error(`${path.join(root, r)} is neither a file nor a folder`);
  }
  return out;
}

export async function packDataset(src: string, tar: string): Promise<{ files: number; sha256: string }> {
  const files = (await walk(src)).sort();
  if (!files.length) throw new Error(`${src} holds no files`);
  const tmp = `${tar}.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const hash = createHash("sha256");
  const pack = tarStream.pack();
  const written = (async () => {
    for await (const chunk of pack) {
      const u8 = chunk as Uint8Array;
      hash.update(u8);
      let off = 0;
      while (off < u8.length) off += await file.write(u8.subarray(off));
    }
  })();
  try {
    for (const rel of files) {
      const data = await Deno.readFile(path.join(src, rel));
      await new Promise<void>((res, rej) =>
        pack.entry(
          { name: rel, mtime: MTIME, size: data.length, mode: 0o644, uid: 0, gid: 0, uname: "", gname: "" },
          Buffer.from(data),
          (e) => (e ? rej(e) : res()),
        )
      );
    }
    pack.finalize();
    await written;
  } finally {
    file.close();
  }
  await Deno.rename(tmp, tar);
  const sha256 = hash.digest("hex");
  await Deno.writeTextFile(`${tar}.sha256`, `${sha256}  ${path.basename(tar)}\n`);
  return { files: files.length, sha256 };
}

if (import.meta.main) {
  const [src, tar] = Deno.args;
  if (!src || !tar) {
    console.error("usage: deno run -A scripts/data/pack_dataset.ts SOURCE_FOLDER OUT.tar");
    Deno.exit(2);
  }
  const r = await packDataset(src, tar);
  const size = (await Deno.stat(tar)).size;
  console.log(`${tar}: ${r.files} files, ${(size / 1e6).toFixed(1)} MB, sha256 ${r.sha256}`);
}
