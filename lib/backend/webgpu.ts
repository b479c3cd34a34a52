/**
 * Our registration of TF.js' `webgpu` backend, made to work under Deno's WebGPU (wgpu).
 *
 * tfjs-backend-webgpu 4.22 registers a factory that (a) asks for `requiredFeatures: [..., ['bgra8unorm-storage']]`
 * (an array inside the list, which Deno's WebIDL conversion rejects) and (b) reads `adapter.info` after
 * `requestDevice`, when Deno has already consumed the adapter (tfjs issue 8518; Deno issues 25874, 28135).
 * The package exports `WebGPUBackend`, so we replace that factory with one that reads the adapter's facts
 * first and asks for plain string features. Nothing else of the backend changes.
 *
 * Its synchronous read-back (`dataSync`) draws through a 2D OffscreenCanvas, which Deno does not have; the
 * train step, the evaluation and the checkpoints read asynchronously. A synchronous read of data that lives on
 * the GPU is turned into an Error that says so (instead of a ReferenceError deep inside the backend).
 */
import { tf } from "./tf.ts";
import { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** What the backend and our logs need from the adapter, copied before `requestDevice` consumes it. */
export interface AdapterFacts {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** Plain copy of `adapter.info` (call before `requestDevice`). */
export function adapterFacts(adapter: GPUAdapter): AdapterFacts {
  const i = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: i.vendor ?? "",
    architecture: i.architecture ?? "",
    device: i.device ?? "",
    description: i.description ?? "",
    isFallbackAdapter: i.isFallbackAdapter === true || legacy === true,
  };
}

/** Features tfjs-backend-webgpu uses when the adapter has them (as strings). */
const WANTED_FEATURES: readonly GPUFeatureName[] = ["timestamp-query", "bgra8unorm-storage"];

/** The device descriptor tfjs-backend-webgpu builds, with its features as plain strings. */
export function deviceDescriptor(adapter: GPUAdapter): GPUDeviceDescriptor {
  const l = adapter.limits;
  return {
    requiredFeatures: WANTED_FEATURES.filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    },
  };
}

const SYNC_READ =
  "webgpu: a synchronous read-back (dataSync/arraySync/bufferSync) of data on the GPU was attempted; " +
  "TF.js draws it through a 2D OffscreenCanvas, which this runtime does not have. Read with `await tensor.data()`.";

let registered = false;

/**
 * Replaces the package's `webgpu` factory by ours (idempotent). The backend is created on the first
 * `tf.setBackend("webgpu")`; `requestAdapter` then returns the adapter to use (a fresh one: Deno hands a
 * device out once per adapter).
 */
export function registerWebGPUBackend(
  requestAdapter: () => Promise<GPUAdapter | null> = () =>
    navigator.gpu.requestAdapter({ powerPreference: "high-performance" }),
): void {
  if (registered) return;
  if (tf.findBackendFactory("webgpu")) tf.removeBackend("webgpu");
  tf.registerBackend("webgpu", async () => {
    const adapter = await requestAdapter();
    if (!adapter) throw new Error("webgpu: no WebGPU adapter");
    const facts = adapterFacts(adapter); // before requestDevice: Deno invalidates the adapter then
    const device = await adapter.requestDevice(deviceDescriptor(adapter));
    const backend = new WebGPUBackend(device, facts as unknown as GPUAdapterInfo);
    guardSyncReads(backend);
    return backend;
  }, 3);
  registered = true;
}

/** Whether this runtime can draw on a 2D OffscreenCanvas (Deno 2.9 has the class, but no "2d" context). */
function has2dCanvas(): boolean {
  const C =
    (globalThis as { OffscreenCanvas?: new (w: number, h: number) => { getContext(t: string): unknown } })
      .OffscreenCanvas;
  try {
    return C !== undefined && new C(1, 1).getContext("2d") != null;
  } catch {
    return false;
  }
}

/** Makes a synchronous read of GPU data fail with a clear message where no 2D canvas exists (Deno). */
function guardSyncReads(backend: WebGPUBackend): void {
  if (has2dCanvas()) return;
  const b = backend as unknown as {
    readSync(dataId: object): unknown;
    tensorMap: { get(dataId: object): { values: unknown; dtype: string } | undefined };
  };
  const readSync = b.readSync.bind(backend);
  b.readSync = (dataId: object) => {
    const d = b.tensorMap.get(dataId);
    // values already on the CPU (uploads, CPU-forwarded ops, earlier async reads) are fine
    if (d && d.values == null && d.dtype !== "string" && d.dtype !== "complex64") throw new Error(SYNC_READ);
    return readSync(dataId);
  };
}
