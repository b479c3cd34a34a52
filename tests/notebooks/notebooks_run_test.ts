/**
 * The notebooks run: each executes headless with the project's Deno kernel (nbclient, via
 * notebooks/tools/run_notebook.py) on the tiny test config, with no error output and the figures it
 * should show; a deliberately failing notebook makes the runner fail; and the executed notebooks show
 * their plots in JupyterLab in headless Chromium (`deno task nb:check`'s code), screenshots under
 * tests/out/nb_check/.
 *
 * Needs the project's .venv (set-up step `python`: JupyterLab, nbclient, plotly) and a headless Chromium
 * (set-up step `browser`: project-local from npm's @sparticuz/chromium, or $PC_CHROMIUM; notebooks/tools/chromium.ts).
 * `deno task test` provisions both. Missing tools fail the tests with the command that provides them;
 * PC_ALLOW_PY_SKIP=1 / PC_ALLOW_BROWSER_SKIP=1 turn that into a skip with a message.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { browserCheck } from "../../notebooks/tools/browser_check.ts";
import { chromiumHint, findChromium } from "../../notebooks/tools/chromium.ts";
import {
  countPlotOutputs,
  executeNotebook,
  type NotebookRun,
  tinyNotebookEnv,
} from "../../notebooks/tools/run_notebook.ts";
import { projectRoot } from "../../notebooks/tools/project.ts";
import { NOTEBOOKS } from "./_notebooks.ts";

const ROOT = projectRoot();
const OUT = join(ROOT, "tests", "out", "notebooks");
const EXECUTED = join(OUT, "executed");
const FIXTURES = join(ROOT, "tests", "notebooks", "fixtures");

const TINY_ENV = tinyNotebookEnv("tests/out/notebooks/run");

function toolProblem(): string | null {
  for (const tool of ["python", "jupyter"]) {
    const p = join(ROOT, ".venv", "bin", tool);
    if (!existsSync(p)) return `${p} is missing (run 'deno task setup --only python')`;
  }
  return null;
}
const pyProblem = toolProblem();
const allowPySkip = Deno.env.get("PC_ALLOW_PY_SKIP") === "1";
if (pyProblem && allowPySkip) console.warn(`SKIPPING the notebook runs (PC_ALLOW_PY_SKIP=1): ${pyProblem}`);
const chromium = findChromium(ROOT);
const allowBrowserSkip = Deno.env.get("PC_ALLOW_BROWSER_SKIP") === "1";
if (!chromium && allowBrowserSkip) {
  console.warn(`SKIPPING the browser check (PC_ALLOW_BROWSER_SKIP=1): ${chromiumHint(ROOT)}`);
}

function requireTools(): void {
  if (pyProblem) throw new Error(`${pyProblem}; or set PC_ALLOW_PY_SKIP=1 to skip the notebook runs`);
}

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  text?: string | string[];
  name?: string;
}
interface ExecutedNotebook {
  cells: Array<{ cell_type: string; outputs?: Output[] }>;
}
const joinText = (t: unknown) => (Array.isArray(t) ? t.join("") : String(t ?? ""));

function outputsOf(nb: ExecutedNotebook): Output[] {
  return nb.cells.flatMap((c) => c.outputs ?? []);
}

Deno.test({
  name:
    "run_notebook.py fails on a notebook whose cell throws (and on an awaited rejection), naming the error",
  ignore: pyProblem !== null && allowPySkip,
  async fn() {
    requireTools();
    const out = join(OUT, "fixtures", "throws.ipynb");
    const run = await executeNotebook(join(FIXTURES, "throws.ipynb"), { out });
    assertEquals(run.code, 1, `runner exit code (log:\n${run.log})`);
    assert(!run.ok);
    assert(run.report && !run.report.ok, "report says failed");
    assert(
      run.report!.failure!.includes("deliberate failure"),
      `failure names the error: ${run.report!.failure}`,
    );
    assert(run.log.includes("FAILED"), "the runner says FAILED");
    const cells = run.report!.cells;
    assertEquals(cells.length, 3);
    assertEquals(cells[0].outputs.map((o) => o.output_type), ["stream"], "cell before the failure ran");
    assertEquals(
      cells[1].outputs.map((o) => o.output_type),
      ["error"],
      "the failing cell has an error output",
    );
    assertEquals(cells[2].outputs, [], "the cell after the failure did not run");
    const executed: ExecutedNotebook = JSON.parse(await Deno.readTextFile(out));
    assert(outputsOf(executed).some((o) => o.output_type === "error"), "the executed copy keeps the error");

    const rej = await executeNotebook(join(FIXTURES, "rejects.ipynb"));
    assertEquals(rej.code, 1, `awaited rejection: exit code (log:\n${rej.log})`);
    assert(rej.report!.failure!.includes("deliberate rejection"));
  },
});

const runs = new Map<string, NotebookRun>();

/** Executes `name` on the tiny settings into tests/out/notebooks/executed/ (once per test process). */
async function execute(name: string): Promise<NotebookRun> {
  if (runs.has(name)) return runs.get(name)!;
  const run = await executeNotebook(join(ROOT, "notebooks", name), {
    out: join(EXECUTED, name),
    report: join(EXECUTED, name.replace(/\.ipynb$/, ".json")),
    env: TINY_ENV,
    timeoutS: 300,
  });
  runs.set(name, run);
  return run;
}

/** What each notebook must have displayed: plot outputs and HTML tables/progress displays. */
const EXPECT: Record<string, { plots: number; html: number; text: RegExp[] }> = {
  // overlays of PC_NB_SHOW=2 images + the class histogram; the splits table
  "01_unpack_dataset.ipynb": {
    plots: 3,
    html: 1,
    text: [/already unpacked|files written/, /read 4 of 4 training/],
  },
  // loss, lr, validation, contrast diagnostics; the live progress display
  "02_train.ipynb": { plots: 4, html: 1, text: [/done: 4 iterations/, /report: .*report\.html/] },
  // per-class IoU, confusion, 2 overlays; the metrics table (+ the fallback run's progress display)
  "03_validate.ipynb": { plots: 4, html: 2, text: [/training 4 iterations first/, /checkpoint: /] },
  // decoder PCA, projection PCA, decoder UMAP; two progress displays + the measures table
  "04_feature_space.ipynb": { plots: 3, html: 3, text: [/written: .*feature_space\.html/] },
};

Deno.test({
  name: "every notebook executes with the Deno kernel on the tiny config, with its figures and no error",
  ignore: pyProblem !== null && allowPySkip,
  async fn(t) {
    requireTools();
    await Deno.remove(join(ROOT, TINY_ENV.PC_NB_OUT), { recursive: true }).catch(() => {});
    await Deno.remove(EXECUTED, { recursive: true }).catch(() => {});
    // 03 before 02: its fallback (no checkpoint yet: a short run) is exercised too
    const order = [
      "01_unpack_dataset.ipynb",
      "03_validate.ipynb",
      "02_train.ipynb",
      "04_feature_space.ipynb",
    ];
    assertEquals([...order].sort(), [...NOTEBOOKS].sort());
    const timings: string[] = [];
    for (const name of order) {
      await t.step(name, async () => {
        const run = await execute(name);
        timings.push(`${name} ${run.seconds.toFixed(1)} s`);
        assert(run.ok, `${name} failed:\n${run.report?.failure ?? run.log.slice(-3000)}`);
        const nb: ExecutedNotebook = JSON.parse(await Deno.readTextFile(join(EXECUTED, name)));
        const outs = outputsOf(nb);
        assert(!outs.some((o) => o.output_type === "error"), `${name}: an error output`);
        const e = EXPECT[name];
        // display() sends every figure itself and waits for it to leave the kernel: none may be lost
        assertEquals(countPlotOutputs(nb), e.plots, `${name}: plot outputs`);
        const html = outs.filter((o) => o.data?.["text/html"] && !o.data["application/vnd.plotly.v1+json"]);
        assertEquals(html.length, e.html, `${name}: HTML outputs (tables, progress displays)`);
        const stray = outs.filter((o) => o.output_type === "execute_result");
        assertEquals(stray.map((o) => joinText(o.data?.["text/plain"])), [], `${name}: stray cell results`);
        const stdout = outs.filter((o) => o.output_type === "stream").map((o) => joinText(o.text)).join("");
        for (const re of e.text) assert(re.test(stdout), `${name}: printed output should match ${re}`);
        assert(
          / = .* \(from PC_NB_\w+\)/.test(stdout),
          `${name}: the settings cell reports its test overrides`,
        );
      });
    }
    // notebook 01's other settings line: the shipped real data instead of the synthetic set
    await t.step("01_unpack_dataset.ipynb with DATA=camvid", async () => {
      const out = join(EXECUTED, "camvid", "01_unpack_dataset.ipynb");
      const run = await executeNotebook(join(ROOT, "notebooks", "01_unpack_dataset.ipynb"), {
        out,
        env: { ...TINY_ENV, PC_NB_DATA: "camvid", PC_NB_CONFIG: "" },
        timeoutS: 300,
      });
      timings.push(`01 (camvid) ${run.seconds.toFixed(1)} s`);
      assert(run.ok, `01 with DATA=camvid failed:\n${run.report?.failure ?? run.log.slice(-3000)}`);
      const nb: ExecutedNotebook = JSON.parse(await Deno.readTextFile(out));
      const outs = outputsOf(nb);
      assert(!outs.some((o) => o.output_type === "error"), "01 (camvid): an error output");
      assertEquals(countPlotOutputs(nb), 3, "01 (camvid): two overlays and the class histogram");
      const stdout = outs.filter((o) => o.output_type === "stream").map((o) => joinText(o.text)).join("");
      for (
        const re of [
          /config: +configs\/camvid\/hrnet_w18_small_v1_contrast_camvid_224x160_2k\.yml/,
          /data\/camvid\.tar: SHA-256 [0-9a-f]{16}… matches .*data\/camvid\.tar\.sha256/,
          /read 4 of 367 training labels; 0 errors/,
        ]
      ) assert(re.test(stdout), `01 (camvid): printed output should match ${re}:\n${stdout}`);
    });
    console.log(`notebook run times (tiny config): ${timings.join(", ")}`);
    // the progress display was updated in place until the end (update_display_data applied by nbclient)
    const nb02: ExecutedNotebook = JSON.parse(await Deno.readTextFile(join(EXECUTED, "02_train.ipynb")));
    const progress = outputsOf(nb02).find((o) => joinText(o.data?.["text/plain"]).startsWith("train "));
    assert(progress, "02: the live progress display");
    assert(/train 4\/4 .* done/.test(joinText(progress!.data!["text/plain"])), "02: progress shows 4/4 done");
    assert(
      existsSync(join(ROOT, TINY_ENV.PC_NB_OUT, "04_feature_space", "feature_space.html")),
      "04 HTML file",
    );
  },
});

Deno.test({
  name:
    "executed notebooks show their plots in JupyterLab (headless Chromium): plotly extension and HTML paths",
  ignore: (!chromium && allowBrowserSkip) || (pyProblem !== null && allowPySkip),
  async fn() {
    requireTools();
    if (!chromium) throw new Error(`${chromiumHint(ROOT)}; or set PC_ALLOW_BROWSER_SKIP=1 to skip this test`);
    console.log(`browser: ${chromium.path} (${chromium.source})`);
    const executed: string[] = [];
    for (const name of NOTEBOOKS) {
      const run = await execute(name);
      assert(run.ok, `${name} did not execute:\n${run.report?.failure ?? run.log.slice(-2000)}`);
      executed.push(join(EXECUTED, name));
    }
    const outDir = join(ROOT, "tests", "out", "nb_check");
    const logs: string[] = [];
    const log = (l: string) => logs.push(l);
    // what a user sees opening an executed notebook: the jupyterlab-plotly renderer (no trust needed)
    const plotly = await browserCheck(executed, { renderer: "plotly", outDir, log });
    // without that extension: the figures' own HTML + inline plotly.js in a trusted notebook
    const html = await browserCheck([join(EXECUTED, "04_feature_space.ipynb")], {
      renderer: "html",
      outDir,
      log,
    });
    // and the check can fail: the HTML path in an untrusted notebook runs no script, so no plot appears
    const untrusted = await browserCheck([join(EXECUTED, "04_feature_space.ipynb")], {
      renderer: "html",
      trust: false,
      outDir: join(outDir, "untrusted"),
      timeoutS: 12,
      log,
    });
    console.log(logs.join("\n"));
    assert(!untrusted[0].ok && untrusted[0].rendered === 0, `untrusted HTML: ${untrusted[0].note}`);
    assert(
      untrusted[0].fallbacks === untrusted[0].expected,
      `the no-JavaScript text shows: ${untrusted[0].note}`,
    );
    for (const r of [...plotly, ...html]) {
      assert(r.expected > 0, `${r.notebook}: no plots expected?`);
      assert(r.ok, `not all plots rendered: ${r.note}`);
      assert(r.svgs >= r.expected, `${r.notebook}: ${r.svgs} svg.main-svg for ${r.expected} plots`);
      const png = await Deno.readFile(r.screenshot);
      assertEquals([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG", r.screenshot);
      assert(png.length > 20_000, `${r.screenshot}: ${png.length} bytes (blank page?)`);
    }
  },
});
