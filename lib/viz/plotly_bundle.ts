/**
 * The plotly.js bundle, read from the project's npm install so that every HTML this project writes works
 * offline (no CDN). `import.meta.resolve("npm:...")` gives no file path for npm packages, so the file is
 * located from this module's own URL (the project root is two folders up) and Deno's npm layouts.
 *
 * Pinned version: plotly.js-dist-min 2.35.2 (deno.json; the constant below comes from the installed
 * package), the plotly.js that the last JupyterLab renderer
 * extension shipped by the Python plotly package (5.24.x, `jupyterlab-plotly`) bundles, so a notebook
 * renders the same whether JupyterLab uses that extension or our HTML fallback.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
// A static import puts the package in the module graph, so Deno installs it (node_modules/ or its cache)
// before any code runs; the bundle file itself is then read from disk.
import plotlyPackage from "plotly.js-dist-min/package.json" with { type: "json" };

export const PLOTLY_PACKAGE = "plotly.js-dist-min";
export const PLOTLY_VERSION: string = plotlyPackage.version;

/** The project root: lib/viz/ is two folders below it. */
export function projectRoot(): string {
  const url = new URL("../../", import.meta.url);
  if (url.protocol !== "file:") throw new Error(`lib/viz: cannot locate the project root from ${url.href}`);
  return decodeURIComponent(url.pathname).replace(/\/$/, "");
}

/** Paths where the bundle may be, first match wins. `PC_PLOTLY_JS` overrides all. */
export function plotlyBundleCandidates(): string[] {
  const env = envGet("PC_PLOTLY_JS");
  const out: string[] = env ? [env] : [];
  try {
    // With a node_modules folder Deno resolves npm subpaths to files.
    const url = import.meta.resolve(`${PLOTLY_PACKAGE}/plotly.min.js`);
    if (url.startsWith("file:")) out.push(fileURLToPath(url));
  } catch {
    // not resolvable here: fall through to the known layouts
  }
  let root: string | null = null;
  try {
    root = projectRoot();
  } catch {
    root = null;
  }
  if (root) {
    out.push(join(root, "node_modules", PLOTLY_PACKAGE, "plotly.min.js"));
    const pkgDir = `${PLOTLY_PACKAGE}@${PLOTLY_VERSION}`;
    out.push(join(root, "node_modules", ".deno", pkgDir, "node_modules", PLOTLY_PACKAGE, "plotly.min.js"));
  }
  // Deno's global npm cache (used when a project runs without a node_modules folder).
  const denoDir = envGet("DENO_DIR") ??
    (envGet("XDG_CACHE_HOME") ? join(envGet("XDG_CACHE_HOME")!, "deno") : null) ??
    (envGet("HOME") ? join(envGet("HOME")!, ".cache", "deno") : null);
  if (denoDir) {
    out.push(join(denoDir, "npm", "registry.npmjs.org", PLOTLY_PACKAGE, PLOTLY_VERSION, "plotly.min.js"));
  }
  return out;
}

let cached: { path: string; text: string } | null = null;

/** Path of the plotly.js bundle; throws a clear error naming the places looked at. */
export function plotlyBundlePath(): string {
  if (cached) return cached.path;
  const candidates = plotlyBundleCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `plotly.js bundle not found (looked in: ${candidates.join(", ")}). ` +
        `Run 'deno install' in the project root (deno.json pins npm:${PLOTLY_PACKAGE}@${PLOTLY_VERSION}), ` +
        `or set PC_PLOTLY_JS to a plotly.min.js file.`,
    );
  }
  return found;
}

/** The bundle's text (read once per process). */
export function plotlyBundleText(): string {
  if (cached) return cached.text;
  const path = plotlyBundlePath();
  const text = readFileSync(path, "utf8");
  if (!/plotly\.js v\d+\.\d+\.\d+/.test(text.slice(0, 300))) {
    throw new Error(`'${path}' does not look like a plotly.js bundle (no version banner)`);
  }
  cached = { path, text };
  return text;
}

/** The plotly.js version the found bundle declares in its banner. */
export function plotlyBundleVersion(): string {
  const m = plotlyBundleText().slice(0, 300).match(/plotly\.js v(\d+\.\d+\.\d+)/);
  return m ? m[1] : "unknown";
}

/**
 * The bundle as the body of an inline `<script>`: wrapped so that an AMD loader on the page (classic
 * notebook's require.js) cannot capture it, which would leave `window.Plotly` undefined. The UMD header
 * then assigns `globalThis.Plotly`. `</script` cannot occur in it (checked), which would end the element.
 */
export function plotlyInlineScript(): string {
  const text = plotlyBundleText();
  if (/<\/script/i.test(text)) throw new Error("plotly bundle contains '</script' and cannot be inlined");
  return `if(!window.Plotly){(function(define,module,exports){\n${text}\n}).call(window);}`;
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: fall back to the project-relative paths
  }
}
