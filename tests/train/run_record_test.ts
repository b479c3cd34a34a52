/** lib/train/run_record.ts: the one reader of `metrics.jsonl` (strict and lenient) and the writer's resume. */
import { assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { MetricsLog, parseMetricsJsonl, readMetricsJsonl } from "../../lib/train/run_record.ts";
import { fakeEvals, fakeTrain } from "../viz/_data.ts";

Deno.test("parseMetricsJsonl: train/eval records, truncated last line skipped, errors name the line", async () => {
  const t = fakeTrain(20)[0], e = fakeEvals([10])[0];
  const text = `${JSON.stringify(t)}\n\n${JSON.stringify(e)}\n{"type":"tra`;
  const r = parseMetricsJsonl(text, "m.jsonl");
  assertEquals([r.train.length, r.evals.length], [1, 1]);
  assertEquals(r.evals[0].classIoU, e.classIoU);
  assertThrows(() => parseMetricsJsonl(`{"type":"tra\n${JSON.stringify(t)}\n`, "m.jsonl"), "m.jsonl:1");
  assertThrows(
    () => parseMetricsJsonl(`${JSON.stringify({ ...t, lr: "x" })}\n`, "m.jsonl"),
    "m.jsonl:1: train record needs a number 'lr'",
  );
  assertThrows(() => parseMetricsJsonl(`${JSON.stringify({ ...e, mode: 1 })}\n`, "m.jsonl"), "'mode'");
  assertThrows(() => parseMetricsJsonl(`{"type":"other"}\n`, "m.jsonl"), "unknown record type");
  const dir = await Deno.makeTempDir({ prefix: "viz_jsonl_" });
  try {
    Deno.writeTextFileSync(`${dir}/metrics.jsonl`, text);
    assertEquals((await readMetricsJsonl(`${dir}/metrics.jsonl`)).train.length, 1);
    await assertRejects(() => readMetricsJsonl(`${dir}/missing.jsonl`), "missing.jsonl");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lenient reading and MetricsLog resume: cut and invalid lines dropped, later iterations dropped", async () => {
  const [t10, t20, t30] = fakeTrain(30);
  const [e20] = fakeEvals([20]);
  // a run killed twice mid-write: a cut line inside the file, and a record that is JSON but not a record
  const lines = [JSON.stringify(t10), '{"type":"train","it', JSON.stringify(t20), JSON.stringify(e20)];
  const text = [...lines, JSON.stringify({ type: "train", iter: 25 }), JSON.stringify(t30), ""].join("\n");
  assertThrows(() => parseMetricsJsonl(text, "m.jsonl"), "m.jsonl:2: not JSON");
  const all = parseMetricsJsonl(text, "m.jsonl", { lenient: true });
  assertEquals([all.train.map((r) => r.iter), all.evals.map((r) => r.iter)], [[10, 20, 30], [20]]);
  const dir = await Deno.makeTempDir({ prefix: "run_record_" });
  try {
    const path = `${dir}/metrics.jsonl`;
    Deno.writeTextFileSync(path, text);
    const log = await MetricsLog.open(path, 20);
    assertEquals([log.train.map((r) => r.iter), log.evals.map((r) => r.iter)], [[10, 20], [20]]);
    // the file is rewritten with the kept lines as they were written, then appended to
    assertEquals(Deno.readTextFileSync(path), [lines[0], lines[2], lines[3], ""].join("\n"));
    await log.append(t30);
    const back = await readMetricsJsonl(path);
    assertEquals(back.train, [t10, t20, t30]);
    assertEquals(back.evals, [e20]);
    // a new run (no resume) starts an empty log
    const fresh = await MetricsLog.open(path, null);
    assertEquals([fresh.train.length, Deno.readTextFileSync(path)], [0, ""]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
