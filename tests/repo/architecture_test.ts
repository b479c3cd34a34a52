/**
 * The rooms of lib/ and what each may import (ARCHITECTURE.md): every import of every file under lib/ is
 * parsed (static, `export ... from`, dynamic `import()`, `new URL(..., import.meta.url)` workers) and checked
 * against the allowed graph; the folders must form no cycle; TensorFlow.js is imported in lib/backend only.
 * Where the tree is not yet as ARCHITECTURE.md draws it, the exception is listed here by file, with why
 * (KNOWN_EXCEPTIONS); an exception that no longer matches an import fails too, so it is deleted with the
 * import it excused.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

// ---------------------------------------------------------------------------------------------------
// the rules (ARCHITECTURE.md, "Rooms")

type Room =
  | "util"
  | "config"
  | "backend"
  | "data"
  | "models"
  | "losses"
  | "train"
  | "eval"
  | "viz"
  | "export"
  | "run"
  | "cli";

interface Rules {
  /** Rooms each room may import (values and types). */
  allowed: Record<Room, readonly Room[]>;
  /** Rooms each room may import types from only (`import type` / `export type`). */
  typesOnly: Partial<Record<Room, readonly Room[]>>;
  /** Plain-data modules (they import nothing) that every room may import. */
  shared: readonly string[];
}

const RULES: Rules = {
  allowed: {
    util: [],
    config: ["util"],
    backend: ["util"],
    data: ["util"],
    models: ["backend", "util"],
    losses: ["backend", "util"],
    eval: ["backend", "config", "data", "models", "util"],
    train: ["backend", "config", "data", "models", "losses", "eval", "util"],
    viz: ["data", "util"],
    // deno task export: a use of the composition root (the model of a config with trained weights)
    export: ["config", "data", "models", "losses", "train", "run", "util"],
    // the composition root: builds what train, eval and viz work on, from a config
    run: ["backend", "config", "data", "models", "losses", "train", "eval", "viz", "util"],
    cli: ["backend", "config", "data", "models", "losses", "train", "eval", "viz", "export", "run", "util"],
  },
  // viz draws what train recorded (the run record) and what eval measured, and never computes itself
  typesOnly: { viz: ["train", "eval"] },
  // the HRNet widths: the config schema lists the backbones and derives their channels from them
  shared: ["lib/models/hrnet_configs.ts"],
};

/**
 * Imports that break the rules, each with why (none today). `from` is a file, `to` a file or a room's folder
 * (`lib/viz/`); an entry that no longer matches an import fails the test, so it goes with its import.
 */
const KNOWN_EXCEPTIONS: ReadonlyArray<{ from: string; to: string; why: string }> = [];

// ---------------------------------------------------------------------------------------------------
// parsing imports

interface ImportRef {
  specifier: string;
  typeOnly: boolean;
  line: number;
}

/** The source with comments and the insides of template literals blanked (line breaks kept). */
function stripComments(src: string): string {
  let out = "";
  let i = 0;
  const blank = (s: string) => s.replace(/[^\n]/g, " ");
  while (i < src.length) {
    const c = src[i], n = src[i + 1];
    if (c === "/" && n === "/") {
      const end = src.indexOf("\n", i);
      const j = end < 0 ? src.length : end;
      out += blank(src.slice(i, j));
      i = j;
    } else if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const j = end < 0 ? src.length : end + 2;
      out += blank(src.slice(i, j));
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (c === "`") {
      // specifiers are never template literals; their text (HTML, scripts) must not look like imports
      let j = i + 1;
      while (j < src.length && src[j] !== "`") j += src[j] === "\\" ? 2 : 1;
      out += "`" + blank(src.slice(i + 1, j)) + "`";
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module a TypeScript source refers to, with whether only its types are used. */
function parseImports(src: string): ImportRef[] {
  const code = stripComments(src);
  const refs: ImportRef[] = [];
  const lineAt = (i: number) => code.slice(0, i).split("\n").length;
  const patterns: Array<[RegExp, (m: RegExpExecArray) => boolean]> = [
    // import x from "m"; import { a, b } from "m"; import type {...} from "m"; export {...} from "m"
    [/\b(?:import|export)\s+(type\s+)?[\w$*{},\s]*?\bfrom\s*["']([^"']+)["']/g, (m) => !!m[1]],
    // import "m" (side effects)
    [/\bimport\s*()["']([^"']+)["']/g, () => false],
    // import("m"), and `typeof import("m")` in a type
    [/(typeof\s+)?\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, (m) => !!m[1]],
    // workers: new URL("./w.ts", import.meta.url)
    [/\bnew\s+URL\s*\(\s*()["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g, () => false],
  ];
  for (const [re, typeOnly] of patterns) {
    for (let m = re.exec(code); m; m = re.exec(code)) {
      refs.push({ specifier: m[2], typeOnly: typeOnly(m), line: lineAt(m.index) });
    }
  }
  return refs.sort((a, b) => a.line - b.line);
}

// ---------------------------------------------------------------------------------------------------
// checking

interface Edge {
  from: string;
  to: string;
  fromRoom: string;
  toRoom: string;
  typeOnly: boolean;
  line: number;
}

/** The room of a repository path under lib/ (`lib/<room>/...`), or null. */
function roomOf(path: string): string | null {
  const m = /^lib\/([^/]+)\//.exec(path);
  return m ? m[1] : null;
}

/** Edges between files of lib/ in different rooms, and the npm packages each file imports. */
function edgesOf(files: Record<string, string>): { edges: Edge[]; packages: Array<[string, string]> } {
  const edges: Edge[] = [];
  const packages: Array<[string, string]> = [];
  for (const [from, src] of Object.entries(files)) {
    for (const ref of parseImports(src)) {
      if (!ref.specifier.startsWith(".")) {
        if (!ref.specifier.startsWith("node:")) packages.push([from, ref.specifier]);
        continue;
      }
      const to = relative(ROOT, resolve(ROOT, dirname(from), ref.specifier));
      const fromRoom = roomOf(from)!, toRoom = roomOf(to);
      if (toRoom === null || toRoom === fromRoom) continue;
      edges.push({ from, to, fromRoom, toRoom, typeOnly: ref.typeOnly, line: ref.line });
    }
  }
  return { edges, packages };
}

/** Strongly connected components with more than one room (Tarjan), each as its sorted rooms. */
function roomCycles(edges: ReadonlyArray<{ fromRoom: string; toRoom: string }>): string[][] {
  const adj = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!adj.has(e.fromRoom)) adj.set(e.fromRoom, new Set());
    if (!adj.has(e.toRoom)) adj.set(e.toRoom, new Set());
    adj.get(e.fromRoom)!.add(e.toRoom);
  }
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of adj.get(v)!) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of [...adj.keys()].sort()) if (!idx.has(v)) visit(v);
  return out;
}

/** Every way the files break the rules, as readable lines (empty: the tree is as drawn). */
function violations(
  files: Record<string, string>,
  rules: Rules,
  exceptions: ReadonlyArray<{ from: string; to: string }>,
): string[] {
  const problems: string[] = [];
  const rooms = Object.keys(rules.allowed);
  for (const f of Object.keys(files)) {
    const room = roomOf(f);
    if (room === null || !rooms.includes(room)) {
      problems.push(
        `${f}: not in a known room (${rooms.join(", ")}); add its room to ARCHITECTURE.md and here`,
      );
    }
  }
  const { edges, packages } = edgesOf(files);
  const used = new Set<number>();
  const excused = (e: Edge) => {
    const k = exceptions.findIndex((x) => x.from === e.from && (x.to === e.to || e.to.startsWith(x.to)));
    if (k >= 0) used.add(k);
    return k >= 0;
  };
  const kept: Edge[] = [];
  for (const e of edges) {
    if (excused(e)) continue;
    kept.push(e);
    if (rules.shared.includes(e.to)) continue;
    const ok = (rules.allowed[e.fromRoom as Room] ?? []).includes(e.toRoom as Room) ||
      (e.typeOnly && (rules.typesOnly[e.fromRoom as Room] ?? []).includes(e.toRoom as Room));
    if (!ok) {
      const typesOk = (rules.typesOnly[e.fromRoom as Room] ?? []).includes(e.toRoom as Room);
      problems.push(
        `${e.from}:${e.line}: imports ${e.to}: ${e.fromRoom} may not import ${e.toRoom}` +
          (typesOk ? " (only its types: use `import type`)" : ""),
      );
    }
  }
  for (const cycle of roomCycles(kept.filter((e) => !rules.shared.includes(e.to)))) {
    problems.push(`import cycle between the folders ${cycle.map((r) => `lib/${r}`).join(", ")}`);
  }
  for (const s of rules.shared) {
    if (!(s in files)) continue;
    const refs = parseImports(files[s]);
    if (refs.length) problems.push(`${s}: a shared plain-data module imports ${refs[0].specifier}`);
  }
  for (const [from, pkg] of packages) {
    if (pkg.startsWith("@tensorflow/") && roomOf(from) !== "backend") {
      problems.push(`${from}: imports ${pkg}; TensorFlow.js comes through lib/backend/tf.ts only`);
    }
  }
  exceptions.forEach((x, k) => {
    if (!used.has(k)) {
      problems.push(`known exception ${x.from} -> ${x.to} matches no import any more: delete it`);
    }
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// tests

async function libFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (/\.(ts|tsx|js|mjs)$/.test(e.name)) out[p] = await Deno.readTextFile(join(ROOT, p));
    }
  };
  await walk("lib");
  return out;
}

Deno.test("every import under lib/ follows ARCHITECTURE.md: allowed rooms, no cycle between folders", async () => {
  const files = await libFiles();
  assert(Object.keys(files).length > 100, `found ${Object.keys(files).length} files under lib/`);
  const { edges } = edgesOf(files);
  assert(edges.length > 50, `found ${edges.length} imports between rooms`);
  assertEquals(violations(files, RULES, KNOWN_EXCEPTIONS), []);
});

Deno.test("the allowed graph itself has no cycle, and the rules name every room", () => {
  const allowed = Object.entries(RULES.allowed).flatMap(([from, tos]) =>
    tos.map((to) => ({ fromRoom: from, toRoom: to }))
  );
  const types = Object.entries(RULES.typesOnly).flatMap(([from, tos]) =>
    (tos ?? []).map((to) => ({ fromRoom: from, toRoom: to }))
  );
  assertEquals(roomCycles([...allowed, ...types]), []);
  for (const e of [...allowed, ...types]) assert(e.toRoom in RULES.allowed, `unknown room ${e.toRoom}`);
});

Deno.test("the checker finds what it must: forbidden imports, cycles, type-only rules, stale exceptions", () => {
  const files: Record<string, string> = {
    // a multi-line import of train from eval (forbidden) and a dynamic one of viz (forbidden)
    "lib/eval/a.ts":
      'import {\n  x,\n  y,\n} from "../train/b.ts";\nconst m = await import("../viz/c.ts");\n',
    // train -> eval is allowed, and closes the cycle eval -> train -> eval
    "lib/train/b.ts": '// import { no } from "../viz/c.ts";\nexport { z } from "../eval/a.ts";\n',
    // viz may import train's types only; a value import is named as such; a template is not code
    "lib/viz/c.ts": 'import type { R } from "../train/b.ts";\nimport { w } from "../train/b.ts";\n' +
      'const html = `import x from "../cli/d.ts"`;\n',
    "lib/models/d.ts":
      'import * as tf from "@tensorflow/tfjs";\nnew Worker(new URL("../data/w.ts", import.meta.url));\n',
    "lib/models/hrnet_configs.ts": "export const W = 1;\n",
    "lib/config/e.ts": 'import { W } from "../models/hrnet_configs.ts";\n',
    "lib/nowhere/f.ts": "",
  };
  const found = violations(files, RULES, [{ from: "lib/util/gone.ts", to: "lib/viz/" }]);
  assertEquals(found, [
    "lib/nowhere/f.ts: not in a known room (util, config, backend, data, models, losses, eval, train, viz, export, " +
    "run, cli); add its room to ARCHITECTURE.md and here",
    "lib/eval/a.ts:1: imports lib/train/b.ts: eval may not import train",
    "lib/eval/a.ts:5: imports lib/viz/c.ts: eval may not import viz",
    "lib/viz/c.ts:2: imports lib/train/b.ts: viz may not import train (only its types: use `import type`)",
    "lib/models/d.ts:2: imports lib/data/w.ts: models may not import data",
    "import cycle between the folders lib/eval, lib/train, lib/viz",
    "lib/models/d.ts: imports @tensorflow/tfjs; TensorFlow.js comes through lib/backend/tf.ts only",
    "known exception lib/util/gone.ts -> lib/viz/ matches no import any more: delete it",
  ]);
  // an exception excuses exactly its import
  const excused = violations(
    { "lib/train/t.ts": 'import { r } from "../viz/report.ts";\n' },
    RULES,
    [{ from: "lib/train/t.ts", to: "lib/viz/report.ts" }],
  );
  assertEquals(excused, []);
  assertEquals(parseImports('import type { A } from "./a.ts";\nexport type { B } from "./b.ts";').length, 2);
  assert(parseImports('type N = typeof import("./n.ts");')[0].typeOnly, "typeof import() is a type");
});
