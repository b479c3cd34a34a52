/**
 * Set-up step `browser`: the headless Chromium of the notebook browser check (tests/notebooks/,
 * `deno task nb:check`), project-local in `.cache/chromium/<version>/` (notebooks/tools/chromium.ts says how it
 * is found and run).
 *
 * Source: the npm package `@sparticuz/chromium` (MIT), fetched with the ordinary npm client (`npm pack`,
 * the registry tarball only: none of its JavaScript runs) and checked against the pinned `dist.integrity`.
 * The tarball holds `chrome-headless-shell` brotli-compressed plus three brotli-compressed tars (fonts,
 * SwiftShader, the NSS libraries it links); the step unpacks them with node:zlib and the project's own
 * archive code (lib/data/archive.ts), writes a fontconfig file for them, runs `chromium --version`, and
 * only then moves the folder into place and writes its stamp (a rerun costs one stat).
 *
 * With `$PC_CHROMIUM` set, the user's browser is used and nothing is fetched. The step is optional: when
 * it fails (no npm, no registry), the set-up goes on, the reason is kept in `.cache/chromium/failed.txt`,
 * and the browser test fails with it.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { pipeline } from "node:stream/promises";
import { createBrotliDecompress } from "node:zlib";
import { unpackArchive } from "../../lib/data/archive.ts";
import {
  CHROMIUM_PACKAGE,
  LOCAL_CHROMIUM_STAMP,
  localChromiumDir,
  localChromiumEnv,
} from "../../notebooks/tools/chromium.ts";
import type { SetupContext, SetupStep } from "./steps.ts";

async function sha512Base64(file: string): Promise<string> {
  const h = createHash("sha512");
  await pipeline(createReadStream(file), h);
  return h.digest("base64");
}

async function brotli(src: string, dst: string): Promise<void> {
  await pipeline(
    createReadStream(src),
    createBrotliDecompress({ chunkSize: 1 << 21 }),
    createWriteStream(dst),
  );
}

async function command(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output().catch((e) => {
      throw new Error(`cannot run ${cmd}: ${(e as Error).message}`);
    });
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${text.trim().split("\n").slice(-8).join("\n")}`,
    );
  }
  return text;
}

function fontsConf(dir: string): string {
  return `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<!-- written by scripts/setup/browser.ts: the package's fonts, then the system's -->
<fontconfig>
  <dir>${join(dir, "fonts")}</dir>
  <dir>/usr/share/fonts</dir>
  <dir>/usr/local/share/fonts</dir>
  <cachedir>${join(dir, "fonts-cache")}</cachedir>
</fontconfig>
`;
}

async function install(ctx: SetupContext): Promise<void> {
  const { name, version, integrity } = CHROMIUM_PACKAGE;
  const dest = localChromiumDir(ctx.root);
  const work = join(ctx.root, ".cache", "chromium", `.tmp-${Deno.pid}`);
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(work, { recursive: true });
  try {
    ctx.log(`browser: fetching ${name}@${version} with npm (about 70 MB, once)`);
    const packed = (await command("npm", [
      "pack",
      `${name}@${version}`,
      "--pack-destination",
      work,
      "--silent",
      "--no-audit",
      "--no-fund",
    ])).trim().split("\n").pop()!.trim();
    const tgz = join(work, packed);
    if (!existsSync(tgz)) throw new Error(`npm pack did not write ${tgz}`);
    const got = `sha512-${await sha512Base64(tgz)}`;
    if (got !== integrity) {
      throw new Error(`${packed}: integrity ${got} differs from the pinned ${integrity}; refusing to use it`);
    }
    const pkg = join(work, "pkg");
    await unpackArchive(tgz, pkg, { stripComponents: 1, progress: false });
    const out = join(work, "out");
    await Deno.mkdir(out);
    ctx.log("browser: decompressing chrome-headless-shell, fonts, SwiftShader, NSS libraries");
    await brotli(join(pkg, "bin", "chromium.br"), join(out, "chromium"));
    await Deno.chmod(join(out, "chromium"), 0o755);
    for (const part of ["fonts", "swiftshader", "al2023"]) {
      const tar = join(work, `${part}.tar`);
      await brotli(join(pkg, "bin", `${part}.tar.br`), tar);
      await unpackArchive(tar, out, { progress: false });
    }
    // the package's fonts.conf names Lambda's folders: ours names these
    await Deno.writeTextFile(join(out, "fonts.conf"), fontsConf(dest));
    const v = (await command(join(out, "chromium"), ["--version"], localChromiumEnv(out))).trim();
    if (!/^Chromium \d+/.test(v)) throw new Error(`chromium --version printed '${v}'`);
    await Deno.writeTextFile(
      join(out, LOCAL_CHROMIUM_STAMP),
      JSON.stringify({ package: `${name}@${version}`, integrity, version: v }, null, 2) + "\n",
    );
    await Deno.remove(dest, { recursive: true }).catch(() => {});
    await Deno.rename(out, dest);
    ctx.log(`browser: ${v} ready in ${relative(ctx.root, dest)}`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

export const browserStep: SetupStep = {
  name: "browser",
  purposes: ["test"],
  optional: true,
  async run(ctx: SetupContext): Promise<boolean> {
    const own = Deno.env.get("PC_CHROMIUM");
    if (own) {
      if (!existsSync(own)) throw new Error(`PC_CHROMIUM points at '${own}', which does not exist`);
      return false;
    }
    const dest = localChromiumDir(ctx.root);
    if (existsSync(join(dest, LOCAL_CHROMIUM_STAMP)) && existsSync(join(dest, "chromium"))) return false;
    const failed = join(ctx.root, ".cache", "chromium", "failed.txt");
    try {
      await install(ctx);
      await Deno.remove(failed).catch(() => {});
      return true;
    } catch (e) {
      const msg = (e as Error).message;
      await Deno.mkdir(join(ctx.root, ".cache", "chromium"), { recursive: true });
      await Deno.writeTextFile(failed, `${new Date().toISOString()} ${msg}\n`);
      throw e;
    }
  },
};
