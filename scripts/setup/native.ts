/**
 * Set-up step `native`: builds `@tensorflow/tfjs-node-gpu@4.22.0`'s N-API binding against libtensorflow from the
 * TensorFlow PyPI wheel, because the package's own installer downloads libtensorflow 2.9.1 from a host that is not
 * reachable (and 2.9.1's CUDA 11 GPU build does not suit CUDA 12 machines anyway). Everything stays under
 * `.cache/native/`; the only things written into `node_modules` are the binding and links to the libraries.
 *
 *   CPU (default): tensorflow-cpu==2.21.0 wheel.   GPU (`--gpu`): tensorflow==2.21.0 + its `and-cuda` nvidia wheels.
 *
 * Stages, each cached: node_modules (deno install) -> wheel(s) via `pip download --no-deps` -> extract only the two
 * libraries and the C API headers -> node-gyp build with the local Node headers -> symbol check -> place into the
 * package -> load check in a child Deno. Details and the reasons: scripts/native/README.md.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import {
  NATIVE_PACKAGE,
  NATIVE_PACKAGE_VERSION,
  NATIVE_TF_VERSION,
  nativeBindingPath,
  nativeCacheDir,
  type NativeInstallStamp,
  nativePackageDir,
  type NativeVariant,
  readInstallStamp,
} from "../../lib/backend/native.ts";
import type { SetupContext, SetupStep } from "./steps.ts";

const NODE_GYP_VERSION = "11.4.2";
/** Bump when the build recipe changes, so that stamps of older recipes are rebuilt. */
const RECIPE = 1;
const WHEEL: Record<NativeVariant, string> = { cpu: "tensorflow-cpu", gpu: "tensorflow" };
/** pip target tags: fixed so the chosen files do not depend on the host's Python (the C libraries don't either). */
const PIP_TARGET = [
  "--python-version",
  "3.12",
  "--implementation",
  "cp",
  ...["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
    .flatMap((p) => ["--platform", p]),
];
/** C API headers the binding includes, with their transitive closure (plain C; never the C++ headers). */
const HEADER_PREFIXES = [
  "tensorflow/include/tensorflow/c/",
  "tensorflow/include/tensorflow/core/platform/ctstring",
  "tensorflow/include/tsl/platform/ctstring",
  "tensorflow/include/xla/tsl/c/",
];
const TF_LIBS = ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"];

const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export const nativeStep: SetupStep = {
  name: "native",
  purposes: ["train", "test"],
  // Where it cannot be built (no compiler, no PyPI, not linux-x64) the rest of the set-up goes on and `auto`
  // falls back to another backend; the native backend test fails loudly in CI then.
  optional: true,
  run: runNative,
};

async function runNative(ctx: SetupContext): Promise<boolean> {
  if (Deno.env.get("PC_NATIVE") === "0") {
    ctx.log("native: skipped because PC_NATIVE=0");
    return false;
  }
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `the native backend build supports linux x64 only (this is ${process.platform} ${process.arch})`,
    );
  }
  const root = ctx.root;
  const cache = nativeCacheDir(root);
  const installed = readInstallStamp(root);
  // A GPU build also runs on CPU-only machines: keep it once made, unless PC_NATIVE_VARIANT says otherwise.
  const variant: NativeVariant = ctx.gpu
    ? "gpu"
    : (Deno.env.get("PC_NATIVE_VARIANT") as NativeVariant | undefined) ?? installed?.variant ?? "cpu";
  if (variant !== "cpu" && variant !== "gpu") throw new Error(`PC_NATIVE_VARIANT must be cpu or gpu`);
  const key = recipeKey(root, variant);

  if (installed?.key === key && placementIntact(root, installed)) return false;
  // Several set-ups may run at once (e.g. `deno task test` in two shells): one builds, the others wait.
  return await withLock(ctx, cache, async () => {
    const again = readInstallStamp(root);
    if (again?.key === key && placementIntact(root, again)) return false;
    return await build(ctx, variant, key);
  });
}

async function build(ctx: SetupContext, variant: NativeVariant, key: string): Promise<boolean> {
  const root = ctx.root;
  const cache = nativeCacheDir(root);
  const t0 = performance.now();
  await ensureNodeModules(ctx);
  const pkg = Deno.realPathSync(nativePackageDir(root));
  const libRoot = join(cache, `tf-${NATIVE_TF_VERSION}-${variant}`);
  await ensureLibraries(ctx, cache, libRoot, variant);
  const built = await ensureBuild(ctx, cache, libRoot, pkg, key);
  const stamp = place(ctx, root, pkg, libRoot, built, variant, key);
  await smokeTest(ctx, root);
  writeFileSync(join(cache, "installed.json"), JSON.stringify(stamp, null, 2) + "\n");
  ctx.log(`native: ${variant} binding ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return true;
}

async function withLock<T>(ctx: SetupContext, dir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "lock");
  let told = false;
  for (;;) {
    try {
      Deno.writeTextFileSync(lock, String(Deno.pid), { createNew: true });
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    let pid = 0, age = 0;
    try {
      pid = Number(readFileSync(lock, "utf8"));
      age = Date.now() - (statSync(lock).mtime?.getTime() ?? 0);
    } catch { /* released meanwhile */ }
    // no pid yet: its writer is between create and write, unless that was long ago
    const stale = pid ? !existsSync(`/proc/${pid}`) : age > 10_000;
    if (stale) {
      rmSync(lock, { force: true });
      continue;
    }
    if (!told) {
      ctx.log(`native: waiting for another set-up (pid ${pid || "?"}) that is building the native backend`);
    }
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Everything that decides the binding's bytes; a change forces a rebuild. */
function recipeKey(root: string, variant: NativeVariant): string {
  const h = createHash("sha256");
  h.update(
    JSON.stringify({ RECIPE, variant, tf: NATIVE_TF_VERSION, pkg: NATIVE_PACKAGE_VERSION, NODE_GYP_VERSION }),
  );
  for (const p of patchFiles(root)) h.update(readFileSync(p));
  return h.digest("hex").slice(0, 16);
}

function patchFiles(root: string): string[] {
  const dir = join(root, "scripts", "native", "patches");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".patch")).sort().map((f) => join(dir, f));
}

function placementIntact(root: string, stamp: NativeInstallStamp): boolean {
  try {
    const bindingPath = nativeBindingPath(root);
    if (bindingPath !== stamp.bindingPath || statSync(bindingPath).size !== stamp.bindingSize) return false;
    const libDir = join(nativePackageDir(root), "deps", "lib");
    // statSync follows the links: fails if .cache/native was removed
    return TF_LIBS.every((l) => statSync(join(libDir, l)).isFile());
  } catch {
    return false;
  }
}

async function run(
  ctx: SetupContext,
  cmd: string,
  args: string[],
  opts: { cwd?: string; logFile?: string; show?: boolean } = {},
): Promise<string> {
  const show = opts.show && !ctx.quiet;
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdout: show ? "inherit" : "piped",
    stderr: show ? "inherit" : "piped",
    stdin: "null",
  }).output().catch((e) => {
    throw new Error(`cannot run ${cmd}: ${(e as Error).message}`);
  });
  const text = show ? "" : new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (opts.logFile) writeFileSync(opts.logFile, text);
  if (!out.success) {
    const tail = text.trim().split("\n").slice(-25).join("\n");
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code})` + (opts.logFile ? `; log: ${opts.logFile}` : "") +
        (tail ? `\n${tail}` : ""),
    );
  }
  return text;
}

/** On a fresh clone node_modules does not exist yet: let Deno lay out every npm import of deno.json. */
async function ensureNodeModules(ctx: SetupContext): Promise<void> {
  const pkgJson = join(nativePackageDir(ctx.root), "package.json");
  if (existsSync(pkgJson)) return;
  ctx.log(`native: populating node_modules (deno install) for ${NATIVE_PACKAGE}@${NATIVE_PACKAGE_VERSION}`);
  // Lifecycle scripts stay off: tfjs-node-gpu's install script would try the unreachable download.
  await run(ctx, Deno.execPath(), ["install"], { cwd: ctx.root, show: true });
  if (!existsSync(pkgJson)) throw new Error(`deno install did not create ${pkgJson}`);
  const version = JSON.parse(readFileSync(pkgJson, "utf8")).version;
  if (version !== NATIVE_PACKAGE_VERSION) {
    throw new Error(`${pkgJson} is version ${version}, expected ${NATIVE_PACKAGE_VERSION}`);
  }
}

function python(): string {
  for (const p of ["python3", "python"]) {
    try {
      const o = new Deno.Command(p, { args: ["-m", "pip", "--version"], stdout: "null", stderr: "null" })
        .outputSync();
      if (o.success) return p;
    } catch { /* not there */ }
  }
  throw new Error(
    "Python 3 with pip is needed to fetch the TensorFlow wheel (tooling only); none found on PATH",
  );
}

/** `pip download --no-deps` of one requirement into `dest`; returns the wheel's path. */
async function pipDownload(ctx: SetupContext, py: string, req: string, dest: string): Promise<string> {
  const before = new Set(existsSync(dest) ? readdirSync(dest) : []);
  const t0 = performance.now();
  ctx.log(`native: downloading ${req} from PyPI (pip download --no-deps)`);
  await run(ctx, py, [
    "-m",
    "pip",
    "download",
    "--no-deps",
    "--only-binary=:all:",
    "--disable-pip-version-check",
    ...PIP_TARGET,
    "--dest",
    dest,
    req,
  ], { show: true });
  const name = requirementName(req);
  const wheels = readdirSync(dest).filter((f) => f.endsWith(".whl") && normal(f.split("-")[0]) === name);
  const fresh = wheels.find((f) => !before.has(f)) ?? wheels[0];
  if (!fresh) throw new Error(`pip reported success but no wheel for ${req} is in ${dest}`);
  const size = statSync(join(dest, fresh)).size;
  ctx.log(`native:   ${fresh}: ${MB(size)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return join(dest, fresh);
}

const normal = (s: string) => s.toLowerCase().replace(/[-_.]+/g, "_");
const requirementName = (req: string) => normal(req.split(/[<>=!~;\s\[]/)[0]);

/**
 * Extracts members of a wheel with Python's zipfile (no unzip needed). `mode` "tf": the two libraries, the C API
 * headers and METADATA; "nvidia": the shared libraries of one nvidia-* wheel (no headers, no static libraries).
 */
async function extract(ctx: SetupContext, py: string, wheel: string, dest: string, mode: "tf" | "nvidia") {
  const script = `
import sys, zipfile, os, json
wheel, dest, mode, prefixes = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
def want(n):
    if n.endswith("/"): return False
    if mode == "tf":
        return n in libs or any(n.startswith(p) for p in prefixes) or n.endswith(".dist-info/METADATA")
    parts = n.split("/")
    return n.startswith("nvidia/") and "include" not in parts and not n.endswith((".a", ".h", ".py", ".pyc"))
count = size = 0
with zipfile.ZipFile(wheel) as z:
    for i in z.infolist():
        if not want(i.filename): continue
        out = os.path.join(dest, i.filename)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(i) as src, open(out + ".part", "wb") as dst:
            while True:
                b = src.read(1 << 22)
                if not b: break
                dst.write(b)
        os.chmod(out + ".part", 0o755 if ".so" in i.filename else 0o644)
        os.replace(out + ".part", out)
        count += 1; size += i.file_size
print(json.dumps({"count": count, "size": size}))
`;
  const t0 = performance.now();
  const out = await run(ctx, py, ["-c", script, wheel, dest, mode, JSON.stringify(HEADER_PREFIXES)]);
  const { count, size } = JSON.parse(out.trim().split("\n").pop()!);
  if (count === 0) throw new Error(`nothing to extract from ${wheel}`);
  ctx.log(
    `native:   extracted ${count} files (${MB(size)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

/** The wheel's libraries + headers (and, for GPU, the CUDA 12 wheels' libraries) under `libRoot`. */
async function ensureLibraries(ctx: SetupContext, cache: string, libRoot: string, variant: NativeVariant) {
  const stampFile = join(libRoot, "libraries.json");
  if (existsSync(stampFile)) {
    const s = JSON.parse(readFileSync(stampFile, "utf8"));
    const complete = TF_LIBS.every((l) => existsSync(join(libRoot, "tensorflow", l))) &&
      (s.nvidia ?? []).every((d: string) => existsSync(join(libRoot, "nvidia", d)));
    if (s.tf === NATIVE_TF_VERSION && complete) return;
  }
  const py = python();
  const downloads = join(cache, "downloads");
  rmSync(libRoot, { recursive: true, force: true });
  mkdirSync(downloads, { recursive: true });
  mkdirSync(libRoot, { recursive: true });
  ctx.log(
    `native: TensorFlow ${NATIVE_TF_VERSION} libraries from the ${WHEEL[variant]} wheel ` +
      `(${variant === "cpu" ? "~275 MB" : "~575 MB, then the CUDA 12 wheels, ~3 GB"} download, once)`,
  );
  const wheel = await pipDownload(ctx, py, `${WHEEL[variant]}==${NATIVE_TF_VERSION}`, downloads);
  await extract(ctx, py, wheel, libRoot, "tf");
  rmSync(wheel); // pip keeps its own cache; ours would only duplicate 0.3-0.6 GB
  checkWheelLibraries(libRoot);

  const nvidiaDirs: string[] = [];
  if (variant === "gpu") {
    const meta = readdirSync(libRoot).find((d) => d.endsWith(".dist-info"));
    const text = meta ? readFileSync(join(libRoot, meta, "METADATA"), "utf8") : "";
    const reqs = [...text.matchAll(/^Requires-Dist: (nvidia-[^;]+);\s*extra == "and-cuda"/gm)].map((m) =>
      m[1].trim()
    );
    if (reqs.length === 0) {
      throw new Error(`no and-cuda requirements in ${WHEEL.gpu} ${NATIVE_TF_VERSION}'s METADATA`);
    }
    ctx.log(`native: CUDA 12 libraries: ${reqs.length} nvidia wheels (${reqs.join(", ")})`);
    for (const req of reqs) {
      const w = await pipDownload(ctx, py, req.replace(/\s+/g, ""), downloads);
      const before = new Set(existsSync(join(libRoot, "nvidia")) ? readdirSync(join(libRoot, "nvidia")) : []);
      await extract(ctx, py, w, libRoot, "nvidia");
      rmSync(w);
      for (const d of readdirSync(join(libRoot, "nvidia"))) if (!before.has(d)) nvidiaDirs.push(d);
    }
  }
  writeFileSync(
    stampFile,
    JSON.stringify({ tf: NATIVE_TF_VERSION, variant, nvidia: nvidiaDirs }, null, 2) + "\n",
  );
}

/** SONAMEs as the binding will reference them, and the headers the binding includes. */
function checkWheelLibraries(libRoot: string) {
  for (const lib of TF_LIBS) {
    const p = join(libRoot, "tensorflow", lib);
    if (!existsSync(p)) throw new Error(`the wheel has no tensorflow/${lib}`);
  }
  for (
    const h of [
      "tensorflow/c/c_api.h",
      "tensorflow/c/eager/c_api.h",
      "tensorflow/core/platform/ctstring_internal.h",
    ]
  ) {
    if (!existsSync(join(libRoot, "tensorflow", "include", h))) {
      throw new Error(`the wheel has no include/${h}`);
    }
  }
}

/** Node's own headers (node_api.h): node-gyp must not download them (nodejs.org is unreachable). */
function nodeHeadersDir(): string {
  const env = Deno.env.get("PC_NODE_HEADERS");
  const candidates: string[] = env ? [env] : [];
  try {
    const o = new Deno.Command("node", { args: ["-p", "process.execPath"], stdout: "piped", stderr: "null" })
      .outputSync();
    if (o.success) candidates.push(dirname(dirname(new TextDecoder().decode(o.stdout).trim())));
  } catch { /* no node */ }
  candidates.push("/usr", "/usr/local");
  const hit = candidates.find((d) => existsSync(join(d, "include", "node", "node_api.h")));
  if (!hit) {
    throw new Error(
      "Node.js headers (include/node/node_api.h) not found next to `node` nor in /usr, /usr/local; install Node.js " +
        "with its headers (e.g. the nodesource/official builds) or set PC_NODE_HEADERS to the folder holding include/node",
    );
  }
  return hit;
}

async function ensureNodeGyp(ctx: SetupContext, cache: string): Promise<string> {
  const prefix = join(cache, `node-gyp-${NODE_GYP_VERSION}`);
  const bin = join(prefix, "node_modules", "node-gyp", "bin", "node-gyp.js");
  if (existsSync(bin)) return bin;
  ctx.log(`native: installing node-gyp@${NODE_GYP_VERSION} into ${relative(ctx.root, prefix)} (npm)`);
  mkdirSync(prefix, { recursive: true });
  await run(ctx, "npm", [
    "install",
    "--no-save",
    "--no-audit",
    "--no-fund",
    "--no-package-lock",
    "--prefix",
    prefix,
    `node-gyp@${NODE_GYP_VERSION}`,
  ]);
  if (!existsSync(bin)) throw new Error(`npm did not install ${bin}`);
  return bin;
}

interface Built {
  file: string;
  size: number;
}

/** Builds `tfjs_binding.node` in `.cache/native/build-<variant>` from a copy of the package's binding sources. */
async function ensureBuild(ctx: SetupContext, cache: string, libRoot: string, pkg: string, key: string) {
  const buildDir = join(libRoot, "build");
  const out = join(buildDir, "out", "tfjs_binding.node");
  const stampFile = join(buildDir, "build.json");
  if (existsSync(stampFile) && existsSync(out) && JSON.parse(readFileSync(stampFile, "utf8")).key === key) {
    return { file: out, size: statSync(out).size };
  }
  for (const [tool, hint] of [["make", "make"], [Deno.env.get("CXX") ?? "g++", "a C++ compiler (g++)"]]) {
    try {
      new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    } catch {
      throw new Error(
        `node-gyp needs ${hint}, which is not on PATH (Debian: apt-get install build-essential)`,
      );
    }
  }
  const nodeGyp = await ensureNodeGyp(ctx, cache);
  const nodeDir = nodeHeadersDir();
  // A copy: node_modules files are hard links into Deno's global npm cache, so they must never be edited in place.
  rmSync(buildDir, { recursive: true, force: true });
  const src = join(buildDir, "src");
  mkdirSync(join(src, "deps", "lib"), { recursive: true });
  Deno.copyFileSync(join(pkg, "binding.gyp"), join(src, "binding.gyp"));
  mkdirSync(join(src, "binding"));
  for (const f of readdirSync(join(pkg, "binding"))) {
    Deno.copyFileSync(join(pkg, "binding", f), join(src, "binding", f));
  }
  for (const p of patchFiles(ctx.root)) {
    ctx.log(`native: applying ${relative(ctx.root, p)}`);
    await run(ctx, "patch", ["-p1", "--forward", "-i", p], { cwd: src });
  }
  // binding.gyp's layout: deps/include + deps/lib with the link names it passes to the linker.
  const link = (target: string, at: string) => symlinkSync(relative(dirname(at), target), at);
  link(join(libRoot, "tensorflow", "include"), join(src, "deps", "include"));
  for (const l of TF_LIBS) link(join(libRoot, "tensorflow", l), join(src, "deps", "lib", l));
  symlinkSync("libtensorflow_cc.so.2", join(src, "deps", "lib", "libtensorflow.so")); // -ltensorflow
  symlinkSync("libtensorflow_framework.so.2", join(src, "deps", "lib", "libtensorflow_framework.so"));

  const jobs = String(Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 2)));
  ctx.log(`native: compiling the binding with node-gyp (Node headers from ${nodeDir}/include/node, N-API 8)`);
  const t0 = performance.now();
  await run(ctx, Deno.env.get("PC_NODE") ?? "node", [
    nodeGyp,
    "rebuild",
    `--nodedir=${nodeDir}`,
    "--napi_build_version=8",
    "--module_name=tfjs_binding",
    `--module_path=${join(buildDir, "out")}`,
    "-j",
    jobs,
  ], { cwd: src, logFile: join(buildDir, "build.log") });
  if (!existsSync(out)) {
    throw new Error(`node-gyp finished but ${out} is missing; see ${join(buildDir, "build.log")}`);
  }
  ctx.log(
    `native:   built ${MB(statSync(out).size)} binding in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  await checkSymbols(ctx, out, join(libRoot, "tensorflow"));
  writeFileSync(stampFile, JSON.stringify({ key }, null, 2) + "\n");
  return { file: out, size: statSync(out).size } satisfies Built;
}

/**
 * The binding must need the wheel's SONAMEs, carry the `$ORIGIN/../../deps/lib` RUNPATH, and find every TF_/TFE_
 * symbol it imports among the two libraries' exports (`--with-symbol-versions`: the cc library tags its
 * symbols `@@tensorflow`, so a plain `nm -D | grep` of versioned names looks empty).
 */
async function checkSymbols(ctx: SetupContext, binding: string, tfDir: string) {
  let dyn: string;
  try {
    dyn = await run(ctx, "readelf", ["-d", binding]);
  } catch (e) {
    ctx.log(`native:   (symbol check skipped: ${(e as Error).message.split("\n")[0]})`);
    return;
  }
  for (const soname of TF_LIBS) {
    if (!dyn.includes(`[${soname}]`)) throw new Error(`${binding} does not need ${soname}:\n${dyn}`);
  }
  if (!dyn.includes("$ORIGIN/../../deps/lib")) {
    throw new Error(`${binding} lacks RUNPATH $ORIGIN/../../deps/lib`);
  }
  const undef = (await run(ctx, "nm", ["-D", "--undefined-only", binding])).split("\n")
    .map((l) => l.trim().split(/\s+/).pop()!.split("@")[0]).filter((s) => /^TFE?_/.test(s));
  const defined = new Map<string, string>();
  for (const lib of TF_LIBS) {
    const text = await run(ctx, "nm", ["-D", "--defined-only", "--with-symbol-versions", join(tfDir, lib)]);
    for (const line of text.split("\n")) {
      const sym = line.trim().split(/\s+/)[2];
      if (sym && /^TFE?_/.test(sym)) {
        defined.set(
          sym.split("@")[0],
          `${lib} ${sym.includes("@") ? "@" + sym.split("@").pop() : "(unversioned)"}`,
        );
      }
    }
  }
  const missing = undef.filter((s) => !defined.has(s));
  if (missing.length) {
    throw new Error(`symbols the binding needs but libtensorflow lacks: ${missing.join(", ")}`);
  }
  const owners = new Map<string, number>();
  for (const s of undef) owners.set(defined.get(s)!, (owners.get(defined.get(s)!) ?? 0) + 1);
  ctx.log(
    `native:   all ${undef.length} TF_/TFE_ imports resolve: ` +
      [...owners].map(([o, n]) => `${n} in ${o}`).join(", "),
  );
}

/** Puts the binding where tfjs-node's loader looks and links `deps/` to the cached libraries (relative links). */
function place(
  ctx: SetupContext,
  root: string,
  pkg: string,
  libRoot: string,
  built: Built,
  variant: NativeVariant,
  key: string,
): NativeInstallStamp {
  const bindingPath = nativeBindingPath(root);
  const target = join(pkg, relative(nativePackageDir(root), bindingPath)); // real path inside node_modules/.deno
  mkdirSync(dirname(target), { recursive: true });
  rmSync(target, { force: true }); // never write through a hard link
  Deno.copyFileSync(built.file, target);
  const deps = join(pkg, "deps");
  rmSync(deps, { recursive: true, force: true }); // ours: the published package has no deps/
  mkdirSync(join(deps, "lib"), { recursive: true });
  for (const l of TF_LIBS) {
    symlinkSync(relative(join(deps, "lib"), join(libRoot, "tensorflow", l)), join(deps, "lib", l));
  }
  if (variant === "gpu") {
    // glibc takes $ORIGIN from the path it opened (deps/lib), so libtensorflow's $ORIGIN/../nvidia/<lib>/lib
    // RUNPATH entries resolve to deps/nvidia: link it to the unpacked nvidia-*-cu12 wheels.
    symlinkSync(relative(deps, join(libRoot, "nvidia")), join(deps, "nvidia"));
  }
  ctx.log(`native: placed ${relative(root, bindingPath)} -> ${relative(root, target)}`);
  return { variant, tfVersion: NATIVE_TF_VERSION, key, bindingPath, bindingSize: built.size, libRoot };
}

/** Loads the backend in a child Deno (this process must not load libtensorflow) and checks the version. */
async function smokeTest(ctx: SetupContext, root: string) {
  const out = await run(ctx, Deno.execPath(), ["run", "-A", join(root, "scripts", "native", "smoke.ts")], {
    cwd: root,
  });
  const line = out.trim().split("\n").find((l) => l.startsWith("{"));
  const info = line ? JSON.parse(line) : undefined;
  if (info?.libtensorflowVersion !== NATIVE_TF_VERSION) {
    throw new Error(`load check: expected libtensorflow ${NATIVE_TF_VERSION}, got:\n${out}`);
  }
  ctx.log(
    `native: load check ok: TF ${info.libtensorflowVersion}, devices ${
      info.devices.join(", ")
    }, gpu ${info.gpu}`,
  );
}
