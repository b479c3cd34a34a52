/**
 * Backend selection: request parsing and precedence, `auto`'s order and its one-line report, and the errors for
 * unknown or unavailable backends.
 */
import { tf } from "../../lib/backend/tf.ts";
import {
  BACKEND_NAMES,
  backendFromArgs,
  backendFromEnv,
  initBackend,
  parseBackendRequest,
  probeBackend,
  resolveBackendRequest,
} from "../../lib/backend/mod.ts";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";

function withEnv<T>(value: string | undefined, f: () => T): T {
  const old = Deno.env.get("PC_BACKEND");
  if (value === undefined) Deno.env.delete("PC_BACKEND");
  else Deno.env.set("PC_BACKEND", value);
  try {
    return f();
  } finally {
    if (old === undefined) Deno.env.delete("PC_BACKEND");
    else Deno.env.set("PC_BACKEND", old);
  }
}

function throws(f: () => unknown, pattern: RegExp): void {
  try {
    f();
  } catch (e) {
    assert(pattern.test((e as Error).message), `message '${(e as Error).message}' does not match ${pattern}`);
    return;
  }
  throw new Error(`expected an error matching ${pattern}`);
}

Deno.test("backend requests: names are validated and the error names the source", () => {
  assertEquals(parseBackendRequest(" WASM "), "wasm");
  throws(
    () => parseBackendRequest("gpu", "config key backend"),
    /config key backend: unknown backend 'gpu'.*auto/,
  );
  throws(
    () => withEnv("tpu", () => backendFromEnv()),
    /environment variable PC_BACKEND: unknown backend 'tpu'/,
  );
  assertEquals(withEnv(undefined, () => backendFromEnv()), "auto");
  assertEquals(backendFromArgs(["train", "--backend", "cpu", "--x"]), "cpu");
  assertEquals(backendFromArgs(["--backend=webgpu"]), "webgpu");
  assertEquals(backendFromArgs(["--other"]), undefined);
  throws(() => backendFromArgs(["--backend"]), /--backend: missing value/);
});

Deno.test("backend requests: flag > PC_BACKEND > config key > auto", () => {
  withEnv("wasm", () => {
    assertEquals(resolveBackendRequest({ flag: ["--backend", "cpu"], config: "tensorflow" }), {
      request: "cpu",
      source: "flag --backend",
    });
    assertEquals(resolveBackendRequest({ config: "tensorflow" }).request, "wasm");
  });
  withEnv(undefined, () => {
    assertEquals(resolveBackendRequest({ config: "tensorflow" }), {
      request: "tensorflow",
      source: "config key backend",
    });
    assertEquals(resolveBackendRequest({}), { request: "auto", source: "default" });
  });
});

Deno.test("auto picks the first working backend in order and never a software WebGPU adapter", async () => {
  const prev = tf.getBackend();
  const lines: string[] = [];
  const info = await initBackend("auto", { log: (l) => lines.push(l) });
  const probes = [];
  for (const n of BACKEND_NAMES) probes.push(await probeBackend(n));
  const first = probes.find((p) => p.autoEligible)!;
  // the first eligible one, unless it failed to initialise (then auto's reason names it)
  assert(
    info.name === first.name || info.reason.includes(`${first.name}:`),
    `auto chose ${info.name}: ${info.reason}`,
  );
  const gpu = probes.find((p) => p.name === "webgpu")!;
  if (gpu.available && !gpu.autoEligible) assert(info.name !== "webgpu", "auto chose a software adapter");
  if (!probes.find((p) => p.name === "tensorflow")!.available) {
    assert(info.name !== "tensorflow", "tensorflow chosen without its binding");
  }
  if (prev) await tf.setBackend(prev);
});

Deno.test("an explicit request for an unavailable backend says how to get it", async () => {
  const prev = tf.getBackend();
  const native = await probeBackend("tensorflow");
  if (native.available) {
    assertEquals((await initBackend("tensorflow", { quiet: true })).name, "tensorflow");
  } else {
    await assertRejects(() => initBackend("tensorflow"), /deno task setup|WebGPU was initialised first/);
  }
  const gpu = await probeBackend("webgpu");
  if (!gpu.available) await assertRejects(() => initBackend("webgpu"), /Vulkan driver/);
  if (prev) await tf.setBackend(prev);
});

Deno.test("a CLI run prints exactly one [backend] line for auto", async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const env = { ...Deno.env.toObject() };
  delete env.PC_BACKEND;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/backend/_auto_line.ts"],
    cwd: root,
    env,
    clearEnv: true,
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `subprocess failed: ${stderr}`);
  const ours = stderr.split("\n").filter((l) => l.startsWith("[backend]"));
  assertEquals(ours.length, 1, `lines: ${JSON.stringify(ours)}`);
  const chosen = JSON.parse(new TextDecoder().decode(out.stdout).trim()).name;
  assert(ours[0].startsWith(`[backend] auto -> ${chosen} (`), ours[0]);
});
