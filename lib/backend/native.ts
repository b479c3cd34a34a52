/**
 * The native `tensorflow` backend: `@tensorflow/tfjs-node-gpu@4.22.0`'s N-API binding, rebuilt by the set-up step
 * `scripts/setup/native.ts` against libtensorflow from the TensorFlow PyPI wheel (the package's own installer would
 * download libtensorflow 2.9.1 from a host that is unreachable here). See `scripts/native/README.md`.
 *
 * API (kept small; `lib/backend/mod.ts` calls it):
 * - {@link nativeBindingState}: cheap, synchronous file check: is the binding built and placed? No loading.
 * - {@link loadNativeBackend}: loads libtensorflow + the binding and registers the `tensorflow` backend into the
 *   same engine as `lib/backend/tf.ts`; throws {@link NativeBackendUnavailable} (with the command to fix it) when the
 *   binding is missing or does not load.
 * - {@link nativeGpuReport}: what the GPU route needs on this machine and what is missing (`deno task info --gpu`).
 *
 * This module has no static npm imports, so importing `lib/` never requires the native build (and the set-up step
 * can import its path helpers before `node_modules` exists).
 */
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import util from "node:util";
import { tuneNativeMalloc } from "./native_malloc.ts";

/** The npm package whose binding we rebuild (its JS is byte-identical to `@tensorflow/tfjs-node`). */
export const NATIVE_PACKAGE = "@tensorflow/tfjs-node-gpu";
export const NATIVE_PACKAGE_VERSION = "4.22.0";
/** The TensorFlow release whose PyPI wheel provides libtensorflow (`tensorflow-cpu`, or `tensorflow` for CUDA). */
export const NATIVE_TF_VERSION = "2.21.0";
/** The N-API versions the package's `binary.napi_versions` lists; the loader picks the highest <= the runtime's. */
export const PACKAGE_NAPI_VERSIONS = [3, 4, 5, 6, 7, 8];

export type NativeVariant = "cpu" | "gpu";

/** What {@link loadNativeBackend} found. */
export interface NativeBackendInfo {
  /** `TF_Version()` of the loaded libtensorflow, e.g. "2.21.0". */
  libtensorflowVersion: string;
  /** TensorFlow's device names, e.g. "/job:localhost/replica:0/task:0/device:CPU:0". */
  devices: string[];
  /** True when the binding runs ops on a GPU device (tfjs-node picks the last GPU TensorFlow lists). */
  gpu: boolean;
  /** Which wheel the binding was built against, from the set-up's stamp ("unknown" if the stamp is gone). */
  variant: NativeVariant | "unknown";
  /** Absolute path of the loaded `tfjs_binding.node`. */
  bindingPath: string;
}

/** Thrown when the native backend is not built or does not load; the message says how to get it. */
export class NativeBackendUnavailable extends Error {
  override name = "NativeBackendUnavailable";
}

/** The repository root (this file is `lib/backend/native.ts`). */
export function projectRoot(): string {
  return resolve(dirname(new URL(import.meta.url).pathname), "..", "..");
}

/** Folder of the set-up's downloads, builds and stamps. */
export function nativeCacheDir(root = projectRoot()): string {
  return join(root, ".cache", "native");
}

/** `node_modules/@tensorflow/tfjs-node-gpu` (a link into `node_modules/.deno/...` under Deno). */
export function nativePackageDir(root = projectRoot()): string {
  return join(root, "node_modules", ...NATIVE_PACKAGE.split("/"));
}

/** `napi-vN` folder that node-pre-gyp's `binary.find` picks: the highest listed version <= the runtime's N-API. */
export function napiDirName(runtimeNapi = Number(process.versions.napi ?? "0")): string {
  const usable = PACKAGE_NAPI_VERSIONS.filter((v) => v <= runtimeNapi);
  if (usable.length === 0) {
    throw new NativeBackendUnavailable(
      `this runtime reports N-API ${runtimeNapi}; ${NATIVE_PACKAGE} needs N-API >= ${
        PACKAGE_NAPI_VERSIONS[0]
      }`,
    );
  }
  return `napi-v${Math.max(...usable)}`;
}

/** Where the package's loader looks for the binding under this runtime. */
export function nativeBindingPath(root = projectRoot()): string {
  return join(nativePackageDir(root), "lib", napiDirName(), "tfjs_binding.node");
}

/** The set-up's record of what it placed into the package (`.cache/native/installed.json`). */
export interface NativeInstallStamp {
  variant: NativeVariant;
  tfVersion: string;
  key: string;
  bindingPath: string;
  bindingSize: number;
  /** Absolute path of the folder holding the wheel's `tensorflow/` (and, for GPU, `nvidia/`) trees. */
  libRoot: string;
}

export function readInstallStamp(root = projectRoot()): NativeInstallStamp | undefined {
  try {
    return JSON.parse(
      readFileSync(join(nativeCacheDir(root), "installed.json"), "utf8"),
    ) as NativeInstallStamp;
  } catch {
    return undefined;
  }
}

/** Result of {@link nativeBindingState}. */
export interface NativeBindingState {
  ok: boolean;
  bindingPath: string;
  variant?: NativeVariant;
  /** Why it is not usable (only when `ok` is false). */
  problem?: string;
}

const SETUP_HINT = "run `deno task setup` (CPU build) or `deno task setup --gpu` (CUDA 12 build); " +
  "see scripts/native/README.md";

/**
 * Cheap check (file system only, nothing loaded): is the binding built and are the libraries it links reachable?
 * Use it to decide whether `auto` may pick `tensorflow` without paying for a failed load.
 */
export function nativeBindingState(root = projectRoot()): NativeBindingState {
  let bindingPath = "";
  try {
    bindingPath = nativeBindingPath(root);
  } catch (e) {
    return { ok: false, bindingPath, problem: (e as Error).message };
  }
  if (!existsSync(nativePackageDir(root))) {
    return { ok: false, bindingPath, problem: `${NATIVE_PACKAGE} is not in node_modules` };
  }
  if (!existsSync(bindingPath)) {
    return { ok: false, bindingPath, problem: `the native binding is not built (${bindingPath} is missing)` };
  }
  const libDir = join(nativePackageDir(root), "deps", "lib");
  for (const lib of ["libtensorflow_cc.so.2", "libtensorflow_framework.so.2"]) {
    // existsSync follows the link into .cache/native: a dangling link means the cache was deleted.
    if (!existsSync(join(libDir, lib))) {
      return { ok: false, bindingPath, problem: `${join(libDir, lib)} is missing or a dangling link` };
    }
  }
  return { ok: true, bindingPath, variant: readInstallStamp(root)?.variant };
}

interface NodeBackendLike {
  binding: { TF_Version: string };
  isUsingGpuDevice: boolean;
}

let loading: Promise<NativeBackendInfo> | undefined;

/**
 * Loads the native backend once (later calls return the same promise) and makes it the active backend:
 * afterwards `tf.getBackend() === "tensorflow"` for the `tf` of `lib/backend/tf.ts`.
 * @throws NativeBackendUnavailable when the binding is not built or libtensorflow does not load.
 */
export function loadNativeBackend(): Promise<NativeBackendInfo> {
  loading ??= doLoad();
  // a failed load may be retried after the user ran the set-up
  loading.catch(() => (loading = undefined));
  return loading;
}

async function doLoad(): Promise<NativeBackendInfo> {
  const state = nativeBindingState();
  if (!state.ok) {
    throw new NativeBackendUnavailable(
      `native tensorflow backend unavailable: ${state.problem}; ${SETUP_HINT}`,
    );
  }
  // tfjs-node 4.22 calls util.isNullOrUndefined, which Node 23+ (and so Deno 2.9's node:util) removed.
  const u = util as unknown as Record<string, unknown>;
  if (typeof u.isNullOrUndefined !== "function") {
    u.isNullOrUndefined = (v: unknown) => v === null || v === undefined;
  }
  // libtensorflow reads this once, at its first log line; unless the user chose, hide INFO (oneDNN, CPU feature
  // guard) and WARNING lines: every partial run of a graph step (lib/train/graph_step.ts) ends with a warning
  // "Local rendezvous is aborting with status: CANCELLED: PRun cancellation" although it completed. Errors reach
  // us as TF_Status messages either way.
  if (Deno.env.get("TF_CPP_MIN_LOG_LEVEL") === undefined) Deno.env.set("TF_CPP_MIN_LOG_LEVEL", "2");

  const { tf } = await import("./tf.ts");
  // before libtensorflow allocates anything: reuse freed tensor memory (./native_malloc.ts; `deno task info`
  // prints what it did)
  tuneNativeMalloc();
  try {
    // Registers the `tensorflow` backend (priority 3) and selects it, in the global engine that the umbrella
    // @tensorflow/tfjs shares (tfjs-core keeps engine and registries on the global object).
    await import("@tensorflow/tfjs-node-gpu");
  } catch (e) {
    throw new NativeBackendUnavailable(
      `native tensorflow backend failed to load (${state.bindingPath}): ${(e as Error).message}; ` +
        `re-run the set-up to rebuild it: ${SETUP_HINT}`,
    );
  }
  if (!(await tf.setBackend("tensorflow")) || tf.getBackend() !== "tensorflow") {
    throw new NativeBackendUnavailable(
      "the tensorflow backend did not register in the engine of lib/backend/tf.ts",
    );
  }
  const backend = tf.backend() as unknown as NodeBackendLike;
  const version = backend.binding.TF_Version;
  return {
    libtensorflowVersion: version,
    devices: listDevices(backend.isUsingGpuDevice),
    gpu: backend.isUsingGpuDevice,
    variant: state.variant ?? "unknown",
    bindingPath: realpathSync(state.bindingPath),
  };
}

/**
 * TensorFlow's device list through the C API (the binding does not expose it): a second, short-lived eager
 * context on the already loaded libtensorflow. Falls back to the device type the binding uses.
 */
function listDevices(gpu: boolean): string[] {
  const lib = join(nativePackageDir(), "deps", "lib", "libtensorflow_cc.so.2");
  let dl: Deno.DynamicLibrary<typeof TF_DEVICE_SYMBOLS> | undefined;
  try {
    dl = Deno.dlopen(lib, TF_DEVICE_SYMBOLS);
    const s = dl.symbols;
    const status = s.TF_NewStatus();
    const opts = s.TFE_NewContextOptions();
    const ctx = s.TFE_NewContext(opts, status);
    const out: string[] = [];
    if (s.TF_GetCode(status) === 0 && ctx) {
      const list = s.TFE_ContextListDevices(ctx, status);
      const n = list ? s.TF_DeviceListCount(list) : 0;
      for (let i = 0; i < n; i++) {
        const name = s.TF_DeviceListName(list, i, status);
        if (name) out.push(Deno.UnsafePointerView.getCString(name));
      }
      if (list) s.TF_DeleteDeviceList(list);
      s.TFE_DeleteContext(ctx);
    }
    s.TFE_DeleteContextOptions(opts);
    s.TF_DeleteStatus(status);
    if (out.length > 0) return out;
  } catch {
    // no --allow-ffi, or an unexpected library: fall through
  } finally {
    dl?.close();
  }
  return gpu ? ["CPU:0", "GPU:0"] : ["CPU:0"];
}

const TF_DEVICE_SYMBOLS = {
  TF_NewStatus: { parameters: [], result: "pointer" },
  TF_DeleteStatus: { parameters: ["pointer"], result: "void" },
  TF_GetCode: { parameters: ["pointer"], result: "i32" },
  TFE_NewContextOptions: { parameters: [], result: "pointer" },
  TFE_DeleteContextOptions: { parameters: ["pointer"], result: "void" },
  TFE_NewContext: { parameters: ["pointer", "pointer"], result: "pointer" },
  TFE_DeleteContext: { parameters: ["pointer"], result: "void" },
  TFE_ContextListDevices: { parameters: ["pointer", "pointer"], result: "pointer" },
  TF_DeviceListCount: { parameters: ["pointer"], result: "i32" },
  TF_DeviceListName: { parameters: ["pointer", "i32", "pointer"], result: "pointer" },
  TF_DeleteDeviceList: { parameters: ["pointer"], result: "void" },
} as const;

/** CUDA 12 wheels that `tensorflow[and-cuda]==2.21.0` requires, by their folder under `site-packages/nvidia/`. */
export const NVIDIA_CU12_PACKAGES: Record<string, string> = {
  "nvidia-cublas-cu12": "cublas",
  "nvidia-cuda-cupti-cu12": "cuda_cupti",
  "nvidia-cuda-nvcc-cu12": "cuda_nvcc",
  "nvidia-cuda-nvrtc-cu12": "cuda_nvrtc",
  "nvidia-cuda-runtime-cu12": "cuda_runtime",
  "nvidia-cudnn-cu12": "cudnn",
  "nvidia-cufft-cu12": "cufft",
  "nvidia-curand-cu12": "curand",
  "nvidia-cusolver-cu12": "cusolver",
  "nvidia-cusparse-cu12": "cusparse",
  "nvidia-nccl-cu12": "nccl",
  "nvidia-nvjitlink-cu12": "nvjitlink",
};

const CUDA_SYMBOLS = {
  cuInit: { parameters: ["u32"], result: "i32" },
  cuDriverGetVersion: { parameters: ["buffer"], result: "i32" },
  cuDeviceGetCount: { parameters: ["buffer"], result: "i32" },
  cuDeviceGet: { parameters: ["buffer", "i32"], result: "i32" },
  cuDeviceGetName: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  cuDeviceGetAttribute: { parameters: ["buffer", "i32", "i32"], result: "i32" },
} as const;

/** The NVIDIA driver as TensorFlow would find it: `dlopen("libcuda.so.1")`, then the driver API. */
function probeDriver(): { ok: boolean; text: string } {
  let dl: Deno.DynamicLibrary<typeof CUDA_SYMBOLS> | undefined;
  try {
    dl = Deno.dlopen("libcuda.so.1", CUDA_SYMBOLS);
  } catch (e) {
    const where = existsSync("/proc/driver/nvidia/version") ? "the kernel module is loaded but " : "";
    return {
      ok: false,
      text: `no NVIDIA driver: ${where}libcuda.so.1 cannot be loaded (${
        (e as Error).message.split("\n")[0].replace(/^(Could not open library: )+/, "")
      })`,
    };
  }
  try {
    const s = dl.symbols;
    const i32 = new Int32Array(1);
    const rc = s.cuInit(0);
    if (rc !== 0) return { ok: false, text: `libcuda.so.1 loads but cuInit failed with CUDA error ${rc}` };
    s.cuDriverGetVersion(i32);
    const driver = `${Math.floor(i32[0] / 1000)}.${(i32[0] % 1000) / 10}`;
    s.cuDeviceGetCount(i32);
    const count = i32[0];
    const gpus: string[] = [];
    for (let i = 0; i < count; i++) {
      const dev = new Int32Array(1);
      s.cuDeviceGet(dev, i);
      const name = new Uint8Array(256);
      s.cuDeviceGetName(name, name.length, dev[0]);
      const major = new Int32Array(1), minor = new Int32Array(1);
      s.cuDeviceGetAttribute(major, 75, dev[0]); // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
      s.cuDeviceGetAttribute(minor, 76, dev[0]);
      gpus.push(`${new TextDecoder().decode(name).replace(/\0.*$/s, "")} (sm_${major[0]}${minor[0]})`);
    }
    const ok = count > 0 && Number(driver.split(".")[0]) >= 12;
    return {
      ok,
      text: `NVIDIA driver supports CUDA ${driver}; ${count} GPU(s)${count ? ": " + gpus.join(", ") : ""}` +
        (Number(driver.split(".")[0]) < 12
          ? " — TensorFlow 2.21's CUDA 12 build needs a driver for CUDA >= 12"
          : ""),
    };
  } finally {
    dl.close();
  }
}

/**
 * Says, line by line, what the GPU route (tfjs-node-gpu on TensorFlow 2.21's CUDA 12 build with the `nvidia-*-cu12`
 * wheels) has and lacks on this machine. Never throws; loads nothing but `libcuda.so.1` (if present).
 */
export function nativeGpuReport(root = projectRoot()): Promise<string> {
  const lines: string[] = [];
  const missing: string[] = [];
  const mark = (ok: boolean, text: string) => {
    lines.push(`  [${ok ? "ok" : "missing"}] ${text}`);
    if (!ok) missing.push(text);
  };

  const driver = probeDriver();
  mark(driver.ok, driver.text);
  const smi = ["/usr/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi"].find((p) => existsSync(p));
  lines.push(
    `  [info] nvidia-smi: ${smi ?? "not found"}; /dev/nvidia0: ${
      existsSync("/dev/nvidia0") ? "present" : "absent"
    }`,
  );

  const state = nativeBindingState(root);
  const stamp = readInstallStamp(root);
  if (!state.ok) {
    mark(false, `native binding: ${state.problem}`);
  } else if (stamp?.variant !== "gpu") {
    mark(
      false,
      `CUDA-enabled libtensorflow: the binding is built against the CPU-only tensorflow-cpu wheel` +
        ` — run \`deno task setup --gpu\` (downloads tensorflow==${NATIVE_TF_VERSION}, ~570 MB, and the CUDA 12 wheels, ~3 GB)`,
    );
  } else {
    mark(true, `CUDA-enabled libtensorflow ${stamp.tfVersion} (tensorflow wheel) under ${stamp.libRoot}`);
  }

  const gpuRoot = stamp?.variant === "gpu"
    ? stamp.libRoot
    : join(nativeCacheDir(root), `tf-${NATIVE_TF_VERSION}-gpu`);
  const absent: string[] = [];
  for (const [pkg, dir] of Object.entries(NVIDIA_CU12_PACKAGES)) {
    const libDir = join(gpuRoot, "nvidia", dir); // cuda_nvcc has bin/ + nvvm/, the others lib/
    let found = false;
    try {
      found = statSync(libDir).isDirectory();
    } catch { /* absent */ }
    if (!found) absent.push(pkg);
  }
  mark(
    absent.length === 0,
    absent.length === 0
      ? `CUDA 12 libraries from PyPI: all ${
        Object.keys(NVIDIA_CU12_PACKAGES).length
      } nvidia-*-cu12 wheels unpacked`
      : `CUDA 12 libraries from PyPI: ${absent.length} of ${
        Object.keys(NVIDIA_CU12_PACKAGES).length
      } wheels absent ` +
        `(${absent.join(", ")}) — \`deno task setup --gpu\` fetches them`,
  );
  const nvLink = join(nativePackageDir(root), "deps", "nvidia");
  if (stamp?.variant === "gpu") {
    mark(
      existsSync(join(nvLink, "cudnn")),
      `${nvLink} -> nvidia/ link (found through libtensorflow's $ORIGIN/../nvidia RUNPATH)`,
    );
  }

  const verdict = missing.length === 0
    ? "GPU route: ready (loadNativeBackend() reports gpu: true once TensorFlow opens the device)"
    : `GPU route: not usable here (${missing.length} missing)`;
  return Promise.resolve(
    ["GPU route (tfjs-node-gpu on TensorFlow " + NATIVE_TF_VERSION + " + CUDA 12 wheels):", ...lines, verdict]
      .join("\n"),
  );
}
