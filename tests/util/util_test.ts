import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { join } from "node:path";
import { Rng } from "../../lib/util/rng.ts";
import { formatBytes, formatDuration, Progress } from "../../lib/util/progress.ts";
import { writeFileAtomic, writeFileAtomicSync } from "../../lib/util/fs.ts";

Deno.test("Rng: same seed, same stream; state round trip; fork does not advance the parent", () => {
  const a = new Rng(42), b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.nextUint32());
  assertEquals(Array.from({ length: 5 }, () => b.nextUint32()), xs);
  const s = a.getState();
  const next = [a.next(), a.next()];
  a.setState(s);
  assertEquals([a.next(), a.next()], next);
  const before = a.getState();
  const f = a.fork("x");
  assertEquals(a.getState(), before);
  assert(f.nextUint32() !== new Rng(before).nextUint32(), "a fork must not replay its parent");
  assert(new Rng(1).nextUint32() !== new Rng(2).nextUint32());
});

Deno.test("Rng: int is in range and roughly uniform; permutation is a permutation", () => {
  const r = new Rng(7);
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 5000; i++) counts[r.int(5)]++;
  assert(counts.every((c) => c > 850 && c < 1150), `counts ${counts}`);
  const p = Array.from(r.permutation(100)).sort((x, y) => x - y);
  assertEquals(p, Array.from({ length: 100 }, (_, i) => i));
  assertThrows(() => r.int(0), "n must be an integer");
  assertThrows(() => r.setState([0, 0, 0, 0]), "all-zero");
  assertThrows(() => new Rng(NaN), "finite");
});

Deno.test("Progress: rate, ETA (unknown before any progress) and plain lines off a terminal", () => {
  const lines: string[] = [];
  const p = new Progress({
    total: 10,
    label: "train",
    tty: false,
    plainEvery: 0,
    write: (l) => lines.push(l),
  });
  assert(p.line().includes("ETA ?"), p.line());
  p.tick(5, "loss 1.0");
  assert(/train \[#+\.+\]\s+50\.0% 5\/10 .* it\/s ETA \S+\s+loss 1\.0/.test(lines.at(-1)!), lines.at(-1));
  p.finish();
  assertEquals(formatDuration(3725), "1h02m");
  assertEquals(formatDuration(65), "1m05s");
  assertEquals(formatBytes(1536), "1.5 KiB");
});

Deno.test("writeFileAtomic: complete file, no temporary left, errors name the path", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "sub", "a.txt");
  await writeFileAtomic(path, "hello");
  writeFileAtomicSync(join(dir, "b.bin"), new Uint8Array([1, 2, 3]));
  assertEquals(await Deno.readTextFile(path), "hello");
  assertEquals(Array.from(await Deno.readFile(join(dir, "b.bin"))), [1, 2, 3]);
  const names: string[] = [];
  for await (const e of Deno.readDir(join(dir, "sub"))) names.push(e.name);
  assertEquals(names, ["a.txt"]);
  await Deno.mkdir(join(dir, "isdir"));
  await assertRejects(() => writeFileAtomic(join(dir, "isdir"), "x"), `cannot write '${join(dir, "isdir")}'`);
  await Deno.remove(dir, { recursive: true });
});
