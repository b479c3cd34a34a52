/**
 * Executing a notebook headless with the project's Deno kernel: notebooks/tools/run_notebook.py (nbclient,
 * from the project's `.venv`) runs it and writes a JSON report; this module calls it and reads the report.
 * Also the tiny settings every notebook reads from PC_NB_* (`notebookSettings`) for tests and `nb:check`.
 */
import { join } from "node:path";
import { jupyterEnv, projectRoot, venvTool } from "./project.ts";

/**
 * The tiny settings every notebook reads from PC_NB_* (notebookSettings): the test config, a few
 * iterations, two images — seconds per notebook. `deno task nb:check` and the notebook tests use them.
 */
export function tinyNotebookEnv(out = "tests/out/notebooks/run"): Record<string, string> {
  return {
    PC_NB_CONFIG: "configs/tests/tiny_contrast_synthetic.yml",
    PC_NB_CONTRAST_CONFIG: "configs/tests/tiny_contrast_synthetic.yml",
    PC_NB_CE_CONFIG: "configs/tests/tiny_ce_synthetic.yml",
    PC_NB_ITERS: "4",
    PC_NB_TRAIN_ITERS: "4",
    PC_NB_OUT: out,
    // absent checkpoints: notebook 04 trains both models itself
    PC_NB_CONTRAST_MODEL: `${out}/absent`,
    PC_NB_CE_MODEL: `${out}/absent`,
    PC_NB_IMAGES: "2",
    PC_NB_PIXELS: "40",
    PC_NB_SHOW: "2",
    PC_NB_CHECK_SAMPLE: "4",
    PC_NB_UMAP: "1",
  };
}

export interface NotebookRun {
  ok: boolean;
  code: number;
  /** Executed copy (when `out` was given). */
  out?: string;
  /** run_notebook.py's JSON report (null if it wrote none). */
  report: RunReport | null;
  /** stdout + stderr of the runner. */
  log: string;
  seconds: number;
}

export interface RunReport {
  notebook: string;
  kernel: string;
  ok: boolean;
  failure: string | null;
  seconds: number;
  cells: Array<{
    index: number;
    first_line: string;
    seconds: number | null;
    outputs: Array<
      { output_type: string; mimetypes?: string[]; name?: string; ename?: string; evalue?: string }
    >;
  }>;
}

/**
 * Executes a notebook with the project's Deno kernel through nbclient (notebooks/tools/run_notebook.py).
 * `env` is added to the kernel's environment (e.g. PC_NB_CONFIG for a tiny config).
 */
export async function executeNotebook(
  notebook: string,
  o: { out?: string; report?: string; env?: Record<string, string>; trust?: boolean; timeoutS?: number } = {},
): Promise<NotebookRun> {
  const root = projectRoot();
  const python = venvTool("python", root);
  const tmp = o.report ? null : await Deno.makeTempDir({ prefix: "pc-nbrun-" });
  const report = o.report ?? join(tmp!, "report.json");
  const args = [join(root, "notebooks", "tools", "run_notebook.py"), notebook, "--report", report];
  if (o.out) args.push("--out", o.out);
  if (o.trust) args.push("--trust");
  if (o.timeoutS) args.push("--timeout", String(o.timeoutS));
  const t0 = performance.now();
  const r = await new Deno.Command(python, { args, cwd: root, env: jupyterEnv(o.env ?? {}, root) }).output();
  const dec = new TextDecoder();
  let parsed: RunReport | null = null;
  try {
    parsed = JSON.parse(await Deno.readTextFile(report));
  } catch {
    parsed = null;
  }
  if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
  return {
    ok: r.success,
    code: r.code,
    out: o.out,
    report: parsed,
    log: dec.decode(r.stdout) + dec.decode(r.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Outputs of an executed notebook that carry a plotly figure. */
export function countPlotOutputs(
  nb: { cells: Array<{ outputs?: Array<{ data?: Record<string, unknown> }> }> },
): number {
  let n = 0;
  for (const c of nb.cells) {
    for (const o of c.outputs ?? []) if (o.data?.["application/vnd.plotly.v1+json"]) n++;
  }
  return n;
}
