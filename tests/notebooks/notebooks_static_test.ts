/**
 * Static checks of the committed notebooks (no kernel): no outputs or execution counts, the project
 * kernelspec, a settings cell first, code that calls lib/ and type-checks, and the kernelspec itself.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { join } from "node:path";
import { countPlotOutputs } from "../../notebooks/tools/run_notebook.ts";
import { KERNEL_NAME, projectRoot } from "../../notebooks/tools/project.ts";
import { NOTEBOOKS } from "./_notebooks.ts";

const ROOT = projectRoot();

function assertMatch(actual: string, re: RegExp, msg = ""): void {
  assert(re.test(actual), `${msg ? msg + ": " : ""}expected to match ${re}:\n${actual.slice(0, 400)}`);
}

interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: unknown[];
  execution_count?: number | null;
  metadata?: Record<string, unknown>;
}
interface Notebook {
  cells: Cell[];
  metadata: { kernelspec?: { name?: string; language?: string }; [k: string]: unknown };
  nbformat: number;
}

const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join("") : c.source);
const read = async (name: string): Promise<Notebook> =>
  JSON.parse(await Deno.readTextFile(join(ROOT, "notebooks", name)));

Deno.test("notebooks are committed without outputs or execution counts, with the project kernel", async () => {
  for (const name of NOTEBOOKS) {
    const nb = await read(name);
    assertEquals(nb.nbformat, 4, `${name}: nbformat`);
    assertEquals(nb.metadata.kernelspec?.name, KERNEL_NAME, `${name}: kernelspec.name`);
    assertEquals(nb.metadata.kernelspec?.language, "typescript", `${name}: kernelspec.language`);
    const code = nb.cells.filter((c) => c.cell_type === "code");
    assert(code.length >= 4, `${name}: only ${code.length} code cells`);
    for (const [i, c] of code.entries()) {
      assertEquals(
        c.outputs ?? [],
        [],
        `${name}: code cell ${i + 1} has outputs (clear them before committing)`,
      );
      assertEquals(c.execution_count ?? null, null, `${name}: code cell ${i + 1} has an execution count`);
    }
    // literate: some prose for every step
    const md = nb.cells.filter((c) => c.cell_type === "markdown");
    assert(
      md.length >= code.length / 2,
      `${name}: ${md.length} markdown cells for ${code.length} code cells`,
    );
  }
});

Deno.test("each notebook starts with one settings cell; cells import lib/ only and hold no model code", async () => {
  for (const name of NOTEBOOKS) {
    const nb = await read(name);
    const code = nb.cells.filter((c) => c.cell_type === "code").map(text);
    assertMatch(
      code[0],
      /Settings: the one cell to edit/,
      `${name}: first code cell is not the settings cell`,
    );
    // one line per setting: the config path is one line to change (e.g. to the Cityscapes config); in 01 the
    // data set is (DATA: the embedded synthetic set or the shipped CamVid), with CONFIG as the override
    if (/^ {2}DATA: /m.test(code[0])) {
      assertMatch(code[0], /^ {2}DATA: "synthetic", \/\/ .*"camvid"/m, `${name}: DATA line offers camvid`);
      assertMatch(code[0], /^ {2}CONFIG: null as string \| null,/m, `${name}: CONFIG override line`);
      const configs = code.join("\n");
      for (const c of ["configs/synthetic/", "configs/camvid/"]) assert(configs.includes(c), `${name}: ${c}`);
    } else {
      assertMatch(code[0], /^ {2}(CONFIG|CONTRAST_CONFIG): "configs\/[^"]+\.yml",/m, `${name}: config line`);
    }
    assertMatch(
      code[0],
      /= notebookSettings\(\{/,
      `${name}: settings through notebookSettings (PC_NB_* for tests)`,
    );
    const imports = [...code[0].matchAll(/^import .*$/gm)].map((m) => m[0]);
    assertEquals(
      imports,
      ['import { display, notebookSettings } from "./lib/viz/mod.ts";'],
      `${name}: settings cell imports`,
    );
    for (const [i, src] of code.entries()) {
      for (const m of src.matchAll(/from "([^"]+)"/g)) {
        assert(
          m[1].startsWith("./lib/") || m[1].startsWith("node:"),
          `${name}: code cell ${i + 1} imports '${m[1]}' (cells call ./lib/ only)`,
        );
      }
      assert(
        !/\btf\.\w+\(/.test(src),
        `${name}: code cell ${i + 1} calls tf directly (keep model code in lib/)`,
      );
      assert(!/\/\/\s*TODO/i.test(src), `${name}: code cell ${i + 1} has a TODO`);
    }
  }
});

Deno.test("notebook code type-checks (all code cells of a notebook as one module)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pc-nbcheck-ts-" });
  try {
    const files: string[] = [];
    for (const name of NOTEBOOKS) {
      const nb = await read(name);
      const src = nb.cells.filter((c) => c.cell_type === "code").map(text).join("\n\n")
        .replaceAll('from "./lib/', `from "file://${ROOT}/lib/`);
      const file = join(tmp, name.replace(/\.ipynb$/, ".ts"));
      await Deno.writeTextFile(file, `${src}\n\nexport {};\n`);
      files.push(file);
    }
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", "--config", join(ROOT, "deno.json"), ...files],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
    assert(r.success, `deno check of the notebooks' code failed:\n${out}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the committed kernelspec: launcher with the connection file, NO_COLOR, TypeScript", async () => {
  const dir = join(ROOT, "notebooks", "kernels", KERNEL_NAME);
  const spec = JSON.parse(await Deno.readTextFile(join(dir, "kernel.json")));
  assertEquals(spec.argv, ["sh", "{resource_dir}/launch.sh", "{connection_file}"]);
  assertEquals(spec.env?.NO_COLOR, "1");
  assertEquals(spec.language, "typescript");
  const launch = await Deno.readTextFile(join(dir, "launch.sh"));
  assertMatch(launch, /want="2\.9\.6"/, "launcher pins Deno 2.9.6");
  assertMatch(launch, /exec "\$deno" jupyter --kernel --conn "\$conn"/);
  assertMatch(launch, /export NO_COLOR=1/);
});

Deno.test("countPlotOutputs counts outputs that carry plotly JSON", () => {
  const nb = {
    cells: [
      {
        outputs: [{ data: { "application/vnd.plotly.v1+json": {}, "text/html": "" } }, {
          data: { "text/plain": "x" },
        }],
      },
      {},
      { outputs: [{ data: { "application/vnd.plotly.v1+json": {} } }] },
    ],
  };
  assertEquals(countPlotOutputs(nb), 2);
});
