/**
 * `deno task nb:check [NOTEBOOK ...] [--executed] [--renderer plotly|html|both] [--out_dir D]
 *                     [--timeout S] [--env K=V ...]`
 *
 * Checks in a real browser that an executed notebook shows its plots in JupyterLab:
 *   1. executes each notebook headless with the project's Deno kernel (notebooks/tools/run_notebook.py,
 *      nbclient), unless `--executed` says the given files already are executed copies;
 *   2. signs (trusts) the executed copies in a private Jupyter data folder;
 *   3. starts JupyterLab headless on 127.0.0.1 (free port, random token, private config/data/runtime and
 *      settings folders: nothing in the user's home), with the notebook windowing off so every cell renders;
 *   4. opens each notebook in headless Chromium (Chrome DevTools protocol over a WebSocket), waits
 *      until every plot output holds plotly's SVG (`svg.main-svg`), and saves a full-length screenshot;
 *   5. shuts everything down.
 * Renderers: `plotly` = JupyterLab with the jupyterlab-plotly extension (Python plotly 5.24.1; draws the
 * application/vnd.plotly.v1+json part, also untrusted); `html` = the extension disabled, so the figures'
 * HTML part with its inline plotly.js has to run (trusted notebook). `both` (default) checks both paths.
 *
 * Default notebook: notebooks/04_feature_space.ipynb, executed on the tiny test settings
 * ({@link tinyNotebookEnv}; `--full` keeps the notebooks' own). Exit 0 when every plot rendered, else 1.
 * Chromium: $PC_CHROMIUM, else the project-local one of the set-up step `browser`, else /usr/bin/chromium
 * (lib/cli/chromium.ts).
 */
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromiumHint, findChromium } from "./chromium.ts";
import { jupyterEnv, projectRoot, venvTool } from "./lab.ts";

export { chromiumHint, findChromium } from "./chromium.ts";

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

export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-dev-shm-usage",
  "--hide-scrollbars",
  "--mute-audio",
];

// ---------------------------------------------------------------------------------------------------
// executing notebooks

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

// ---------------------------------------------------------------------------------------------------
// a small Chrome DevTools protocol client

class Cdp {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, { res: (v: Record<string, unknown>) => void; rej: (e: Error) => void }>();
  readonly events: Array<{ method: string; params: Record<string, unknown> }> = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data));
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.rej(new Error(`CDP: ${msg.error.message}`));
        else p?.res(msg.result ?? {});
      } else if (msg.method) {
        this.events.push({ method: msg.method, params: msg.params ?? {} });
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.rej(new Error("CDP: connection closed"));
      this.#pending.clear();
    };
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((res, rej) => {
      const ws = new WebSocket(url);
      ws.onopen = () => res(new Cdp(ws));
      ws.onerror = () => rej(new Error(`CDP: cannot connect to ${url}`));
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((res, rej) => {
      this.#pending.set(id, { res, rej });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates an expression in the page and returns its JSON value. */
  async eval<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`page: ${JSON.stringify(r.exceptionDetails).slice(0, 400)}`);
    return (r.result as { value: T }).value;
  }

  close(): void {
    try {
      this.#ws.close();
    } catch { /* closed */ }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Reads a child's stream into `sink` (kept for error messages), resolving `match` on the first hit. */
function pump(
  stream: ReadableStream<Uint8Array>,
  sink: string[],
  match?: { re: RegExp; hit: (m: RegExpMatchArray) => void },
) {
  return (async () => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        sink.push(line);
        if (sink.length > 200) sink.shift();
        const m = match && line.match(match.re);
        if (m) match!.hit(m);
      }
    }
  })().catch(() => {});
}

// ---------------------------------------------------------------------------------------------------
// the browser check

export type Renderer = "plotly" | "html";

export interface PageResult {
  notebook: string;
  renderer: Renderer;
  /** Plot outputs in the executed notebook. */
  expected: number;
  /** Plot outputs found in the page, and those that hold a plotly SVG. */
  found: number;
  rendered: number;
  /** `svg.main-svg` elements in plot outputs. */
  svgs: number;
  /** Output areas still showing our "JavaScript did not run" fallback text. */
  fallbacks: number;
  screenshot: string;
  ok: boolean;
  seconds: number;
  note: string;
}

export interface BrowserCheckOptions {
  renderer: Renderer;
  /** Folder for the screenshots (`<notebook stem>_<renderer>.png`). */
  outDir: string;
  /** Seconds to wait for the plots of one notebook (default 120). */
  timeoutS?: number;
  /** Sign the notebooks so that JupyterLab trusts them (default true; false shows what untrusted users get). */
  trust?: boolean;
  log?: (line: string) => void;
}

/** Runs steps 2-5 of the module comment for already executed notebooks. */
export async function browserCheck(executed: string[], o: BrowserCheckOptions): Promise<PageResult[]> {
  const log = o.log ?? ((l: string) => console.error(l));
  const root = projectRoot();
  const chromium = findChromium(root);
  if (!chromium) throw new Error(chromiumHint(root));
  const jupyter = venvTool("jupyter", root);
  const tmp = await Deno.makeTempDir({ prefix: "pc-nbcheck-" });
  const dirs = Object.fromEntries(
    ["work", "config", "data", "runtime", "settings", "workspaces", "chrome"].map((d) => [d, join(tmp, d)]),
  );
  for (const d of Object.values(dirs)) await Deno.mkdir(d, { recursive: true });
  const env = jupyterEnv({
    JUPYTER_CONFIG_DIR: dirs.config,
    JUPYTER_DATA_DIR: dirs.data,
    JUPYTER_RUNTIME_DIR: dirs.runtime,
  }, root);
  const children: Deno.ChildProcess[] = [];
  let cdp: Cdp | null = null;
  let port = 0;
  const token = crypto.randomUUID().replaceAll("-", "");
  try {
    // 2. the notebooks to open, signed in the private data folder
    const names: string[] = [];
    for (const nb of executed) {
      const name = basename(nb);
      await Deno.copyFile(nb, join(dirs.work, name));
      if (o.trust ?? true) {
        const t = await new Deno.Command(jupyter, { args: ["trust", join(dirs.work, name)], env }).output();
        if (!t.success) {
          throw new Error(`jupyter trust ${name} failed: ${new TextDecoder().decode(t.stderr)}`);
        }
      }
      names.push(name);
    }
    // 3. JupyterLab: no announcements pop-up; for "html", no plotly extension; every cell rendered
    const disabled: Record<string, boolean> = { "@jupyterlab/apputils-extension:announcements": true };
    if (o.renderer === "html") {
      // the package, and its MIME renderer plugin (whose id names another package)
      disabled["jupyterlab-plotly"] = true;
      disabled["@jupyterlab/plotly-extension:factory"] = true;
    }
    await Deno.mkdir(join(dirs.config, "labconfig"), { recursive: true });
    await Deno.writeTextFile(
      join(dirs.config, "labconfig", "page_config.json"),
      JSON.stringify({ disabledExtensions: disabled }),
    );
    await Deno.mkdir(join(dirs.settings, "@jupyterlab", "notebook-extension"), { recursive: true });
    await Deno.writeTextFile(
      join(dirs.settings, "@jupyterlab", "notebook-extension", "tracker.jupyterlab-settings"),
      JSON.stringify({ windowingMode: "none" }),
    );
    port = freePort();
    const labLog: string[] = [];
    const lab = new Deno.Command(jupyter, {
      args: [
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        `--ServerApp.port=${port}`,
        "--ServerApp.port_retries=0",
        `--IdentityProvider.token=${token}`,
        `--ServerApp.root_dir=${dirs.work}`,
        `--LabApp.user_settings_dir=${dirs.settings}`,
        `--LabApp.workspaces_dir=${dirs.workspaces}`,
        "--LabApp.news_url=",
        ...(Deno.uid() === 0 ? ["--allow-root"] : []),
      ],
      cwd: dirs.work,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    children.push(lab);
    pump(lab.stdout, labLog);
    pump(lab.stderr, labLog);
    const base = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    let labExit: number | null = null;
    lab.status.then((st) => (labExit = st.code));
    for (;;) {
      if (labExit !== null) {
        throw new Error(`JupyterLab exited (code ${labExit}):\n${labLog.slice(-30).join("\n")}`);
      }
      const ok = await fetch(`${base}/api/status?token=${token}`).then((r) => {
        r.body?.cancel();
        return r.ok;
      }, () => false);
      if (ok) break;
      if (performance.now() - t0 > 60_000) {
        throw new Error(`JupyterLab did not answer on ${base} within 60 s:\n${labLog.slice(-30).join("\n")}`);
      }
      await sleep(250);
    }
    log(
      `[nb:check] JupyterLab up on ${base} (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s), renderer ${o.renderer}`,
    );

    // 4. Chromium through the DevTools protocol
    const chromeLog: string[] = [];
    let wsUrl = "";
    const browser = new Deno.Command(chromium.path, {
      env: chromium.env,
      args: [
        ...CHROMIUM_FLAGS,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        `--user-data-dir=${dirs.chrome}`,
        "--window-size=1280,1600",
        "about:blank",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    children.push(browser);
    pump(browser.stdout, chromeLog);
    pump(browser.stderr, chromeLog, { re: /DevTools listening on (ws:\/\/\S+)/, hit: (m) => (wsUrl = m[1]) });
    const t1 = performance.now();
    while (!wsUrl) {
      if (performance.now() - t1 > 30_000) {
        throw new Error(`Chromium did not start its DevTools endpoint:\n${chromeLog.slice(-20).join("\n")}`);
      }
      await sleep(100);
    }
    const debugBase = wsUrl.replace(/^ws:\/\/([^/]+)\/.*$/, "http://$1");
    const targets = await (await fetch(`${debugBase}/json/list`)).json() as Array<
      { type: string; webSocketDebuggerUrl: string }
    >;
    const page = targets.find((t) => t.type === "page");
    if (!page) throw new Error("Chromium has no page target");
    cdp = await Cdp.connect(page.webSocketDebuggerUrl);
    await cdp.send("Page.enable");
    await cdp.send("Runtime.enable");

    const results: PageResult[] = [];
    for (const name of names) {
      const nb = JSON.parse(await Deno.readTextFile(join(dirs.work, name)));
      const expected = countPlotOutputs(nb);
      results.push(
        await checkPage(cdp, `${base}/lab/tree/${encodeURIComponent(name)}?reset&token=${token}`, {
          name,
          expected,
          renderer: o.renderer,
          timeoutS: o.timeoutS ?? 120,
          screenshot: join(o.outDir, `${name.replace(/\.ipynb$/, "")}_${o.renderer}.png`),
          log,
        }),
      );
    }
    return results;
  } finally {
    // 5. shut down: the browser, then the server (which stops the kernels it started)
    try {
      await cdp?.send("Browser.close").catch(() => {});
    } finally {
      cdp?.close();
    }
    if (port) {
      await fetch(`http://127.0.0.1:${port}/api/shutdown?token=${token}`, { method: "POST" })
        .then((r) => r.body?.cancel(), () => {});
    }
    for (const c of children.reverse()) {
      const done = await Promise.race([c.status.then(() => true), sleep(10_000).then(() => false)]);
      if (!done) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
      }
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** What the page says about its plot outputs (evaluated in the page). */
const PLOT_STATE = `(() => {
  const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  if (!panel) return { found: 0, rendered: 0, svgs: 0, fallbacks: 0, cells: 0 };
  const outs = [...panel.querySelectorAll(".jp-OutputArea-output")];
  const plots = outs.filter((o) => o.querySelector(".jp-RenderedPlotly, .pcviz-figure") ||
    o.classList.contains("jp-RenderedPlotly"));
  const visible = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 50 && r.height > 50;
  };
  const withSvg = plots.filter((o) => [...o.querySelectorAll("svg.main-svg")].some(visible));
  const sizes = plots.map((o) => {
    const r = o.getBoundingClientRect();
    const sv = o.querySelector("svg.main-svg");
    const q = sv ? sv.getBoundingClientRect() : null;
    return [Math.round(r.width), Math.round(r.height), q ? Math.round(q.width) : -1, q ? Math.round(q.height) : -1];
  });
  const svgs = plots.reduce((n, o) => n + o.querySelectorAll("svg.main-svg").length, 0);
  const fallbacks = plots.filter((o) => {
    const f = o.querySelector(".pcviz-fallback");
    return f && f.offsetParent !== null;
  }).length;
  const cells = panel.querySelectorAll(".jp-Cell").length;
  return { found: plots.length, rendered: withSvg.length, svgs, fallbacks, cells, sizes };
})()`;

async function checkPage(
  cdp: Cdp,
  url: string,
  o: {
    name: string;
    expected: number;
    renderer: Renderer;
    timeoutS: number;
    screenshot: string;
    log: (l: string) => void;
  },
): Promise<PageResult> {
  const t0 = performance.now();
  await cdp.send("Emulation.setDeviceMetricsOverride", {
    width: 1280,
    height: 1600,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await cdp.send("Page.navigate", { url });
  type State = { found: number; rendered: number; svgs: number; fallbacks: number; cells: number };
  let s: State = { found: 0, rendered: 0, svgs: 0, fallbacks: 0, cells: 0 };
  let stableSince = 0;
  while ((performance.now() - t0) / 1000 < o.timeoutS) {
    await sleep(500);
    try {
      s = await cdp.eval<State>(PLOT_STATE);
    } catch {
      continue; // page still loading
    }
    const done = s.cells > 0 && s.found >= o.expected && s.rendered >= o.expected;
    if (done) {
      // wait a little longer, for late layout passes
      if (!stableSince) stableSince = performance.now();
      if (performance.now() - stableSince > 1500) break;
    } else {
      stableSince = 0;
    }
  }
  // full-length screenshot: grow the viewport to the notebook's height (JupyterLab scrolls inside a panel)
  const height = await cdp.eval<number>(`(() => {
    const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
    // the cells' own height (the outer scroller adds JupyterLab's "scroll past end" space)
    const sc = panel && (panel.querySelector(".jp-WindowedPanel-inner") || panel.querySelector(".jp-Notebook"));
    if (!sc) return 1600;
    const r = sc.getBoundingClientRect();
    return Math.ceil(r.top + r.height + 40);
  })()`).catch(() => 1600);
  const h = Math.max(800, Math.min(16000, height));
  await cdp.send("Emulation.setDeviceMetricsOverride", {
    width: 1280,
    height: h,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await sleep(1500);
  s = await cdp.eval<State>(PLOT_STATE).catch(() => s);
  const shot = await cdp.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: false });
  await Deno.mkdir(resolve(o.screenshot, ".."), { recursive: true });
  await Deno.writeFile(o.screenshot, Uint8Array.from(atob(shot.data as string), (c) => c.charCodeAt(0)));
  const ok = o.expected > 0 && s.found === o.expected && s.rendered === o.expected && s.fallbacks === 0;
  const seconds = (performance.now() - t0) / 1000;
  const note =
    `${o.name} [${o.renderer}]: ${s.rendered}/${o.expected} plot outputs rendered (${s.svgs} svg.main-svg, ` +
    `${s.found} found, ${s.fallbacks} showing the no-JavaScript text) in ${seconds.toFixed(1)} s; ` +
    `screenshot ${o.screenshot} (1280x${h})`;
  o.log(`[nb:check] ${ok ? "ok" : "FAILED"}: ${note}`);
  if (Deno.env.get("PC_NB_CHECK_DEBUG")) {
    o.log(JSON.stringify(s));
    o.log(
      await cdp.eval<string>(`(() => {
      const sv = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) svg.main-svg");
      const out = [];
      for (let e = sv; e && out.length < 14; e = e.parentElement) {
        const r = e.getBoundingClientRect(); const cs = getComputedStyle(e);
        out.push(e.tagName + "." + String(e.className.baseVal ?? e.className).slice(0, 60) + " " + Math.round(r.width) + "x" + Math.round(r.height) + " y=" + Math.round(r.top) + " disp=" + cs.display + " pos=" + cs.position + " cv=" + cs.contentVisibility + " ov=" + cs.overflow);
      }
      return out.join("\\n");
    })()`),
    );
  }
  return {
    notebook: o.name,
    renderer: o.renderer,
    expected: o.expected,
    ...s,
    screenshot: o.screenshot,
    ok,
    seconds,
    note,
  };
}

// ---------------------------------------------------------------------------------------------------
// CLI

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
      "usage: deno task nb:check [NOTEBOOK ...] [--executed] [--renderer plotly|html|both] [--out_dir D]\n" +
        "                          [--timeout S] [--full] [--env KEY=VALUE ...]\n\n" +
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
      throw new Error(`--renderer must be plotly, html or both, got '${values.renderer}'`);
    })();
  const root = projectRoot();
  if (!findChromium(root)) throw new Error(chromiumHint(root));
  const notebooks = positionals.length ? positionals : [join(root, "notebooks", "04_feature_space.ipynb")];
  const env: Record<string, string> = values.full ? {} : tinyNotebookEnv("tests/out/nb_check/run");
  for (const kv of values.env as string[]) {
    const i = kv.indexOf("=");
    if (i < 1) throw new Error(`--env expects KEY=VALUE, got '${kv}'`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const outDir = values.out_dir!;
  await Deno.mkdir(outDir, { recursive: true });
  const executed: string[] = [];
  for (const nb of notebooks) {
    if (!existsSync(nb)) throw new Error(`no such notebook: ${nb}`);
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
    const results = await browserCheck(executed, { renderer, outDir, timeoutS: Number(values.timeout) });
    ok &&= results.every((r) => r.ok);
  }
  console.error(ok ? "[nb:check] all plots rendered" : "[nb:check] some plots did not render");
  return ok ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
