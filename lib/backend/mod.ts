/**
 * Backend selection: `tensorflow` (native libtensorflow through tfjs-node's binding), `webgpu`, `wasm`
 * (XNNPACK, SIMD; made able to train by ./wasm_grads.ts) and `cpu` (pure JS, slow).
 *
 *   const info = await initBackend();                  // PC_BACKEND, else "auto"
 *   const info = await initBackend(resolveBackendRequest({ flag, config: cfg.backend }).request);
 *
 * `auto` picks the fastest backend that works, in the order tensorflow > webgpu (only on a hardware adapter,
 * never a software fallback such as llvmpipe) > wasm > cpu, and prints one line (stderr) saying which and why.
 * An explicit request for a backend that is not available throws an Error that says how to get it.
 */
import { tf } from "./tf.ts";
import { registerWasmGradients, type WasmKernelPatch } from "./wasm_grads.ts";
import { registerResizeBilinearGrad } from "./resize.ts";
import { registerMissingGradients } from "./gradients.ts";
import { registerNativeKernelFixes } from "./native_kernels.ts";
import { registerFusedGradients, registerNativeFusedKernels } from "./native_fused.ts";
import { registerNativeBf16Kernels } from "./native_bf16.ts";
import { installBackpropMemoryRelease } from "./backprop_memory.ts";
import { softwareVulkanHint } from "./software_vulkan.ts";

export type BackendName = "tensorflow" | "wasm" | "webgpu" | "cpu";
export type BackendRequest = BackendName | "auto";

/** All backends, in the order `auto` tries them. */
export const BACKEND_NAMES: readonly BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];
const REQUESTS: readonly string[] = [...BACKEND_NAMES, "auto"];

export interface BackendInfo {
  name: BackendName;
  /** Why this backend: the request that chose it and, for `auto`, why faster ones were passed over. */
  reason: string;
  /** What was asked for. */
  requested: BackendRequest;
  /** One-line description of the running backend (threads, SIMD, adapter, library version). */
  detail: string;
  /** libtensorflow's version when `name` is "tensorflow". */
  libtensorflowVersion?: string;
}

/** Whether a backend can run here, without making it the active one. */
export interface BackendAvailability {
  name: BackendName;
  available: boolean;
  /** True when `auto` may choose it (false e.g. for WebGPU on a software adapter). */
  autoEligible: boolean;
  /** What it runs on, or why it is not available and how to get it. */
  detail: string;
}

/** Where a backend request came from, for error messages. */
export type RequestSource =
  | "flag --backend"
  | "environment variable PC_BACKEND"
  | "config key backend"
  | "default";

/** Validates a backend name from any source; the error names the source and the accepted values. */
export function parseBackendRequest(
  value: string,
  source: RequestSource | string = "backend",
): BackendRequest {
  const v = value.trim().toLowerCase();
  if (!REQUESTS.includes(v)) {
    throw new Error(`${source}: unknown backend '${value}' (expected one of ${REQUESTS.join(", ")})`);
  }
  return v as BackendRequest;
}

/** The PC_BACKEND environment variable, validated; `fallback` when unset or empty. */
export function backendFromEnv(fallback: BackendRequest = "auto"): BackendRequest {
  const v = Deno.env.get("PC_BACKEND");
  return v ? parseBackendRequest(v, "environment variable PC_BACKEND") : fallback;
}

/** `--backend NAME` or `--backend=NAME` from a command line, validated; undefined when absent. */
export function backendFromArgs(args: readonly string[]): BackendRequest | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--backend") {
      if (i + 1 >= args.length) throw new Error("flag --backend: missing value");
      return parseBackendRequest(args[i + 1], "flag --backend");
    }
    if (a.startsWith("--backend=")) {
      return parseBackendRequest(a.slice("--backend=".length), "flag --backend");
    }
  }
  return undefined;
}

/**
 * Precedence: CLI flag > PC_BACKEND > config key > "auto". Each present value is validated.
 * `flag` may be the raw flag value or the whole argument list.
 */
export function resolveBackendRequest(
  opts: { flag?: string | readonly string[]; config?: string; env?: boolean } = {},
): { request: BackendRequest; source: RequestSource } {
  const flag = Array.isArray(opts.flag)
    ? backendFromArgs(opts.flag)
    : typeof opts.flag === "string"
    ? parseBackendRequest(opts.flag, "flag --backend")
    : undefined;
  if (flag) return { request: flag, source: "flag --backend" };
  if (opts.env !== false && Deno.env.get("PC_BACKEND")) {
    return { request: backendFromEnv(), source: "environment variable PC_BACKEND" };
  }
  if (opts.config) {
    return { request: parseBackendRequest(opts.config, "config key backend"), source: "config key backend" };
  }
  return { request: "auto", source: "default" };
}

// ---------------------------------------------------------------------------------------------------------
// Probing

const SOFTWARE_ADAPTER =
  /llvmpipe|lavapipe|softpipe|swiftshader|swrast|software|microsoft basic render|warp/i;

interface AdapterFacts {
  adapter?: GPUAdapter;
  description: string;
  software: boolean;
}

let adapterFacts: Promise<AdapterFacts> | undefined;
/** Set once WebGPU asked the driver for an adapter (which may load Mesa's LLVM into the process). */
let webgpuTouched = false;
let nativeLoaded = false;
/**
 * Seen here: libtensorflow segfaults on load once Mesa (llvmpipe, via Deno's WebGPU) has put its LLVM into the
 * process; the other order works. So the native backend is tried first and refused after WebGPU was touched.
 */
const WEBGPU_FIRST =
  "not loadable in this process: WebGPU was initialised first (Mesa's LLVM and libtensorflow " +
  "clash); start a fresh process and select tensorflow before anything touches WebGPU";

/** What Deno's WebGPU (wgpu) offers: the default adapter, described, and whether it is a software fallback. */
function webgpuAdapter(): Promise<AdapterFacts> {
  adapterFacts ??= (async () => {
    webgpuTouched = true;
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) return { description: "navigator.gpu is not exposed by this runtime", software: false };
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      return { description: `requestAdapter failed: ${(e as Error).message}`, software: false };
    }
    if (!adapter) {
      const hint = softwareVulkanHint();
      return {
        description: `no WebGPU adapter (no Vulkan/GL driver for a GPU)${hint ? `; ${hint}` : ""}`,
        software: false,
      };
    }
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
    const name = [info.description, info.device, info.vendor, info.architecture]
      .filter((s) => s && !/^\d+$/.test(s)).join(" / ");
    const software = info.isFallbackAdapter === true || legacy === true ||
      SOFTWARE_ADAPTER.test(`${info.description} ${info.device} ${info.architecture}`);
    return { adapter, description: name || "unnamed adapter", software };
  })();
  return adapterFacts;
}

type NativeModule = typeof import("./native.ts");
let nativeMod: Promise<NativeModule | undefined> | undefined;

/** lib/backend/native.ts, if present (it is optional in a checkout that lacks the native work). */
function nativeModule(): Promise<NativeModule | undefined> {
  nativeMod ??= (async () => {
    try {
      Deno.statSync(new URL("./native.ts", import.meta.url));
    } catch {
      return undefined;
    }
    return await import("./native.ts");
  })();
  return nativeMod;
}

const SETUP_HINT = "run `deno task setup` to build it";

/**
 * Whether one backend can run here, without making it the active one. Cheap for tensorflow (a file check;
 * the library is not loaded), wasm and cpu; for webgpu it requests an adapter.
 */
export async function probeBackend(name: BackendName): Promise<BackendAvailability> {
  switch (name) {
    case "tensorflow": {
      const native = await nativeModule();
      if (!native) {
        return { name, available: false, autoEligible: false, detail: "lib/backend/native.ts is absent" };
      }
      const st = native.nativeBindingState();
      const blocked = st.ok && webgpuTouched && !nativeLoaded ? WEBGPU_FIRST : undefined;
      return {
        name,
        available: st.ok && !blocked,
        autoEligible: st.ok && !blocked,
        detail: blocked ??
          (st.ok
            ? `native binding (${st.variant ?? "unknown"} build) at ${st.bindingPath}`
            : `${st.problem}; ${SETUP_HINT}`),
      };
    }
    case "webgpu": {
      const gpu = await webgpuAdapter();
      return {
        name,
        available: gpu.adapter !== undefined,
        autoEligible: gpu.adapter !== undefined && !gpu.software,
        detail: gpu.adapter
          ? gpu.software
            ? `software adapter "${gpu.description}": used only when asked for explicitly, never by auto`
            : `adapter "${gpu.description}"`
          : `${gpu.description}; needs a GPU with a Vulkan driver`,
      };
    }
    case "wasm": {
      const ok = typeof WebAssembly === "object";
      const simd = ok && WebAssembly.validate(SIMD_PROBE);
      return {
        name,
        available: ok,
        autoEligible: ok,
        detail: ok
          ? `XNNPACK ${
            simd ? "SIMD" : "without SIMD"
          }, 1 thread; training kernels added by lib/backend/wasm_grads.ts`
          : "WebAssembly is not available in this runtime",
      };
    }
    case "cpu":
      return { name, available: true, autoEligible: true, detail: "pure JavaScript (slow reference)" };
  }
}

/** A tiny module with one SIMD instruction (same probe as tfjs-backend-wasm's WASM_HAS_SIMD_SUPPORT). */
const SIMD_PROBE = Uint8Array.from(atob("AGFzbQEAAAABBAFgAAADAgEACgkBBwBBAP0PGgs="), (c) => c.charCodeAt(0));

// ---------------------------------------------------------------------------------------------------------
// Initialisation

let wasmPatches: WasmKernelPatch[] | undefined;

/** The kernels registered for wasm by lib/backend/wasm_grads.ts (empty until wasm was initialised). */
export function wasmKernelPatches(): readonly WasmKernelPatch[] {
  return wasmPatches ?? [];
}

const fixedResize = new Set<string>();

/**
 * Kernel and gradient fixes every backend gets, once its package has registered its own kernels: the
 * ResizeBilinearGrad that honours halfPixelCenters (./resize.ts), the gradients TF.js lacks
 * (./gradients.ts), early freeing in the backward pass (./backprop_memory.ts), an output-saving Relu gradient and,
 * on tensorflow, conv backprops with explicit padding (./native_kernels.ts), fused BatchNorm/ReluGrad
 * kernels (./native_fused.ts) and the bf16 wrappers of the conv and matmul kernels (./native_bf16.ts).
 */
function patchBackend(name: BackendName): void {
  registerMissingGradients();
  // PC_PERF_FIXES=0 leaves out the train-step speed-ups (for before/after measurements: bench/train.ts)
  const perf = (() => {
    try {
      return Deno.env.get("PC_PERF_FIXES") !== "0";
    } catch {
      return true; // no --allow-env
    }
  })();
  if (perf) {
    registerFusedGradients();
    installBackpropMemoryRelease();
  }
  if (name === "tensorflow") {
    registerNativeKernelFixes();
    if (perf) registerNativeFusedKernels();
    registerNativeBf16Kernels(); // wraps the fixed conv kernels: after registerNativeKernelFixes
  }
  if (!fixedResize.has(name)) {
    registerResizeBilinearGrad(name);
    fixedResize.add(name);
  }
}

/** Makes `name` the active backend or throws an Error saying why and how to get it. */
async function activate(name: BackendName): Promise<{ detail: string; libtensorflowVersion?: string }> {
  const out = await activateRaw(name);
  patchBackend(name);
  return out;
}

async function activateRaw(name: BackendName): Promise<{ detail: string; libtensorflowVersion?: string }> {
  switch (name) {
    case "tensorflow": {
      const native = await nativeModule();
      if (!native) {
        throw new Error(
          "backend 'tensorflow' is not available: lib/backend/native.ts is missing from this checkout",
        );
      }
      if (webgpuTouched && !nativeLoaded) {
        throw new Error(`backend 'tensorflow' is ${WEBGPU_FIRST}`);
      }
      let info;
      try {
        info = await native.loadNativeBackend();
      } catch (e) {
        throw new Error(`backend 'tensorflow' is not available: ${(e as Error).message}`);
      }
      nativeLoaded = true;
      await switchTo("tensorflow");
      return {
        detail: `libtensorflow ${info.libtensorflowVersion} on ${info.gpu ? "GPU" : "CPU"} (${
          info.devices.join(", ")
        })`,
        libtensorflowVersion: info.libtensorflowVersion,
      };
    }
    case "webgpu": {
      const gpu = await webgpuAdapter();
      if (!gpu.adapter) {
        throw new Error(
          `backend 'webgpu' is not available: ${gpu.description}. It needs a GPU with a Vulkan driver ` +
            "(e.g. the vendor driver, or Mesa: apt-get install mesa-vulkan-drivers); use --backend wasm meanwhile",
        );
      }
      // our factory (./webgpu.ts): the package's own one fails under Deno; the probed adapter is used once
      const { registerWebGPUBackend } = await import("./webgpu.ts");
      let probed: GPUAdapter | undefined = gpu.adapter;
      registerWebGPUBackend(async () => {
        const a = probed;
        probed = undefined;
        return a ?? await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
      });
      await switchTo("webgpu");
      return { detail: `adapter "${gpu.description}"${gpu.software ? " (software fallback: slow)" : ""}` };
    }
    case "wasm": {
      if (typeof WebAssembly !== "object") {
        throw new Error("backend 'wasm' is not available: this runtime has no WebAssembly");
      }
      await import("@tensorflow/tfjs-backend-wasm");
      wasmPatches = registerWasmGradients();
      await switchTo("wasm");
      const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
      return {
        detail: `XNNPACK ${simd ? "SIMD" : "no SIMD"}, 1 thread, ${wasmPatches.length} kernels added`,
      };
    }
    case "cpu": {
      await switchTo("cpu");
      // its first write prints a banner recommending tfjs-node; the native backend is our answer to that
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return { detail: "pure JavaScript" };
    }
  }
}

async function switchTo(name: BackendName): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    throw new Error(`backend '${name}' failed to initialise: ${(e as Error).message}`);
  }
  if (!ok || tf.getBackend() !== name) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
}

const done = new Map<BackendRequest, BackendInfo>();

/**
 * Selects and initialises the backend. Explicit names fail with a message saying how to get them; `auto`
 * prints one line to stderr (unless `log` is given or `quiet`). Calling again is cheap and re-activates the
 * backend chosen before for the same request.
 */
export async function initBackend(
  request: BackendRequest = backendFromEnv(),
  opts: { quiet?: boolean; log?: (line: string) => void } = {},
): Promise<BackendInfo> {
  request = parseBackendRequest(request, "initBackend");
  const known = done.get(request);
  if (known) {
    if (tf.getBackend() !== known.name) await switchTo(known.name);
    return known;
  }
  let info: BackendInfo;
  if (request !== "auto") {
    const a = await activate(request);
    info = { name: request, requested: request, reason: "requested explicitly", ...a };
  } else {
    const passed: string[] = [];
    let chosen: BackendInfo | undefined;
    // probe one at a time: the native library must load before anything touches WebGPU
    for (const name of BACKEND_NAMES) {
      const p = await probeBackend(name);
      if (!p.autoEligible) {
        passed.push(`${p.name}: ${shorten(p.detail)}`);
        continue;
      }
      try {
        const a = await activate(p.name);
        chosen = { name: p.name, requested: "auto", reason: "", ...a };
        break;
      } catch (e) {
        passed.push(`${p.name}: ${shorten((e as Error).message)}`);
      }
    }
    if (!chosen) throw new Error(`no backend could be initialised (${passed.join("; ")})`);
    chosen.reason = passed.length
      ? `fastest that works here; passed over ${passed.join("; ")}`
      : "fastest available";
    info = chosen;
    const line = `[backend] auto -> ${info.name} (${info.detail}); ${info.reason}`;
    if (opts.log) opts.log(line);
    else if (!opts.quiet) console.error(line);
  }
  done.set(request, info);
  return info;
}

function shorten(s: string): string {
  return s.replace(/^backend '[a-z]+' is not available: /, "").split("\n")[0];
}
