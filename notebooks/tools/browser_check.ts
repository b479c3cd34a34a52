/**
 * The browser check: executed notebooks opened in JupyterLab (jupyter_server.ts) in headless Chromium
 * (chromium.ts), driven by puppeteer-core; for each notebook it waits until every plot output holds
 * plotly's SVG (`svg.main-svg`) at a visible size and saves a full-length screenshot.
 *
 * Renderers: `plotly` = JupyterLab with the jupyterlab-plotly extension (Python plotly 5.24.1; draws the
 * application/vnd.plotly.v1+json part, also untrusted); `html` = the extension disabled, so the figures'
 * HTML part with its inline plotly.js has to run (trusted notebook).
 */
import { join, resolve } from "node:path";
import puppeteer, { type Page } from "puppeteer-core";
import { CHROMIUM_FLAGS, chromiumHint, findChromium } from "./chromium.ts";
import { startLabServer } from "./jupyter_server.ts";
import { projectRoot } from "./project.ts";
import { countPlotOutputs } from "./run_notebook.ts";

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Evaluates an expression in the page; rejects after `ms` (a busy or blocked page must not stall the check). */
async function evaluate<T>(page: Page, expression: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      page.evaluate(expression) as Promise<T>,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`page did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens the executed notebooks in JupyterLab in headless Chromium and checks that every plot rendered. */
export async function browserCheck(executed: string[], o: BrowserCheckOptions): Promise<PageResult[]> {
  const log = o.log ?? ((l: string) => console.error(l));
  const root = projectRoot();
  const chromium = findChromium(root);
  if (!chromium) throw new Error(chromiumHint(root));
  const lab = await startLabServer({
    notebooks: executed,
    trust: o.trust,
    withoutPlotlyExtension: o.renderer === "html",
  });
  const profile = await Deno.makeTempDir({ prefix: "pc-nbcheck-chrome-" });
  let browser: Awaited<ReturnType<typeof puppeteer.launch>> | null = null;
  try {
    log(`[nb:check] JupyterLab up on ${lab.base} (${lab.startSeconds.toFixed(1)} s), renderer ${o.renderer}`);
    browser = await puppeteer.launch({
      executablePath: chromium.path,
      env: { ...Deno.env.toObject(), ...chromium.env },
      headless: true,
      args: CHROMIUM_FLAGS,
      userDataDir: profile,
      defaultViewport: null,
    });
    const page = (await browser.pages())[0] ?? await browser.newPage();
    // JupyterLab asks before leaving a notebook with a running kernel: leave (the next notebook opens)
    page.on("dialog", (d) => void d.accept().catch(() => {}));
    const results: PageResult[] = [];
    for (const name of lab.names) {
      const nb = JSON.parse(await Deno.readTextFile(lab.path(name)));
      results.push(
        await checkPage(page, lab.url(name), {
          name,
          expected: countPlotOutputs(nb),
          renderer: o.renderer,
          timeoutS: o.timeoutS ?? 120,
          screenshot: join(o.outDir, `${name.replace(/\.ipynb$/, "")}_${o.renderer}.png`),
          log,
        }),
      );
    }
    return results;
  } finally {
    // the browser, then the server (which stops the kernels it started)
    await browser?.close().catch(() => {});
    await lab.close();
    await Deno.remove(profile, { recursive: true }).catch(() => {});
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

/** Height of the notebook's cells (the outer scroller adds JupyterLab's "scroll past end" space). */
const NOTEBOOK_HEIGHT = `(() => {
  const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  const sc = panel && (panel.querySelector(".jp-WindowedPanel-inner") || panel.querySelector(".jp-Notebook"));
  if (!sc) return 1600;
  const r = sc.getBoundingClientRect();
  return Math.ceil(r.top + r.height + 40);
})()`;

/** The chain of elements above the first plot's SVG with their sizes and layout styles (PC_NB_CHECK_DEBUG). */
const SVG_ANCESTORS = `(() => {
  const sv = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) svg.main-svg");
  const out = [];
  for (let e = sv; e && out.length < 14; e = e.parentElement) {
    const r = e.getBoundingClientRect(); const cs = getComputedStyle(e);
    out.push(e.tagName + "." + String(e.className.baseVal ?? e.className).slice(0, 60) + " " + Math.round(r.width) + "x" + Math.round(r.height) + " y=" + Math.round(r.top) + " disp=" + cs.display + " pos=" + cs.position + " cv=" + cs.contentVisibility + " ov=" + cs.overflow);
  }
  return out.join("\\n");
})()`;

type PlotState = { found: number; rendered: number; svgs: number; fallbacks: number; cells: number };

async function checkPage(
  page: Page,
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
  await page.setViewport({ width: 1280, height: 1600, deviceScaleFactor: 1 });
  // JupyterLab keeps loading after the document: the plots are polled for below, and a slow or failed
  // navigation shows there as plots not found
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: o.timeoutS * 1000 }).catch(() => null);
  let s: PlotState = { found: 0, rendered: 0, svgs: 0, fallbacks: 0, cells: 0 };
  let stableSince = 0;
  while ((performance.now() - t0) / 1000 < o.timeoutS) {
    await sleep(500);
    try {
      s = await evaluate<PlotState>(page, PLOT_STATE);
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
  const height = await evaluate<number>(page, NOTEBOOK_HEIGHT).catch(() => 1600);
  const h = Math.max(800, Math.min(16000, height));
  await page.setViewport({ width: 1280, height: h, deviceScaleFactor: 1 });
  await sleep(1500);
  s = await evaluate<PlotState>(page, PLOT_STATE).catch(() => s);
  await Deno.mkdir(resolve(o.screenshot, ".."), { recursive: true });
  await Deno.writeFile(o.screenshot, await page.screenshot({ type: "png", captureBeyondViewport: false }));
  const ok = o.expected > 0 && s.found === o.expected && s.rendered === o.expected && s.fallbacks === 0;
  const seconds = (performance.now() - t0) / 1000;
  const note =
    `${o.name} [${o.renderer}]: ${s.rendered}/${o.expected} plot outputs rendered (${s.svgs} svg.main-svg, ` +
    `${s.found} found, ${s.fallbacks} showing the no-JavaScript text) in ${seconds.toFixed(1)} s; ` +
    `screenshot ${o.screenshot} (1280x${h})`;
  o.log(`[nb:check] ${ok ? "ok" : "FAILED"}: ${note}`);
  if (Deno.env.get("PC_NB_CHECK_DEBUG")) {
    o.log(JSON.stringify(s));
    o.log(await evaluate<string>(page, SVG_ANCESTORS));
  }
  return {
    notebook: o.name,
    renderer: o.renderer,
    expected: o.expected,
    found: s.found,
    rendered: s.rendered,
    svgs: s.svgs,
    fallbacks: s.fallbacks,
    screenshot: o.screenshot,
    ok,
    seconds,
    note,
  };
}
