/**
 * Which headless Chromium the notebook browser check (`deno task nb:check`, tests/notebooks/) runs, with
 * what environment and flags (puppeteer-core drives it: browser_check.ts).
 *
 * Order: `$PC_CHROMIUM` (a user's own Chromium or Chrome; used as given, never replaced), then the
 * project-local build the set-up step `browser` unpacks (scripts/setup/browser.ts), then a system
 * `/usr/bin/chromium`. The project-local one is `chrome-headless-shell` from the npm package
 * `@sparticuz/chromium` (MIT; a brotli-compressed Chromium with its fonts, SwiftShader and the NSS
 * libraries it links, all inside the registry tarball, so nothing is fetched from anywhere but npm and
 * nothing is installed system-wide). It lives in `.cache/chromium/<version>/`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "./project.ts";

/** The npm package the set-up unpacks; `integrity` is the registry's `dist.integrity` (checked). */
export const CHROMIUM_PACKAGE = {
  name: "@sparticuz/chromium",
  version: "153.0.0",
  integrity:
    "sha512-jiGWqSvPMdu4+P9TilYqAR7yEGPEHINx+lCvE/NqNO/EHYzF/x1hUiI5T6ioVIt7dEy7n88byyT0vk+dnsgQwA==",
} as const;

/** Folder of the project-local Chromium: `.cache/chromium/<package version>`. */
export function localChromiumDir(root = projectRoot()): string {
  return join(root, ".cache", "chromium", CHROMIUM_PACKAGE.version);
}

/** Stamp written last by the set-up step; its presence means the folder is complete. */
export const LOCAL_CHROMIUM_STAMP = "installed.json";

export interface ChromiumInstall {
  /** The executable. */
  path: string;
  /** Where it came from. */
  source: "PC_CHROMIUM" | "project" | "system";
  /** Environment additions for the browser process (fonts and libraries of the project-local build). */
  env: Record<string, string>;
}

/** Environment the project-local build needs: its fontconfig file and, behind the system's, its NSS libs. */
export function localChromiumEnv(dir: string): Record<string, string> {
  const ld = Deno.env.get("LD_LIBRARY_PATH");
  return {
    FONTCONFIG_FILE: join(dir, "fonts.conf"),
    // the package's own NSS/NSPR/expat builds, used only where the system has none (a bare machine):
    // the loader tries LD_LIBRARY_PATH before the system folders, so they are listed after them
    LD_LIBRARY_PATH: [ld, "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", join(dir, "lib")]
      .filter(Boolean).join(":"),
  };
}

/** The Chromium to run (see the module comment), or null when there is none. */
export function findChromium(root = projectRoot()): ChromiumInstall | null {
  const own = Deno.env.get("PC_CHROMIUM");
  if (own) return existsSync(own) ? { path: own, source: "PC_CHROMIUM", env: {} } : null;
  const dir = localChromiumDir(root);
  const local = join(dir, "chromium");
  if (existsSync(join(dir, LOCAL_CHROMIUM_STAMP)) && existsSync(local)) {
    return { path: local, source: "project", env: localChromiumEnv(dir) };
  }
  for (const c of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    if (existsSync(c)) return { path: c, source: "system", env: {} };
  }
  return null;
}

/** Why there is no browser, and what provides one. */
export function chromiumHint(root = projectRoot()): string {
  const own = Deno.env.get("PC_CHROMIUM");
  if (own) return `PC_CHROMIUM points at '${own}', which does not exist`;
  let note = "";
  try {
    note = readFileSync(join(root, ".cache", "chromium", "failed.txt"), "utf8").trim();
  } catch { /* no failed attempt recorded */ }
  return `no Chromium: the project-local one (${
    join(".cache", "chromium", CHROMIUM_PACKAGE.version)
  }) is not set up` + (note ? ` (the set-up's last attempt failed: ${note})` : "") +
    "; run `deno task setup --only browser` (unpacks npm's @sparticuz/chromium, about 70 MB once), " +
    "or point PC_CHROMIUM at a Chromium/Chrome binary";
}

/**
 * Flags for the headless browser, beside puppeteer-core's own: no sandbox (containers, root), no GPU, no
 * network or updates of its own, no first-run pages, /tmp instead of a small /dev/shm.
 */
export const CHROMIUM_FLAGS = [
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
