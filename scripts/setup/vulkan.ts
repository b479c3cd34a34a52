/**
 * Set-up step `vulkan`: Mesa's software Vulkan driver (lavapipe) from Debian, project-local and without root,
 * so that the tests can run TF.js' `webgpu` backend (Deno's WebGPU over Vulkan) on a machine without a GPU.
 *
 *   1. resolve: mesa-vulkan-drivers and libvulkan1 plus the shared libraries they depend on (`apt-cache
 *      depends`, followed through `lib*` packages only: the rest, e.g. python3 for Mesa's overlay script, is
 *      not needed to run the driver), keeping those that `dpkg-query` says this machine lacks;
 *   2. `apt-get download` them into .cache/vulkan/debs (when the machine's package lists are empty, a
 *      project-local `apt-get update` into .cache/vulkan/apt first; neither needs root);
 *   3. `dpkg -x` each into .cache/vulkan/root (no maintainer scripts, nothing outside it), then drop the .debs;
 *   4. write .cache/vulkan/lvp_icd.json (the ICD json with its library_path made absolute), env.json and env.sh
 *      (see lib/backend/software_vulkan.ts);
 *   5. check, in a child Deno with that environment, that WebGPU offers a lavapipe adapter.
 *
 * Cached by a stamp (the resolved package list and versions); a later run costs a file read.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  SOFTWARE_VULKAN_DIR,
  SOFTWARE_VULKAN_ENV_FILE,
  type SoftwareVulkan,
} from "../../lib/backend/software_vulkan.ts";
import type { SetupContext, SetupStep } from "./steps.ts";

const ROOTS = ["mesa-vulkan-drivers", "libvulkan1"];
/** Bump when the recipe changes. */
const RECIPE = 1;
const STAMP = "stamp.json";

interface Stamp {
  recipe: number;
  packages: string[];
  adapter: string;
}

async function run(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      cwd,
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    })
      .output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

async function must(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  if (!r.ok) {
    throw new Error(
      `'${cmd} ${args.join(" ")}' failed: ${(r.err || r.out).trim().split("\n").slice(-4).join(" | ")}`,
    );
  }
  return r.out;
}

/** Direct dependencies of one package that are real packages named lib* (alternatives included). */
export function libDependencies(aptCacheDepends: string): string[] {
  const out: string[] = [];
  for (const line of aptCacheDepends.split("\n")) {
    const m = /^\s*\|?(?:Pre)?Depends:\s+(\S+)\s*$/.exec(line);
    if (m && !m[1].startsWith("<") && m[1].startsWith("lib")) out.push(m[1].replace(/:any$/, ""));
  }
  return out;
}

/** Names (of `names`) that dpkg reports installed. */
async function installed(names: string[]): Promise<Set<string>> {
  const r = await run("dpkg-query", ["-W", "-f=${Package} ${Status}\\n", ...names]);
  const have = new Set<string>();
  for (const line of r.out.split("\n")) {
    const [name, ...status] = line.trim().split(" ");
    if (name && status.join(" ") === "install ok installed") have.add(name);
  }
  return have;
}

/** apt options pointing at a project-local package list (used when the machine's lists are empty). */
function localApt(dir: string): string[] {
  return [
    "-o",
    `Dir::State::Lists=${join(dir, "apt", "lists")}`,
    "-o",
    `Dir::Cache=${join(dir, "apt", "cache")}`,
    "-o",
    "Debug::NoLocking=1",
  ];
}

/** The packages to fetch: the roots and their lib* dependencies, closed, minus what is installed. */
async function resolve(apt: string[]): Promise<string[]> {
  const seen = new Set<string>(ROOTS);
  const queue = [...ROOTS];
  while (queue.length) {
    const batch = queue.splice(0);
    const text = await must("apt-cache", [...apt, "depends", "--no-recommends", "--no-suggests", ...batch]);
    for (const d of libDependencies(text)) {
      if (!seen.has(d)) {
        seen.add(d);
        queue.push(d);
      }
    }
  }
  const have = await installed([...seen]);
  return [...seen].filter((p) => !have.has(p)).sort();
}

async function downloadable(apt: string[]): Promise<boolean> {
  const r = await run("apt-cache", [...apt, "policy", ...ROOTS]);
  return r.ok && !/Candidate: \(none\)/.test(r.out) && /Candidate:/.test(r.out);
}

export const vulkanStep: SetupStep = {
  name: "vulkan",
  purposes: ["test"],
  // Where Debian's tools are missing the other steps still run; the webgpu tests then fail and say why.
  optional: true,
  async run(ctx: SetupContext): Promise<boolean> {
    const dir = join(ctx.root, SOFTWARE_VULKAN_DIR);
    const envFile = join(dir, SOFTWARE_VULKAN_ENV_FILE);
    try {
      const s = JSON.parse(readFileSync(join(dir, STAMP), "utf8")) as Stamp;
      if (s.recipe === RECIPE && existsSync(envFile) && existsSync(join(dir, "lvp_icd.json"))) return false;
    } catch { /* not yet, or an older recipe */ }
    if (process.platform !== "linux") {
      throw new Error(`lavapipe from Debian needs Linux (this is ${process.platform})`);
    }
    for (const tool of ["apt-get", "apt-cache", "dpkg", "dpkg-query"]) {
      if (!(await run(tool, ["--version"])).ok) {
        throw new Error(
          `'${tool}' is not available: the software Vulkan driver is taken from Debian packages`,
        );
      }
    }

    // 1-2. resolve and download (the machine's package lists, else project-local ones)
    let apt: string[] = [];
    // PC_VULKAN_LOCAL_APT=1 takes the project-local route even when the machine's lists would do (to check it)
    if (Deno.env.get("PC_VULKAN_LOCAL_APT") === "1" || !(await downloadable(apt))) {
      apt = localApt(dir);
      ctx.log("vulkan: apt-get update into .cache/vulkan/apt (project-local package lists)");
      for (const d of ["apt/lists/partial", "apt/cache/archives/partial"]) {
        mkdirSync(join(dir, d), { recursive: true });
      }
      await must("apt-get", [...apt, "-q", "update"]);
      if (!(await downloadable(apt))) {
        throw new Error("no Debian package list offers mesa-vulkan-drivers and libvulkan1");
      }
    }
    const packages = await resolve(apt);
    ctx.log(
      `vulkan: ${packages.length ? `fetching ${packages.join(", ")}` : "every package is installed already"}`,
    );
    const debs = join(dir, "debs");
    const root = join(dir, "root");
    rmSync(debs, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
    mkdirSync(debs, { recursive: true });
    mkdirSync(root, { recursive: true });
    if (packages.length) await must("apt-get", [...apt, "-q", "download", ...packages], debs);

    // 3. extract (data only: dpkg -x runs no maintainer script)
    const files = readdirSync(debs).filter((f) => f.endsWith(".deb")).sort();
    for (const f of files) await must("dpkg", ["-x", join(debs, f), root]);
    const versions = files.map((f) => f.replace(/\.deb$/, ""));
    rmSync(debs, { recursive: true, force: true }); // extracted: the archives are not needed any more

    // 4. the ICD json with an absolute library path, and the environment. The driver comes from the extracted
    // files when mesa-vulkan-drivers was missing, else from the system's own.
    const icdDirs = [join(root, "usr/share/vulkan/icd.d"), "/usr/share/vulkan/icd.d"];
    const icdSrc =
      icdDirs.flatMap((d) =>
        existsSync(d) ? readdirSync(d).filter((f) => /^lvp_icd\..*json$/.test(f)).map((f) => join(d, f)) : []
      )[0];
    if (!icdSrc) {
      throw new Error(
        "the lavapipe ICD file (lvp_icd.*.json) is in neither the extracted nor the system tree",
      );
    }
    const icd = JSON.parse(readFileSync(icdSrc, "utf8"));
    const lib = icd?.ICD?.library_path as string | undefined;
    if (!lib) throw new Error(`${icdSrc}: no ICD.library_path`);
    const extractedLib = icdSrc.startsWith(root) && lib.startsWith("/") ? join(root, lib) : lib;
    if (lib.startsWith("/") && !existsSync(extractedLib)) {
      throw new Error(`lavapipe library ${extractedLib} is missing`);
    }
    icd.ICD.library_path = extractedLib;
    const icdOut = join(dir, "lvp_icd.json");
    writeFileSync(icdOut, JSON.stringify(icd, null, 2) + "\n");
    const libDirs = ["usr/lib", "lib"].flatMap((base) => {
      const d = join(root, base);
      if (!existsSync(d)) return [];
      const triplets = readdirSync(d).filter((t) => /-linux-gnu/.test(t)).map((t) => join(d, t));
      return [...triplets, d];
    }).filter((d) => readdirSync(d).some((f) => f.includes(".so")));
    const env: Record<string, string> = {
      VK_DRIVER_FILES: icdOut,
      VK_ICD_FILENAMES: icdOut,
      LD_LIBRARY_PATH: libDirs.join(":"),
      DENO_WEBGPU_BACKEND: "vulkan",
    };

    // 5. check in a child process: the adapter must be lavapipe ("llvmpipe" is its device name)
    const probe = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "const a = await navigator.gpu.requestAdapter(); console.log(a ? a.info.description || a.info.device || 'unnamed' : 'none')",
      ],
      env: {
        ...env,
        LD_LIBRARY_PATH: [env.LD_LIBRARY_PATH, Deno.env.get("LD_LIBRARY_PATH")].filter((x) => x).join(":"),
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const adapter = dec.decode(probe.stdout).trim().split("\n").pop() ?? "";
    if (!probe.success || !/llvmpipe|lavapipe/i.test(adapter)) {
      throw new Error(
        `WebGPU sees no lavapipe adapter with the extracted driver (got '${adapter}'): ${
          dec.decode(probe.stderr).trim().slice(-300)
        }`,
      );
    }
    const value: SoftwareVulkan = { env, adapter, packages: versions };
    writeFileSync(`${envFile}.tmp`, JSON.stringify(value, null, 1) + "\n");
    renameSync(`${envFile}.tmp`, envFile);
    writeFileSync(
      join(dir, "env.sh"),
      "# source me: Deno's WebGPU on the project-local lavapipe (written by scripts/setup/vulkan.ts)\n" +
        Object.entries(env).map(([k, v]) =>
          k === "LD_LIBRARY_PATH"
            ? `export ${k}="${v}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"`
            : `export ${k}="${v}"`
        ).join("\n") + "\n",
    );
    const stamp: Stamp = { recipe: RECIPE, packages: versions, adapter };
    writeFileSync(join(dir, STAMP), JSON.stringify(stamp, null, 1) + "\n");
    ctx.log(`vulkan: WebGPU adapter "${adapter}" (Vulkan, software) ready in ${SOFTWARE_VULKAN_DIR}`);
    return true;
  },
};
