/**
 * Jupyter display helpers that degrade gracefully: the same code runs in Deno's Jupyter kernel (rich,
 * in-place outputs) and under `deno run` / `deno test` (plain lines on stderr, or nothing).
 *
 * Deno's kernel API (Deno ≥ 1.37; checked against 2.9): `Deno.jupyter.display(obj, {raw, display_id,
 * update})` sends a `display_data` message — or `update_display_data` with `update: true`, which replaces
 * every earlier output carrying the same `display_id` in place. Outside the kernel, touching
 * `Deno.jupyter` throws, so {@link inJupyter} probes it inside try/catch.
 */
import { bundleCarriesPlotly, escapeHtml, Figure, figureMimeBundle, JUPYTER_DISPLAY } from "./figure.ts";
import { formatDuration, Progress } from "../util/progress.ts";

/** The part of `Deno.jupyter` used here. */
export interface JupyterApi {
  display(obj: unknown, options?: { raw?: boolean; update?: boolean; display_id?: string }): Promise<void>;
}

let apiOverride: JupyterApi | null = null;

/**
 * Test hook: routes displays to `api` as if running in the kernel (`Deno.jupyter` itself cannot be
 * replaced); `null` restores the real probe.
 */
export function setJupyterApiForTesting(api: JupyterApi | null): void {
  apiOverride = api;
}

function jupyterApi(): JupyterApi | null {
  if (apiOverride) return apiOverride;
  try {
    // deno-lint-ignore no-explicit-any
    const j = (Deno as any).jupyter;
    return j && typeof j.display === "function" ? j as JupyterApi : null;
  } catch {
    return null; // "Deno.jupyter is only available in `deno jupyter` subcommand"
  }
}

/** True inside Deno's Jupyter kernel. */
export function inJupyter(): boolean {
  return jupyterApi() !== null;
}

/** Display ids whose output carries the inlined plotly.js ("once" mode): their updates must keep it. */
const plotlyCarriers = new Set<string>();

/**
 * Shows an object (anything with a `Symbol.for("Jupyter.display")` method, or a raw MIME bundle with
 * `raw: true`) as a new output, or updates the output with `displayId` when `update` is set — e.g. a
 * loss curve redrawn in place during training:
 *
 *   await show(lossCurves(records), { displayId: "loss", update: shownOnce });
 *
 * Outside Jupyter it does nothing and returns false (pass `printFallback` to print its text/plain).
 */
export async function show(
  obj: unknown,
  opts: { displayId?: string; update?: boolean; raw?: boolean; printFallback?: boolean } = {},
): Promise<boolean> {
  const api = jupyterApi();
  if (!api) {
    if (opts.printFallback) console.log(plainText(obj));
    return false;
  }
  const id = opts.displayId;
  let payload = obj, raw = opts.raw ?? false;
  if (obj instanceof Figure) {
    // An update replaces the output's data in the saved notebook: if this output was the one that
    // carried plotly.js, the replacement must carry it too, or a reopened notebook has none.
    const bundle = figureMimeBundle(obj, { forceInline: id !== undefined && plotlyCarriers.has(id) });
    if (id !== undefined && bundleCarriesPlotly(bundle)) plotlyCarriers.add(id);
    payload = bundle;
    raw = true;
  } else if (!raw && obj && typeof obj === "object" && JUPYTER_DISPLAY in obj) {
    payload = await (obj as { [JUPYTER_DISPLAY]: () => unknown })[JUPYTER_DISPLAY]();
    raw = true;
  }
  await api.display(payload, { raw, update: opts.update ?? false, display_id: id });
  // Deno's kernel queues the message and may report the cell idle before it has left; a frontend (or
  // nbclient) then drops it as late. Pausing, longer for larger messages, lets it go out first
  // (Deno 2.9.6 + nbclient 0.11: 0/90 small and 0/32 bundle-carrying displays lost with the pause;
  // 5/30 and 5/16 without; cells that END with a figure expression lost 8/90 — prefer `await show()`).
  await new Promise((r) => setTimeout(r, flushMs(payload)));
  return true;
}

/** Pause after a Jupyter display: 50 ms plus 1 ms per 10 kB of text (≈ 0.5 s for the plotly bundle). */
export function flushMs(bundle: unknown): number {
  let chars = 0;
  if (bundle && typeof bundle === "object") {
    for (const v of Object.values(bundle)) chars += typeof v === "string" ? v.length : 0;
  }
  return DISPLAY_FLUSH_MS + Math.ceil(chars / 10_000);
}

/** Pause after each Jupyter display (see {@link show}). */
export const DISPLAY_FLUSH_MS = 50;

function plainText(obj: unknown): string {
  if (obj && typeof obj === "object" && JUPYTER_DISPLAY in obj) {
    const b = (obj as { [JUPYTER_DISPLAY]: () => Record<string, unknown> })[JUPYTER_DISPLAY]();
    if (typeof b["text/plain"] === "string") return b["text/plain"];
  }
  return String(obj);
}

let progressCounter = 0;

export interface LiveProgressOptions {
  /** Total iterations (0 = unknown). */
  total: number;
  label?: string;
  /** Minimum seconds between redraws in Jupyter (updates in between are merged). Default 0.5. */
  every?: number;
  /** Loss values kept for the sparkline. Default 300. */
  history?: number;
  /** Fallback writer outside Jupyter (default: lib/util/progress.ts on stderr). */
  write?: (line: string, inPlace: boolean) => void;
  /** Force the Jupyter path on or off (tests). */
  jupyter?: boolean;
}

type ResolvedOptions = Required<Omit<LiveProgressOptions, "write" | "jupyter">>;

/** Fields shown beside the bar; numbers are formatted, `lr` in exponent notation. */
export type ProgressFields = Record<string, number | string | null | undefined>;

/**
 * A training progress display: in Jupyter one output updated in place (bar, it/s, ETA, the fields,
 * a loss sparkline as inline SVG — no scripts, so it also shows in untrusted notebooks); elsewhere the
 * terminal progress bar of lib/util/progress.ts. `update` never throws and never blocks the caller.
 */
export class LiveProgress {
  readonly displayId: string;
  #opts: ResolvedOptions;
  #progress: Progress;
  #jupyter: boolean;
  #iter = 0;
  #fields: ProgressFields = {};
  #losses: number[] = [];
  #shown = false;
  #lastDraw = -Infinity;
  #chain: Promise<void> = Promise.resolve();
  #finished = false;

  constructor(opts: LiveProgressOptions) {
    this.#opts = {
      total: opts.total,
      label: opts.label ?? "train",
      every: opts.every ?? 0.5,
      history: opts.history ?? 300,
    };
    this.#jupyter = opts.jupyter ?? inJupyter();
    this.displayId = `pc-progress-${Date.now().toString(36)}-${(progressCounter++).toString(36)}`;
    this.#progress = new Progress({
      total: opts.total,
      label: this.#opts.label,
      ...(this.#jupyter ? { write: () => {}, tty: false } : opts.write ? { write: opts.write } : {}),
    });
  }

  /** Records iteration `iter` (absolute) with its fields; redraws when due. */
  update(iter: number, fields: ProgressFields = {}): void {
    this.#iter = iter;
    this.#fields = { ...this.#fields, ...fields };
    const loss = fields.loss;
    if (typeof loss === "number" && Number.isFinite(loss)) {
      this.#losses.push(loss);
      if (this.#losses.length > this.#opts.history) {
        // Keep every other point: a long run still fits, with its whole shape.
        this.#losses = this.#losses.filter((_, i) => i % 2 === 1);
      }
    }
    if (!this.#jupyter) {
      this.#progress.update(iter, this.fieldText());
      return;
    }
    this.#progress.update(iter);
    const now = performance.now() / 1000;
    if (now - this.#lastDraw < this.#opts.every && iter !== this.#opts.total) return;
    this.#lastDraw = now;
    this.#draw();
  }

  /** Resets the rate clock (after warm-up or a resume). */
  restartClock(): void {
    this.#progress.restartClock(this.#iter);
  }

  /** Final redraw; resolves when every pending Jupyter message was sent. */
  async finish(fields: ProgressFields = {}): Promise<void> {
    if (this.#finished) return;
    this.#fields = { ...this.#fields, ...fields };
    this.#finished = true;
    if (this.#jupyter) {
      this.#draw();
      await this.#chain;
    } else {
      this.#progress.finish(this.fieldText());
    }
  }

  #draw(): void {
    const bundle = this[JUPYTER_DISPLAY]();
    const update = this.#shown;
    this.#shown = true;
    this.#chain = this.#chain.then(() =>
      show(bundle, { raw: true, displayId: this.displayId, update }).then(() => {}, () => {})
    );
  }

  /** "loss 0.5312  lr 9.90e-3" */
  fieldText(): string {
    return Object.entries(this.#fields)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k} ${formatField(k, v as number | string)}`)
      .join("  ");
  }

  /** Current state as a MIME bundle (HTML bar + sparkline, plain line). */
  [JUPYTER_DISPLAY](): Record<string, string> {
    const { total, label } = this.#opts;
    const frac = total > 0 ? Math.min(1, this.#iter / total) : 0;
    const rate = this.#progress.rate;
    const eta = total > 0 && rate > 0 ? formatDuration((total - this.#iter) / rate) : "?";
    const status = this.#finished ? "done" : `ETA ${eta}`;
    const count = total > 0 ? `${this.#iter}/${total}` : String(this.#iter);
    const head = `${label} ${count} · ${rate.toFixed(rate < 10 ? 2 : 1)} it/s · ${status}`;
    const html = `<div class="pc-progress" style="font:13px/1.4 monospace;max-width:720px;">` +
      `<div style="background:#eee;border-radius:3px;height:12px;overflow:hidden;">` +
      `<div style="background:${this.#finished ? "#2ca02c" : "#1f77b4"};height:12px;width:${
        (100 * frac).toFixed(1)
      }%;"></div></div>` +
      `<div>${escapeHtml(head)}</div><div>${escapeHtml(this.fieldText())}</div>` +
      sparkline(this.#losses) + `</div>`;
    return { "text/html": html, "text/plain": `${head}  ${this.fieldText()}` };
  }
}

function formatField(k: string, v: number | string): string {
  if (typeof v === "string") return v;
  if (k === "lr" || k.endsWith("_lr")) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

/** Inline SVG polyline of the loss history (no scripts needed). */
export function sparkline(values: readonly number[], w = 360, h = 60): string {
  if (values.length < 2) return "";
  const lo = Math.min(...values), hi = Math.max(...values);
  const span = hi - lo || 1;
  const pts = values.map((v, i) =>
    `${(i / (values.length - 1) * (w - 4) + 2).toFixed(1)},${(h - 2 - (v - lo) / span * (h - 14)).toFixed(1)}`
  ).join(" ");
  return `<svg width="${w}" height="${h}" xmlns="http://www.w3.org/2000/svg" style="display:block;margin-top:4px;">` +
    `<rect width="${w}" height="${h}" fill="#fafafa" stroke="#ddd"/>` +
    `<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="${pts}"/>` +
    `<text x="4" y="11" font-size="10" fill="#666">loss ${hi.toFixed(3)} … ${lo.toFixed(3)}</text></svg>`;
}
