/**
 * The clone is the whole project: no file of the repository (tracked, or new and not ignored; `.git`
 * excluded) refers to the developers' folder beside it, and every `docs/method.md §N` citation names a
 * section that exists.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** Files git would commit: tracked plus untracked-but-not-ignored (so a new file is caught before commit). */
async function repoFiles(): Promise<string[]> {
  const r = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(`this test lists the repository's files with git: ${(e as Error).message}`);
  });
  if (!r.success) throw new Error(`git ls-files failed in ${ROOT}: ${new TextDecoder().decode(r.stderr)}`);
  const files = new TextDecoder().decode(r.stdout).split("\0").filter(Boolean);
  // listed but deleted in the work tree: nothing to scan
  return files.filter((f) => {
    try {
      return Deno.statSync(`${ROOT}/${f}`).isFile;
    } catch {
      return false;
    }
  });
}

/** Byte offsets of `needle` in `hay`. */
function find(hay: Uint8Array, needle: Uint8Array): number[] {
  const at: number[] = [];
  outer: for (
    let i = hay.indexOf(needle[0]);
    i >= 0 && i <= hay.length - needle.length;
    i = hay.indexOf(needle[0], i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    at.push(i);
  }
  return at;
}

Deno.test("no file of the repository refers to the developers' shared folder outside it", async () => {
  // built from pieces, so that this file does not contain what it looks for
  const needles = [[".", ".", "/", "shared"].join(""), ["/work", "shared"].join("/")];
  const enc = new TextEncoder();
  const files = await repoFiles();
  assert(files.length > 100 && files.includes("README.md"), `git listed ${files.length} files`);
  const hits: string[] = [];
  for (const f of files) {
    const bytes = await Deno.readFile(`${ROOT}/${f}`);
    for (const n of needles) {
      for (const i of find(bytes, enc.encode(n))) {
        const line = new TextDecoder().decode(bytes.subarray(0, i)).split("\n").length;
        hits.push(`${f}:${line}: ${n}`);
      }
    }
  }
  assertEquals(hits, [], "references to a folder a clone does not have");
});

Deno.test("every docs/method.md §N citation names an existing section; no bare method.md", async () => {
  const doc = await Deno.readTextFile(`${ROOT}/docs/method.md`);
  const sections = new Set([...doc.matchAll(/^#{2,3} §(\d+(?:\.\d+)?) /gm)].map((m) => m[1]));
  for (let n = 0; n <= 13; n++) assert(sections.has(String(n)), `docs/method.md has no '## §${n}' heading`);
  const bad: string[] = [];
  let cited = 0;
  for (const f of await repoFiles()) {
    if (!/\.(ts|md|py|yml|ipynb|json|txt|sh)$/.test(f) || f === "tests/repo/self_contained_test.ts") continue;
    const text = await Deno.readTextFile(`${ROOT}/${f}`);
    for (const m of text.matchAll(/docs\/method\.md §(\d+(?:\.\d+)?)/g)) {
      cited++;
      if (!sections.has(m[1])) bad.push(`${f}: cites §${m[1]}, which docs/method.md does not have`);
    }
    for (const m of text.matchAll(/(?<![\w/])method\.md/g)) {
      const line = text.slice(0, m.index).split("\n").length;
      bad.push(`${f}:${line}: cites 'method.md' without its folder (docs/method.md)`);
    }
  }
  assert(cited > 40, `only ${cited} citations found: is the pattern still right?`);
  assertEquals(bad, []);
});
