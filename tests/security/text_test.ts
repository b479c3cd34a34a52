/**
 * Text files read whole — a dataset's list file, a run's metrics.jsonl — are bounded like every other user
 * file: only regular files within `PC_MAX_TEXT_BYTES` are read, refusals name the file and the bound, and a
 * resumed run never empties a log it could not read.
 */
import * as path from "node:path";
import { openListDataset } from "../../lib/data/dataset.ts";
import { MetricsLog, readMetricsJsonl } from "../../lib/train/run_record.ts";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { tmpDir } from "../data/_tmp.ts";
import { fakeTrain } from "../viz/_data.ts";

async function withTextBound<T>(bound: string, fn: () => Promise<T>): Promise<T> {
  Deno.env.set("PC_MAX_TEXT_BYTES", bound);
  try {
    return await fn();
  } finally {
    Deno.env.delete("PC_MAX_TEXT_BYTES");
  }
}

async function mkfifo(p: string): Promise<void> {
  assert((await new Deno.Command("mkfifo", { args: [p] }).output()).success, "mkfifo");
}

Deno.test("a list file larger than the text bound is refused by name and bound, before it is read", async () => {
  const root = await tmpDir("pc-text-");
  const list = path.join(root, "train.txt");
  await Deno.writeTextFile(list, "img/a.png lbl/a.png\n".repeat(200)); // 4000 bytes
  const opts = { dataset_root: root, train_path: list, num_classes: 2 };
  await withTextBound("1K", () =>
    assertRejects(
      () => openListDataset(opts),
      /list file '[^']*train\.txt' is 3\.91 KiB, larger than the bound of 1\.00 KiB; .*PC_MAX_TEXT_BYTES/,
    ));
  // within the default bound it is read, and fails on the images it names (absent here)
  await assertRejects(() => openListDataset(opts), /missing-images/);
});

Deno.test("a metrics.jsonl larger than the bound is refused by name; resume refuses it and leaves it intact", async () => {
  const dir = await tmpDir("pc-text-");
  const log = path.join(dir, "metrics.jsonl");
  const text = fakeTrain(400).map((r) => JSON.stringify(r) + "\n").join("");
  assert(text.length > 4096, `${text.length} bytes`);
  await Deno.writeTextFile(log, text);
  await withTextBound("4K", async () => {
    await assertRejects(
      () => readMetricsJsonl(log),
      /metrics log '[^']*metrics\.jsonl'.*larger than the bound.*PC_MAX_TEXT_BYTES/,
    );
    await assertRejects(() => MetricsLog.open(log, 10), /metrics\.jsonl.*larger than the bound/);
  });
  assertEquals(await Deno.readTextFile(log), text, "the log a resume could not read is kept as it was");
  // within the bound, resume keeps the records up to its iteration
  const resumed = await MetricsLog.open(log, 20);
  assertEquals(resumed.train.map((r) => r.iter), fakeTrain(400).map((r) => r.iter).filter((i) => i <= 20));
});

Deno.test("a FIFO as metrics.jsonl is refused by name, without blocking; a missing log starts empty", async () => {
  const dir = await tmpDir("pc-text-");
  const fifo = path.join(dir, "metrics.jsonl");
  await mkfifo(fifo);
  await assertRejects(
    () => readMetricsJsonl(fifo),
    /metrics log '[^']*metrics\.jsonl': is a named pipe \(FIFO\)/,
  );
  await assertRejects(() => MetricsLog.open(fifo, 10), /named pipe/);
  const fresh = await MetricsLog.open(path.join(dir, "new.jsonl"), 10);
  assertEquals(fresh.train.length, 0);
});
