/**
 * `deno task info [--gpu] [--backend NAME]`: versions (Deno, TensorFlow.js, libtensorflow), the backend that
 * `auto` chooses here (as `backend: <name>`; or the one --backend / PC_BACKEND asks for), and every backend
 * with why it is or is not available. `--gpu` adds the native backend's GPU report.
 */
import { parseArgs } from "node:util";
import { tf } from "../backend/tf.ts";
import {
  BACKEND_NAMES,
  type BackendAvailability,
  initBackend,
  probeBackend,
  resolveBackendRequest,
  wasmKernelPatches,
} from "../backend/mod.ts";
import { tuneNativeMalloc } from "../backend/native_malloc.ts";
import { runCli } from "./common.ts";

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      gpu: { type: "boolean", default: false },
      backend: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log("usage: deno task info [--gpu] [--backend tensorflow|webgpu|wasm|cpu|auto]");
    return 0;
  }
  const { request, source } = resolveBackendRequest({ flag: values.backend });

  console.log(`deno: ${Deno.version.deno} (V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript})`);
  const v = tf.version as Record<string, string>;
  console.log(`tensorflow.js: ${v.tfjs} (tfjs-core ${v["tfjs-core"]})`);

  // 1. the selection (may load the native library; it must load before anything touches WebGPU)
  let chosen: string;
  let libtf: string | undefined;
  try {
    const info = await initBackend(request, { quiet: true });
    chosen = info.name;
    libtf = info.libtensorflowVersion;
    console.log(`backend: ${info.name}`);
    console.log(
      `  ${request === "auto" ? "auto" : `${request} (${source})`}: ${info.detail}; ${info.reason}`,
    );
  } catch (e) {
    console.log(`backend: none`);
    console.log(`  ${request} (${source}) failed: ${(e as Error).message}`);
    chosen = "none";
  }

  // 2. libtensorflow's version, even when another backend was chosen
  const native = await probeBackend("tensorflow");
  if (!libtf && native.available) {
    try {
      libtf = (await initBackend("tensorflow", { quiet: true })).libtensorflowVersion;
      if (chosen !== "none") await initBackend(chosen as "wasm", { quiet: true });
    } catch (e) {
      libtf = `not loadable: ${(e as Error).message}`;
    }
  }
  console.log(`libtensorflow: ${libtf ?? `not available (${native.detail})`}`);
  // what loading it did to glibc malloc (lib/backend/native_malloc.ts; applied once, this reads the result)
  if (native.available) console.log(tuneNativeMalloc());

  // 3. every backend (this requests a WebGPU adapter, so it comes after the native load)
  console.log("backends:");
  const probes: BackendAvailability[] = [];
  for (const name of BACKEND_NAMES) probes.push(await probeBackend(name));
  for (const p of probes) {
    const state = !p.available ? "unavailable" : p.autoEligible ? "available" : "available (explicit only)";
    console.log(`  ${p.name.padEnd(11)}${state.padEnd(26)}${p.detail}`);
  }
  const patches = wasmKernelPatches();
  if (patches.length > 0) {
    console.log(`wasm kernels added or replaced: ${patches.map((p) => `${p.kernel} (${p.how})`).join(", ")}`);
  }

  if (values.gpu) {
    const mod = await import("../backend/native.ts");
    console.log(await mod.nativeGpuReport());
  }
  return chosen === "none" ? 1 : 0;
}

if (import.meta.main) await runCli(main);
