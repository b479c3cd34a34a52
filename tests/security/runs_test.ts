/**
 * Runs never overwrite each other: a new run into a non-empty save_dir is refused (the old run intact),
 * pruning only removes the current run's checkpoints, an unwritable save_dir fails with its path, one
 * process per save_dir; and the best_model swap is crash-safe: a writer killed (SIGKILL, for real)
 * between any two steps leaves the old or the new complete copy, which `val` and a resumed run find.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { CHECKPOINT_FORMAT, listCheckpoints, pruneCheckpoints } from "../../lib/train/checkpoint.ts";
import { claimSaveDir } from "../../lib/train/run_dir.ts";
import { recoverDir } from "../../lib/util/fs.ts";
import { tmpDir } from "../data/_tmp.ts";

const CONFIG = "configs/tests/tiny_contrast_synthetic.yml";

async function cli(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    signal: out.signal,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

const train = (args: string[]) =>
  cli("lib/cli/train.ts", [
    "--config",
    CONFIG,
    "--iters",
    "2",
    "--save_interval",
    "2",
    "--log_iters",
    "1",
    ...args,
  ]);

/** A fake checkpoint folder with a run id (what pruning and recovery look at). */
async function fakeCheckpoint(dir: string, iter: number, runId: string | undefined, tag = "") {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "model.safetensors"), `model ${tag}`);
  await Deno.writeTextFile(join(dir, "train_state.safetensors"), "state");
  await Deno.writeTextFile(
    join(dir, "state.json"),
    JSON.stringify({ format: CHECKPOINT_FORMAT, iter, runId }),
  );
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(join(d, e.name), `${rel}${e.name}/`);
      else {out[`${rel}${e.name}`] = await Deno.readTextFile(join(d, e.name)).then((t) =>
          `${t.length}:${t.slice(0, 64)}`
        );}
    }
  };
  await walk(dir, "");
  return out;
}

Deno.test("a new run into an old run's save_dir is refused and the old run is left intact", async () => {
  const dir = join(await tmpDir("pc-runs-"), "run");
  const first = await train(["--save_dir", dir, "--opts", "train.do_eval=false"]);
  assertEquals(first.code, 0, first.stderr);
  const before = await snapshot(dir);
  const second = await train(["--save_dir", dir, "--opts", "train.do_eval=false"]);
  assert(second.code !== 0, "the second run must not start");
  assert(
    second.stderr.includes(`save_dir '${dir}' is not empty (iter_2, metrics.jsonl, report.html)`),
    second.stderr,
  );
  assert(second.stderr.includes(`--resume_model ${join(dir, "iter_2")}`), second.stderr);
  assertEquals(await snapshot(dir), before, "nothing of the old run changed");
  // resuming into its own folder is allowed
  const resumed = await train([
    "--save_dir",
    dir,
    "--resume_model",
    join(dir, "iter_2"),
    "--opts",
    "train.do_eval=false",
  ]);
  assertEquals(resumed.code, 0, resumed.stderr);
});

Deno.test("an unwritable save_dir fails at once with its path", async () => {
  // /sys refuses new folders even to root (chmod would not stop root)
  const r = await train(["--save_dir", "/sys/pc-contrast-readonly/run"]);
  assert(r.code !== 0);
  assert(
    /cannot write to save_dir '\/sys\/pc-contrast-readonly\/run': .*\(os error \d+\); choose a writable folder/
      .test(r.stderr),
    r.stderr,
  );
  assert(!/\n\s+at /.test(r.stderr), "a message, not a stack trace");
});

Deno.test("one process per save_dir; a lock left by a killed run is taken over", async () => {
  const dir = await tmpDir("pc-runs-");
  const a = await claimSaveDir(join(dir, "x"), null);
  await Deno.writeTextFile(join(dir, "x", ".train.lock"), "1\n"); // pid 1 is alive: another process holds it
  await assertRejects(
    () => claimSaveDir(join(dir, "x"), null),
    /in use by another training process \(pid 1\)/,
  );
  await Deno.writeTextFile(join(dir, "x", ".train.lock"), "999999999\n"); // a dead pid: stale
  const b = await claimSaveDir(join(dir, "x"), null);
  await b.release();
  await a.release();
  assertEquals([...Deno.readDirSync(join(dir, "x"))].length, 0, "the lock is removed on release");
});

Deno.test("a second run started into the save_dir of a run still going is refused", async () => {
  const dir = join(await tmpDir("pc-runs-"), "run");
  const a = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/cli/train.ts", "--config", CONFIG, "--iters", "500", "--save_dir", dir],
    stdout: "null",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  try {
    const deadline = Date.now() + 60_000;
    while (!(await Deno.stat(dir).catch(() => null))) { // the first run made its folder: it has started
      if (Date.now() > deadline) throw new Error("the first run never started");
      await new Promise((r) => setTimeout(r, 20));
    }
    const b = await train(["--save_dir", dir]);
    assert(b.code !== 0, "the second run must not start");
    // refused by the lock, or by the first run's files if it wrote any before the second looked
    assert(/in use by another training process \(pid \d+\)|is not empty/.test(b.stderr), b.stderr);
  } finally {
    a.kill("SIGKILL");
    await a.status;
  }
});

Deno.test("pruning removes only the current run's checkpoints, never another run's nor a resumed run's future", async () => {
  const dir = await tmpDir("pc-runs-");
  await fakeCheckpoint(join(dir, "iter_40"), 40, "old-run"); // another run ranks higher by iteration
  await fakeCheckpoint(join(dir, "iter_30"), 30, undefined); // unknown run (older format)
  for (const i of [2, 4, 6]) await fakeCheckpoint(join(dir, `iter_${i}`), i, "me");
  await fakeCheckpoint(join(dir, "iter_8"), 8, "me"); // this run's abandoned future (resumed at 6)
  await pruneCheckpoints(dir, 2, "me", 6);
  assertEquals((await listCheckpoints(dir)).map((c) => c.iter), [4, 6, 8, 30, 40]);
});

async function isDone(d: string): Promise<boolean> {
  return await Deno.readTextFile(join(d, "state.json")).then(() => true, () => false);
}

for (const step of ["filled", "old-moved", "new-moved"]) {
  Deno.test(`best_model swap killed (SIGKILL) at '${step}': the old or the new copy survives, and is restored`, async () => {
    const dir = await tmpDir("pc-swap-");
    await fakeCheckpoint(join(dir, "new"), 4, "r", "NEW");
    await fakeCheckpoint(join(dir, "best_model"), 2, "r", "OLD");
    const r = await cli("tests/security/_swap_writer.ts", [join(dir, "new"), join(dir, "best_model")], {
      PC_FAULT_KILL_AT: `best_model:${step}`,
    });
    assertEquals(r.signal, "SIGKILL", `the writer must be killed at ${step}: ${r.stdout}${r.stderr}`);
    const content = async (d: string) => await Deno.readTextFile(join(d, "model.safetensors"));
    if (step === "old-moved") {
      assert(!(await isDone(join(dir, "best_model"))), "the window the issue found: best_model is gone");
    }
    const found = await recoverDir(join(dir, "best_model"), isDone);
    assert(found.path, "a complete copy is found");
    const expected = step === "filled" ? "model OLD" : "model NEW";
    assertEquals(await content(found.path), expected);
    const repaired = await recoverDir(join(dir, "best_model"), isDone, { repair: true });
    assertEquals(repaired.path, join(dir, "best_model"));
    assertEquals(await content(join(dir, "best_model")), expected);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(left, ["best_model", "new"], "leftovers removed by the repair");
  });
}

Deno.test("killed between the renames of a real best_model swap: `val` and a resumed run both find it", async () => {
  const dir = join(await tmpDir("pc-swap-"), "run");
  const first = await train(["--save_dir", dir]); // evaluates at iteration 2: best_model and iter_2
  assertEquals(first.code, 0, first.stderr);
  const kill = await cli("tests/security/_swap_writer.ts", [join(dir, "iter_2"), join(dir, "best_model")], {
    PC_FAULT_KILL_AT: "best_model:old-moved",
  });
  assertEquals(kill.signal, "SIGKILL");
  assert(!(await Deno.stat(join(dir, "best_model")).catch(() => null)), "best_model is gone after the kill");

  const val = await cli("lib/cli/val.ts", ["--config", CONFIG, "--model_path", join(dir, "best_model")]);
  assertEquals(val.code, 0, val.stderr);
  assert(/was being replaced when its writer stopped; using its complete copy/.test(val.stdout), val.stdout);
  assert(/mIoU: [0-9.]+/.test(val.stdout), val.stdout);

  const resumed = await train(["--save_dir", dir, "--resume_model", join(dir, "iter_2")]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assert(resumed.stdout.includes(`restored ${join(dir, "best_model")} from`), resumed.stdout);
  assert(resumed.stdout.includes(`best model: ${join(dir, "best_model")} `), resumed.stdout);
  const after = await cli("lib/cli/val.ts", ["--config", CONFIG, "--model_path", join(dir, "best_model")]);
  assertEquals(after.code, 0, after.stderr);
  assert(!/note:/.test(after.stdout), "best_model is back under its name");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("best_model")), [
    "best_model",
  ]);
});
