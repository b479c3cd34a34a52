/** The project-local lavapipe: dependency resolution of the set-up step and the environment it leaves. */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { join } from "node:path";
import { libDependencies } from "../../scripts/setup/vulkan.ts";
import { softwareVulkan, softwareVulkanHint } from "../../lib/backend/software_vulkan.ts";

Deno.test("vulkan set-up: follows lib* dependencies (alternatives, pre-depends), not virtual or tool packages", () => {
  // `apt-cache depends --no-recommends --no-suggests mesa-vulkan-drivers libvulkan1` on Debian 12
  const text = `mesa-vulkan-drivers
  Depends: libvulkan1
 |Depends: <python3:any>
    python3
  Depends: <python3-minimal:any>
    python3-minimal
  Depends: libc6
  PreDepends: libzstd1
  Depends: libllvm15
  Depends: libx11-xcb1:any
libvulkan1
  Depends: libc6
  Breaks: libvulkan-dev
  Replaces: libvulkan-dev
`;
  assertEquals(libDependencies(text), [
    "libvulkan1",
    "libc6",
    "libzstd1",
    "libllvm15",
    "libx11-xcb1",
    "libc6",
  ]);
});

Deno.test("softwareVulkan: says what is missing, and merges the caller's LD_LIBRARY_PATH", async () => {
  const root = await Deno.makeTempDir({ prefix: "pc-vk-" });
  try {
    const none = softwareVulkan(root);
    assert(!none.ok && /deno task setup/.test(none.why), JSON.stringify(none));
    const dir = join(root, ".cache", "vulkan");
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(join(dir, "env.json"), "{ not json");
    const bad = softwareVulkan(root);
    assert(!bad.ok && /corrupt/.test(bad.why), JSON.stringify(bad));
    const icd = join(dir, "lvp_icd.json");
    const env = {
      VK_DRIVER_FILES: icd,
      VK_ICD_FILENAMES: icd,
      LD_LIBRARY_PATH: "/x/lib",
      DENO_WEBGPU_BACKEND: "vulkan",
    };
    await Deno.writeTextFile(
      join(dir, "env.json"),
      JSON.stringify({ env, adapter: "llvmpipe", packages: [] }),
    );
    const gone = softwareVulkan(root);
    assert(!gone.ok && /lvp_icd\.json is missing/.test(gone.why), JSON.stringify(gone));
    await Deno.writeTextFile(icd, "{}");
    const outer = Deno.env.get("LD_LIBRARY_PATH");
    Deno.env.set("LD_LIBRARY_PATH", "/outer");
    try {
      const ok = softwareVulkan(root);
      assert(ok.ok, JSON.stringify(ok));
      assertEquals(ok.value.env.LD_LIBRARY_PATH, "/x/lib:/outer");
      assertEquals(ok.value.env.DENO_WEBGPU_BACKEND, "vulkan");
    } finally {
      if (outer === undefined) Deno.env.delete("LD_LIBRARY_PATH");
      else Deno.env.set("LD_LIBRARY_PATH", outer);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("softwareVulkanHint: the shell line when lavapipe is provisioned and not in this environment", async () => {
  const root = await Deno.makeTempDir({ prefix: "pc-vk-" });
  const saved = ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"].map((k) => [k, Deno.env.get(k)] as const);
  try {
    for (const [k] of saved) Deno.env.delete(k);
    assertEquals(softwareVulkanHint(root), "", "not provisioned: nothing to suggest");
    const dir = join(root, ".cache", "vulkan");
    await Deno.mkdir(dir, { recursive: true });
    const icd = join(dir, "lvp_icd.json");
    await Deno.writeTextFile(icd, "{}");
    await Deno.writeTextFile(
      join(dir, "env.json"),
      JSON.stringify({
        env: { VK_DRIVER_FILES: icd, LD_LIBRARY_PATH: "" },
        adapter: "llvmpipe",
        packages: [],
      }),
    );
    assert(/run `\. \.cache\/vulkan\/env\.sh`/.test(softwareVulkanHint(root)), softwareVulkanHint(root));
    Deno.env.set("VK_DRIVER_FILES", icd);
    assertEquals(
      softwareVulkanHint(root),
      "",
      "already in the environment: the adapter is missing for another reason",
    );
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    await Deno.remove(root, { recursive: true });
  }
});
