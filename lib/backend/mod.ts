/**
 * Backend selection (placeholder API; the foundation work fleshes this out).
 *
 *   const info = await initBackend("auto");  // or "tensorflow" | "wasm" | "webgpu" | "cpu"
 *
 * The name can also come from the PC_BACKEND environment variable (see `backendFromEnv`).
 */
import { tf } from "./tf.ts";

export type BackendName = "tensorflow" | "wasm" | "webgpu" | "cpu";
export type BackendRequest = BackendName | "auto";

export interface BackendInfo {
  name: BackendName;
  reason: string;
}

export function backendFromEnv(fallback: BackendRequest = "auto"): BackendRequest {
  return (Deno.env.get("PC_BACKEND") as BackendRequest | undefined) ?? fallback;
}

export async function initBackend(request: BackendRequest = backendFromEnv()): Promise<BackendInfo> {
  const name: BackendName = request === "auto" ? "cpu" : request;
  if (name === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' could not be initialised`);
  await tf.ready();
  return { name, reason: "placeholder selection" };
}
