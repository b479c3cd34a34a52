/**
 * Mesa's software Vulkan driver (lavapipe), provisioned project-locally by scripts/setup/vulkan.ts under
 * `.cache/vulkan/`: what a process needs in its environment to run the `webgpu` backend on it (tests and CI,
 * which have no GPU). Deno's WebGPU (wgpu) `dlopen`s `libvulkan.so.1`, so the environment must be set when the
 * process starts (LD_LIBRARY_PATH is read by the dynamic loader then):
 *
 *   VK_DRIVER_FILES / VK_ICD_FILENAMES   the lavapipe ICD json, its library_path made absolute
 *   LD_LIBRARY_PATH                      the extracted loader and the libraries this machine lacked
 *   DENO_WEBGPU_BACKEND=vulkan           Deno's WebGPU: Vulkan only (not a GL software rasteriser)
 *
 * `. .cache/vulkan/env.sh` sets them in a shell. lavapipe is a software adapter: `auto` never picks it,
 * `--backend webgpu` does.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const SOFTWARE_VULKAN_DIR = ".cache/vulkan";
export const SOFTWARE_VULKAN_ENV_FILE = "env.json";

export interface SoftwareVulkan {
  /** Environment variables for a child process (LD_LIBRARY_PATH includes the caller's value when set). */
  env: Record<string, string>;
  /** The adapter the set-up saw with this environment. */
  adapter: string;
  /** Debian packages extracted (those this machine lacked). */
  packages: string[];
}

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The provisioned software Vulkan, or null with the reason when the set-up has not provided it. */
export function softwareVulkan(
  root = ROOT,
): { ok: true; value: SoftwareVulkan } | { ok: false; why: string } {
  const file = join(root, SOFTWARE_VULKAN_DIR, SOFTWARE_VULKAN_ENV_FILE);
  if (!existsSync(file)) {
    return {
      ok: false,
      why: `${SOFTWARE_VULKAN_DIR}/${SOFTWARE_VULKAN_ENV_FILE} is missing: run \`deno task setup\` ` +
        "(step vulkan, Debian/Ubuntu with apt-get and dpkg)",
    };
  }
  let v: SoftwareVulkan;
  try {
    v = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    return { ok: false, why: `${file} is corrupt (${(e as Error).message}): run \`deno task setup\` again` };
  }
  const icd = v.env?.VK_DRIVER_FILES;
  if (!icd || !existsSync(icd)) return { ok: false, why: `${file}: the driver file ${icd} is missing` };
  let ld = v.env.LD_LIBRARY_PATH ?? "";
  const outer = Deno.env.get("LD_LIBRARY_PATH");
  if (outer) ld = ld ? `${ld}:${outer}` : outer;
  return { ok: true, value: { ...v, env: { ...v.env, LD_LIBRARY_PATH: ld } } };
}

/**
 * When WebGPU found no adapter: how to use the project's lavapipe, if the set-up provided it and this process
 * was not started with its environment ("" otherwise). The environment cannot be set from inside the process
 * (the loader has read LD_LIBRARY_PATH by then), so the hint is a shell line.
 */
export function softwareVulkanHint(root = ROOT): string {
  if (Deno.env.get("VK_DRIVER_FILES") || Deno.env.get("VK_ICD_FILENAMES")) return "";
  if (!softwareVulkan(root).ok) return "";
  return `the project's software Vulkan driver (lavapipe: slow, for tests) is in ${SOFTWARE_VULKAN_DIR}; ` +
    `to use it, run \`. ${SOFTWARE_VULKAN_DIR}/env.sh\` in the shell first`;
}
