/**
 * lib/backend/native_malloc.ts: with the settings applied, memory freed by a step's worth of tensor-sized blocks is
 * reused by the next step instead of being returned to the kernel and faulted in again; `PC_MALLOC_TUNING=0`
 * leaves glibc's defaults (under which the second round faults most of its pages in afresh). Linux/glibc only:
 * skipped, with a message, elsewhere.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "../_helpers/assert.ts";

const linux = Deno.build.os === "linux";
if (!linux) console.warn("SKIPPING malloc tuning tests: glibc's mallopt exists on Linux only");

async function probe(tuning: string | undefined): Promise<{ line: string; faults: number; pages: number }> {
  const env: Record<string, string> = {};
  if (tuning !== undefined) env.PC_MALLOC_TUNING = tuning;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(import.meta.resolve("./_malloc_probe.ts"))],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.success, `probe failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.trim().split("\n").at(-1)!);
}

Deno.test({
  name:
    "native malloc: freed tensor-sized blocks are reused (no fresh page faults); PC_MALLOC_TUNING=0 keeps defaults",
  ignore: !linux,
  async fn() {
    const tuned = await probe(undefined);
    assert(tuned.line.startsWith("malloc: freed tensor memory is reused"), tuned.line);
    const plain = await probe("0");
    assertEquals(plain.line, "malloc: left as it is (PC_MALLOC_TUNING=0)");
    // 192 MiB touched per round = 49,152 pages: the defaults trim the freed heap and fault most of it in again
    assert(plain.faults > plain.pages / 2, `defaults: ${plain.faults} faults of ${plain.pages} pages`);
    assert(tuned.faults < tuned.pages / 20, `tuned: ${tuned.faults} faults of ${tuned.pages} pages`);
  },
});
