/**
 * `Figure`: a plain plotly `{data, layout, config}` object that also knows how to show itself.
 *
 * ## How a figure appears in JupyterLab 4 (and why it carries two renderings)
 *
 * Deno's Jupyter kernel calls `obj[Symbol.for("Jupyter.display")]()` on a cell's result (or on the
 * argument of `Deno.jupyter.display`) and sends the returned MIME bundle. A figure returns three keys;
 * JupyterLab shows exactly one of them, the highest-ranked one it has a renderer for:
 *
 * 1. `application/vnd.plotly.v1+json` — `{data, layout, config}`. Rendered only when a plotly MIME
 *    renderer extension is installed, e.g. `jupyterlab-plotly`, which the Python `plotly` package shipped
 *    up to 5.x (checked in the plotly 5.24.1 wheel: prebuilt labextension, plotly.js ^2.35.2 — the version
 *    we pin —, renderer factory `safe: true`, rank 0, @jupyterlab/rendermime-interfaces ^3 = Lab 4).
 *    A safe renderer draws in untrusted notebooks too: with it, a notebook executed elsewhere (nbclient)
 *    and opened later shows its plots without any trust step. It bundles its own plotly.js: offline.
 * 2. `text/html` — a `<div>` plus an inline `<script>` that draws with `window.Plotly`. JupyterLab picks it
 *    when no plotly extension is installed. Scripts in HTML outputs run only in TRUSTED outputs: outputs
 *    produced in the running session are trusted, so plots appear when a user runs the cells; outputs
 *    loaded from a saved notebook are trusted only if the notebook is signed (`jupyter trust X.ipynb`,
 *    which the notebook runner should do after executing with nbclient, or File ▸ Trust Notebook).
 *    Untrusted, the script is stripped and the `<div>` shows a short text that says so.
 *    No CDN: the plotly bundle is inlined, per {@link BundleMode}:
 *    - `"once"` (default in Jupyter): the first figure a kernel process displays carries the bundle
 *      (~4.6 MB, guarded by `if (!window.Plotly)`); later figures wait up to 60 s for `window.Plotly`.
 *      Keeps notebooks small; when an executed notebook is reopened, the first plot output (in document
 *      order) defines Plotly for the others. If that output is cleared and the page reloaded, the other
 *      outputs say so (re-run a plot cell); `show(fig, {displayId, update})` keeps the bundle in an
 *      updated output that carried it.
 *    - `"inline"`: every figure carries the bundle (each output self-sufficient; large notebooks).
 *    - `{url}`: load `<script src=url>` once when Plotly is missing (e.g. a same-origin file the Jupyter
 *      server serves); `"none"`: assume the page already has Plotly (standalone pages we write).
 *    Set with {@link setBundleMode} or the environment variable `PC_VIZ_BUNDLE=once|inline|none|<url>`.
 * 3. `text/plain` — a one-line description (terminals, `deno test`, text-only frontends).
 *
 * In notebooks prefer `await show(fig)` (display.ts) over ending a cell with `fig`: Deno's kernel can
 * report a cell idle before its result message has left, and frontends/nbclient then drop the output;
 * `show` sends the bundle itself and waits for it to go out.
 *
 * Recommended JupyterLab setup (wired by the notebook/lab tooling, not here): install a plotly renderer
 * extension for reopened executed notebooks, sign executed notebooks, and keep the HTML path for
 * plain JupyterLab installs. Either path renders offline.
 */
import type { PlotlyFigureSpec, PlotlyTrace } from "./types.ts";
import { plotlyInlineScript } from "./plotly_bundle.ts";

export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** How an HTML rendering gets plotly.js; see the module comment. */
export type BundleMode = "once" | "inline" | "none" | { url: string };

let bundleMode: BundleMode | null = null;
let bundleSent = false;

/**
 * Sets how HTML renderings for Jupyter get plotly.js; `null` restores the default (env `PC_VIZ_BUNDLE`,
 * else `"once"`). Also forgets whether the bundle was sent.
 */
export function setBundleMode(mode: BundleMode | null): void {
  bundleMode = mode;
  bundleSent = false;
}

/** The current mode for Jupyter displays. */
export function getBundleMode(): BundleMode {
  if (bundleMode) return bundleMode;
  let env: string | undefined;
  try {
    env = Deno.env.get("PC_VIZ_BUNDLE");
  } catch {
    env = undefined;
  }
  if (!env || env === "once") return "once";
  if (env === "inline" || env === "none") return env;
  if (/^(https?:|\/|\.)/.test(env) || env.startsWith("files/")) return { url: env };
  throw new Error(`PC_VIZ_BUNDLE must be once, inline, none or a URL/path, got '${env}'`);
}

/** Forgets that the bundle was already sent in "once" mode (a new page, e.g. a restarted frontend). */
export function resetBundleState(): void {
  bundleSent = false;
}

/** Default plotly config: responsive, no logo, no "edit in chart studio" (which would go online). */
export const DEFAULT_CONFIG: Record<string, unknown> = {
  responsive: true,
  displaylogo: false,
  showLink: false,
  toImageButtonOptions: { format: "png", scale: 2 },
};

export class Figure implements PlotlyFigureSpec {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
  config: Record<string, unknown>;

  constructor(spec: PlotlyFigureSpec) {
    if (!spec || !Array.isArray(spec.data)) throw new Error("Figure: spec.data must be an array of traces");
    for (const [i, t] of spec.data.entries()) {
      if (!t || typeof t.type !== "string") throw new Error(`Figure: trace ${i} has no string 'type'`);
    }
    this.data = plain(spec.data) as PlotlyTrace[];
    this.layout = plain(spec.layout ?? {}) as Record<string, unknown>;
    this.config = { ...DEFAULT_CONFIG, ...(plain(spec.config ?? {}) as Record<string, unknown>) };
  }

  /** The figure's title text ("" if none). */
  get title(): string {
    const t = this.layout.title;
    if (typeof t === "string") return t;
    if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") {
      return (t as { text: string }).text;
    }
    return "";
  }

  /** Height in pixels the figure asks for (layout.height, default 450). */
  get height(): number {
    return typeof this.layout.height === "number" ? this.layout.height : 450;
  }

  /** Plain JSON `{data, layout, config}` (what the plotly MIME renderer and `Plotly.newPlot` take). */
  toJSON(): PlotlyFigureSpec {
    return { data: this.data, layout: this.layout, config: this.config };
  }

  /** One line for text frontends, e.g. `Figure "Loss" (3 traces: scatter×3)`. */
  toString(): string {
    const counts = new Map<string, number>();
    for (const t of this.data) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
    const kinds = [...counts].map(([k, n]) => `${k}×${n}`).join(", ");
    return `Figure "${stripTags(this.title)}" (${this.data.length} traces: ${kinds || "none"})`;
  }

  /** An HTML fragment (div + script) drawing the figure; `bundle` says how plotly.js gets there. */
  toHTML(bundle: BundleMode = "none"): string {
    return figureHtml(this, bundle);
  }

  /** The Jupyter MIME bundle: plotly JSON, offline HTML fallback, plain text. */
  [JUPYTER_DISPLAY](): Record<string, unknown> {
    return figureMimeBundle(this);
  }
}

/**
 * The MIME bundle Deno's Jupyter kernel sends for a figure (see the module comment). `forceInline`
 * inlines plotly.js whatever the mode (used when an update replaces the output that carried it).
 */
export function figureMimeBundle(fig: Figure, opts: { forceInline?: boolean } = {}): Record<string, unknown> {
  let mode = getBundleMode();
  if (opts.forceInline) {
    mode = "inline";
    bundleSent = true;
  } else if (mode === "once") {
    mode = bundleSent ? "none" : "inline";
    bundleSent = true;
  }
  return {
    [PLOTLY_MIME]: plotlyMimeJson(fig),
    "text/html": figureHtml(fig, mode),
    "text/plain": fig.toString(),
  };
}

/**
 * The `application/vnd.plotly.v1+json` part: the figure without `config.responsive`. jupyterlab-plotly
 * resizes its plots itself (on widget resize); with `responsive` plotly.js sizes the plot to 100 % of the
 * renderer's node, which has no height of its own, and the plot collapsed to 0 px in JupyterLab
 * (seen by `deno task nb:check`). The HTML part keeps it: there the figure's div has a fixed height.
 */
export function plotlyMimeJson(fig: Figure): PlotlyFigureSpec {
  const { responsive: _drop, ...config } = fig.config;
  return { data: fig.data, layout: fig.layout, config };
}

let figureCounter = 0;

/**
 * HTML fragment for one figure. The script finds its div as `document.currentScript`'s previous sibling
 * (ids may collide when several kernels' outputs share a page), draws when `window.Plotly` exists, and
 * otherwise waits (a bundle in an earlier output or a `<script src>` may still be loading).
 */
export function figureHtml(fig: Figure, bundle: BundleMode): string {
  const id = `pcviz-${hash(JSON.stringify(fig.layout)).toString(36)}-${(figureCounter++).toString(36)}`;
  const spec = jsonForScript(fig.toJSON());
  const title = escapeHtml(stripTags(fig.title) || "plot");
  const fallback = `Interactive plot “${title}” (plotly). If this text stays, JavaScript did not run: ` +
    `in JupyterLab run the cell, or trust the notebook (File ▸ Trust Notebook), ` +
    `or install a plotly renderer extension.`;
  const waitMs = 60000;
  const loader = typeof bundle === "object"
    ? `if(!window.Plotly&&!window.__pcvizLoading){window.__pcvizLoading=1;var sc=document.createElement("script");` +
      `sc.src=${jsonForScript(bundle.url)};document.head.appendChild(sc);}`
    : "";
  const inline = bundle === "inline" ? plotlyInlineScript() + "\n" : "";
  return `<div id="${id}" class="pcviz-figure" style="width:100%;height:${fig.height}px;">` +
    `<div class="pcviz-fallback" style="padding:8px;color:#666;font:13px sans-serif;">${fallback}</div></div>\n` +
    `<script type="text/javascript">${inline}(function(){` +
    `var s=document.currentScript,el=s&&s.previousElementSibling;` +
    `if(!el||!el.classList||!el.classList.contains("pcviz-figure"))el=document.getElementById("${id}");` +
    `var spec=${spec};var t0=Date.now();${loader}` +
    `function draw(){el.innerHTML="";window.Plotly.newPlot(el,spec.data,spec.layout,spec.config);}` +
    `function wait(){if(window.Plotly)return draw();if(Date.now()-t0>=${waitMs}){` +
    `var f=el.querySelector(".pcviz-fallback");if(f)f.textContent="plotly.js is not loaded on this page: ` +
    `re-run the first plot cell, or set PC_VIZ_BUNDLE=inline.";return;}setTimeout(wait,100);}` +
    `wait();})();</script>`;
}

/** True when a figure's MIME bundle inlines plotly.js (its HTML defines `window.Plotly`). */
export function bundleCarriesPlotly(bundle: Record<string, unknown>): boolean {
  const html = bundle["text/html"];
  return typeof html === "string" && html.includes("if(!window.Plotly){(function(define,module,exports){");
}

/** JSON that is safe inside a `<script>` element (no `</script>`, no `<!--`). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(
    /\u2029/g,
    "\\u2029",
  );
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function stripTags(s: string): string {
  return s.replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim();
}

/** Deep copy into JSON-safe values: typed arrays -> arrays, non-finite numbers -> null. */
export function plain(v: unknown): unknown {
  if (v === null || v === undefined) return v;
  if (typeof v === "number") return Number.isFinite(v) ? v : null;
  if (typeof v !== "object") return v;
  if (ArrayBuffer.isView(v)) {
    return Array.from(v as unknown as ArrayLike<number>, (x) => (Number.isFinite(x) ? x : null));
  }
  if (Array.isArray(v)) return v.map(plain);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x !== undefined) out[k] = plain(x);
  }
  return out;
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}
