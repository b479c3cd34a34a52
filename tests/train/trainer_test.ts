/**
 * End-to-end trainer tests through the real CLI in subprocesses (the way users run it): exact resume
 * after SIGKILL, refusal to resume with a changed config, NaN stop with the last checkpoint intact, the
 * same mIoU from in-training evaluation and `deno task val`, and CLI argument errors.
 */
import { assert, assertAlmostEquals, assertEquals } from "../_helpers/assert.ts";
import { join } from "node:path";
import { cpuBf16Flags } from "../../lib/backend/native_bf16.ts";

const CONFIG = "configs/tests/tiny_contrast_synthetic.yml";
const OUT = "tests/out/trainer";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(script: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `lib/cli/${script}.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function run(script: string, args: string[]): Promise<Run> {
  const out = await cli(script, args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

type Rec = { type: string; iter: number; loss: number; lr: number; ce: number; mIoU: number };

async function records(dir: string): Promise<Rec[]> {
  const text = await Deno.readTextFile(join(dir, "metrics.jsonl"));
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

const common = ["--config", CONFIG, "--iters", "8", "--save_interval", "2", "--log_iters", "1"];

await Deno.remove(OUT, { recursive: true }).catch(() => {});

Deno.test("resume after SIGKILL continues exactly: same losses and learning rates as an uninterrupted run", async () => {
  const full = join(OUT, "full"), killed = join(OUT, "killed");
  const ref = await run("train", [...common, "--save_dir", full, "--opts", "train.do_eval=false"]);
  assertEquals(ref.code, 0, ref.stderr);

  // Start the same run and kill it hard once its iteration-4 checkpoint exists.
  const child = cli("train", [...common, "--save_dir", killed, "--opts", "train.do_eval=false"]);
  const deadline = Date.now() + 300_000;
  while (!(await exists(join(killed, "iter_4", "state.json")))) {
    if (Date.now() > deadline) throw new Error("the run never wrote iter_4");
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert(!status.success, "the run finished before it could be killed; the test proves nothing");

  // Resume from the newest complete checkpoint (a half-written one must not be listed).
  const dirs = [];
  for await (const e of Deno.readDir(killed)) if (/^iter_\d+$/.test(e.name)) dirs.push(e.name);
  const newest = dirs.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))).at(-1)!;
  const resumed = await run("train", [
    ...common,
    "--save_dir",
    killed,
    "--resume_model",
    join(killed, newest),
    "--opts",
    "train.do_eval=false",
  ]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assert(resumed.stdout.includes(`resumed from ${join(killed, newest)}`), resumed.stdout);

  const a = (await records(full)).filter((r) => r.type === "train");
  const b = (await records(killed)).filter((r) => r.type === "train");
  assertEquals(b.map((r) => r.iter), a.map((r) => r.iter), "the resumed log must read as one run");
  for (let i = 0; i < a.length; i++) {
    assertAlmostEquals(b[i].lr, a[i].lr, 0, `lr at iteration ${a[i].iter}`);
    assertAlmostEquals(b[i].loss, a[i].loss, 1e-6 * Math.abs(a[i].loss), `loss at iteration ${a[i].iter}`);
  }
});

Deno.test("resume refuses a changed config and names the changed key", async () => {
  const dir = join(OUT, "changed");
  const first = await run("train", [
    ...common,
    "--iters",
    "2",
    "--save_dir",
    dir,
    "--opts",
    "train.do_eval=false",
  ]);
  assertEquals(first.code, 0, first.stderr);
  const r = await run("train", [
    ...common,
    "--iters",
    "2",
    "--save_dir",
    dir,
    "--resume_model",
    join(dir, "iter_2"),
    "--opts",
    "train.do_eval=false",
    "loss.types.1.temperature=0.2",
  ]);
  assert(r.code !== 0, "resume with a changed config must fail");
  assert(/config differs/.test(r.stderr) && r.stderr.includes("temperature"), r.stderr);
});

Deno.test("--precision: one line says what the run uses; a run may resume in another precision", async () => {
  const dir = join(OUT, "precision");
  const first = await run("train", [
    ...common,
    "--iters",
    "4",
    "--save_dir",
    dir,
    "--opts",
    "train.do_eval=false",
  ]);
  assertEquals(first.code, 0, first.stderr);
  assert(first.stdout.split("\n").includes("precision: fp32"), first.stdout);
  const r = await run("train", [
    ...common,
    "--iters",
    "4",
    "--save_dir",
    dir,
    "--resume_model",
    join(dir, "iter_2"),
    "--precision",
    "bf16",
    "--opts",
    "train.do_eval=false",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.startsWith("precision:"));
  const native = /backend: tensorflow|on tensorflow/.test(r.stdout + r.stderr);
  const bf16Cpu = cpuBf16Flags().length > 0;
  if (native && bf16Cpu) {
    assert(
      /^precision: bf16 \(CPU .*grappler's oneDNN auto mixed precision/.test(lines[0] ?? ""),
      lines.join("\n"),
    );
    // graph step (train.graph auto): grappler picks the bf16 ops; op by op: our size policy, reported
    assert(
      r.stdout.split("\n").some((l) =>
        /^graph: recorded the step for input 2x\d+x\d+x3 \(\d+ ops\) .*bf16 ops chosen by grappler/.test(l)
      ),
      r.stdout,
    );
    const eager = await run("train", [
      ...common,
      "--iters",
      "1",
      "--save_dir",
      join(OUT, "precision-eager"),
      "--precision",
      "bf16",
      "--graph",
      "off",
      "--opts",
      "train.do_eval=false",
    ]);
    assertEquals(eager.code, 0, eager.stderr);
    const eagerLines = eager.stdout.split("\n").filter((l) => l.startsWith("precision:"));
    assert(eagerLines[0]?.startsWith("precision: bf16 for convolutions and matmuls"), eagerLines.join("\n"));
    assert(
      eagerLines[1]?.startsWith("precision: bf16 ran "),
      `which ops ran in bf16: ${eagerLines.join("\n")}`,
    );
    assert(eager.stdout.split("\n").includes("graph: off (op by op)"), eager.stdout);
  } else {
    assert(lines.length === 1 && lines[0].startsWith("precision: fp32 (bf16 asked, but"), lines.join("\n"));
  }
  assertEquals((await records(dir)).filter((x) => x.type === "train").at(-1)?.iter, 4);
});

Deno.test("a NaN loss or NaN weights stop training with a clear message; the last checkpoint stays loadable", async () => {
  const dir = join(OUT, "nan");
  // A learning rate this large makes the weights overflow within a few steps.
  const r = await run("train", [
    ...common,
    "--save_dir",
    dir,
    "--learning_rate",
    "1e12",
    "--opts",
    "train.do_eval=false",
  ]);
  assert(r.code !== 0, "training must stop");
  // the loss turns non-finite, or first the weights (BN running variances), caught before a checkpoint
  const stop = /(loss is (NaN|Infinity|-Infinity)|weights hold NaN or infinite values) at iteration (\d+)/;
  assert(stop.test(r.stderr), r.stderr);
  const iter = Number(stop.exec(r.stderr)![3]);
  if (/weights hold/.test(r.stderr)) {
    assert(!(await exists(join(dir, `iter_${iter}`))), "no checkpoint is written from non-finite weights");
  }
  const last = Math.floor((iter - 1) / 2) * 2;
  if (last > 0) {
    // the last checkpoint before the failure is complete and loadable: validate from it
    const v = await run("val", ["--config", CONFIG, "--model_path", join(dir, `iter_${last}`)]);
    assertEquals(v.code, 0, v.stderr);
  }
  for await (const e of Deno.readDir(dir)) {
    assert(!e.name.includes(".tmp-"), `temporary folder left: ${e.name}`);
  }
});

Deno.test("in-training evaluation and `deno task val` give the same mIoU for the same checkpoint", async () => {
  const dir = join(OUT, "eval");
  const r = await run("train", [...common, "--iters", "4", "--save_dir", dir]);
  assertEquals(r.code, 0, r.stderr);
  const evals = (await records(dir)).filter((x) => x.type === "eval");
  assertEquals(evals.map((e) => e.iter), [2, 4]);
  const v = await run("val", ["--config", CONFIG, "--model_path", join(dir, "iter_4")]);
  assertEquals(v.code, 0, v.stderr);
  const m = /mIoU: ([0-9.]+)/.exec(v.stdout);
  assert(m, v.stdout);
  assertAlmostEquals(Number(m[1]), evals[1].mIoU, 1e-4, "val vs in-training mIoU");
  assert(await exists(join(dir, "report.html")), "the run writes its report");
  assert(await exists(join(dir, "best_model", "model.safetensors")), "the run keeps its best model");
});

Deno.test("CLI argument errors are reported by name with exit code 2", async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["train", ["--config", CONFIG, "--iters", "zero"], /--iters/],
    ["train", ["--config", CONFIG, "--no_such_flag"], /no_such_flag/],
    ["train", ["--config", "configs/does_not_exist.yml"], /does_not_exist\.yml/],
    ["train", ["--config", CONFIG, "--opts", "model.nope=1"], /model\.nope/],
  ];
  for (const [script, args, pattern] of cases) {
    const r = await run(script, args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(pattern.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
  }
  const v = await run("val", ["--config", CONFIG]);
  assert(v.code === 2 && /--model_path is required/.test(v.stderr), v.stderr);
  const p = await run("predict", [
    "--config",
    CONFIG,
    "--model_path",
    "nowhere",
    "--image_path",
    "x.png",
    "--save_dir",
    "o",
  ]);
  assert(p.code !== 0 && /'nowhere' does not exist|'x\.png' does not exist/.test(p.stderr), p.stderr);
});
