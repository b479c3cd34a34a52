/**
 * `deno task nb:check [NOTEBOOK ...] [--executed] [--renderer plotly|html|both] [--out_dir D]
 *                     [--timeout S] [--full] [--env K=V ...]`
 *
 * Checks in a real browser that an executed notebook shows its plots in JupyterLab:
 *   1. executes each notebook headless with the project's Deno kernel (run_notebook.ts ->
 *      run_notebook.py, nbclient), unless `--executed` says the given files already are executed copies;
 *   2. starts a private headless JupyterLab with the executed copies, signed (jupyter_server.ts);
 *   3. opens each notebook in headless Chromium (puppeteer-core), waits until every plot output holds
 *      plotly's SVG and saves a full-length screenshot (browser_check.ts);
 *   4. shuts everything down.
 * `--renderer both` (default) checks the jupyterlab-plotly path and the figures' own HTML path.
 *
 * Default notebook: notebooks/04_feature_space.ipynb, executed on the tiny test settings
 * ({@link tinyNotebookEnv}; `--full` keeps the notebooks' own). Exit 0 when every plot rendered, else 1
 * (2 for a wrong command line; lib/cli/common.ts). Chromium: $PC_CHROMIUM, else the project-local one of
 * the set-up step `browser`, else /usr/bin/chromium (chromium.ts).
 */
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { runCli, UsageError } from "../../lib/cli/common.ts";
import { browserCheck, type Renderer } from "./browser_check.ts";
import { chromiumHint, findChromium } from "./chromium.ts";
import { projectRoot } from "./project.ts";
import { executeNotebook, tinyNotebookEnv } from "./run_notebook.ts";

const USAGE =
  "usage: deno task nb:check [NOTEBOOK ...] [--executed] [--renderer plotly|html|both] [--out_dir D]\n" +
  "                          [--timeout S] [--full] [--env KEY=VALUE ...]";

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      executed: { type: "boolean", default: false },
      renderer: { type: "string", default: "both" },
      out_dir: { type: "string", default: "tests/out/nb_check" },
      timeout: { type: "string", default: "120" },
      env: { type: "string", multiple: true, default: [] },
      full: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      `${USAGE}\n\n` +
        "Executes the notebooks (default notebooks/04_feature_space.ipynb; --executed: they already are),\n" +
        "opens them in JupyterLab in headless Chromium and checks that every plot rendered; screenshots go\n" +
        "to --out_dir (default tests/out/nb_check). The notebooks run on the tiny test settings (PC_NB_*\n" +
        "variables: a tiny config, 4 iterations) unless --full; --env KEY=VALUE sets more.",
    );
    return 0;
  }
  const renderers: Renderer[] = values.renderer === "both"
    ? ["plotly", "html"]
    : values.renderer === "plotly" || values.renderer === "html"
    ? [values.renderer]
    : (() => {
      throw new UsageError(`--renderer must be plotly, html or both, got '${values.renderer}'`);
    })();
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0)) {
    throw new UsageError(`--timeout must be a positive number of seconds, got '${values.timeout}'`);
  }
  const root = projectRoot();
  if (!findChromium(root)) throw new Error(chromiumHint(root));
  const notebooks = positionals.length ? positionals : [join(root, "notebooks", "04_feature_space.ipynb")];
  const env: Record<string, string> = values.full ? {} : tinyNotebookEnv("tests/out/nb_check/run");
  for (const kv of values.env as string[]) {
    const i = kv.indexOf("=");
    if (i < 1) throw new UsageError(`--env expects KEY=VALUE, got '${kv}'`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  for (const nb of notebooks) if (!existsSync(nb)) throw new UsageError(`no such notebook: ${nb}`);
  const outDir = values.out_dir!;
  await Deno.mkdir(outDir, { recursive: true });
  const executed: string[] = [];
  for (const nb of notebooks) {
    if (values.executed) {
      executed.push(nb);
      continue;
    }
    const out = join(outDir, basename(nb));
    console.error(`[nb:check] executing ${nb} ...`);
    const run = await executeNotebook(nb, { out, env });
    if (!run.ok) {
      console.error(run.log);
      throw new Error(`${nb} failed to execute (see above)`);
    }
    console.error(`[nb:check] executed in ${run.seconds.toFixed(1)} s -> ${out}`);
    executed.push(out);
  }
  let ok = true;
  for (const renderer of renderers) {
    const results = await browserCheck(executed, { renderer, outDir, timeoutS });
    ok &&= results.every((r) => r.ok);
  }
  console.error(ok ? "[nb:check] all plots rendered" : "[nb:check] some plots did not render");
  return ok ? 0 : 1;
}

if (import.meta.main) await runCli(main);
