/**
 * `deno task bench ceiling [--install] [--reps N] [--configs w18s-b1,w18s-b2,w48-b1]`: how fast libtensorflow
 * itself can train HRNet's branch convolutions when given the whole step as one graph — the route the native
 * backend would take to run in bf16 end to end — beside PyTorch's bf16 autocast on the same layers.
 *
 * Our train step runs TF.js ops one at a time (eager), and each bf16 op casts its inputs and output. The question
 * this answers before anyone builds a graph route: would even libtensorflow's best CPU mode (a `tf.function`
 * graph with grappler's oneDNN bf16 auto mixed precision, or Keras' mixed_bfloat16) be ≥ 1.2x PyTorch's bf16
 * autocast + channels_last step? Both sides train the same branch stack (bench/ceiling_torch.py documents it) in
 * Python processes of their own, alternated round by round with ours (bench/ceiling_ours.ts: the same stack from
 * lib/models' layers, trained op by op as our trainer does); median step time over rounds, first 2 steps of each
 * process dropped (tracing, oneDNN primitive creation). TensorFlow is tensorflow-cpu 2.21.0 from PyPI (the release
 * of our libtensorflow) in .cache/bench-tf-2.21.0; PyTorch the bench's (bench/_common.ts).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  baselineEnv,
  ensureTfEnv,
  ensureTorchEnv,
  fmtS,
  machineInfo,
  ROOT,
  type Stats,
  stats,
  writeResult,
} from "./_common.ts";
import { oursOnStack } from "./ceiling_ours.ts";
import { initBackend } from "../lib/backend/mod.ts";

export interface CeilingConfig {
  id: string;
  /** What it stands for. */
  like: string;
  n: number;
  h: number;
  w: number;
  width: number;
  blocks: number;
}

export const CEILING_CONFIGS: CeilingConfig[] = [
  { id: "w18s-b1", like: "HRNet-W18-Small branches, 512x256 b1", n: 1, h: 256, w: 512, width: 18, blocks: 4 },
  { id: "w18s-b2", like: "HRNet-W18-Small branches, 512x256 b2", n: 2, h: 256, w: 512, width: 18, blocks: 4 },
  { id: "w48-b1", like: "HRNet-W48 branches, 1024x512 b1", n: 1, h: 512, w: 1024, width: 48, blocks: 4 },
];

export interface CeilingResult {
  config: CeilingConfig;
  /** Step seconds by contender, all rounds (warm-up steps dropped). */
  seconds: Record<string, number[]>;
  stats: Record<string, Stats>;
  versions: Record<string, string>;
}

const DROP = 2;

async function runSide(python: string, script: string, job: object, threads: number) {
  const out = await new Deno.Command(python, {
    args: [join(ROOT, "bench", script), JSON.stringify(job)],
    env: baselineEnv(threads),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `${script} failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-800)}`,
    );
  }
  return JSON.parse(text.split("\n").at(-1)!) as {
    versions: Record<string, string>;
    seconds: Record<string, number[]>;
  };
}

export async function run(args: string[]): Promise<CeilingResult[]> {
  const { values: v } = parseArgs({
    args,
    options: {
      install: { type: "boolean", default: false },
      reps: { type: "string", default: "3" },
      configs: { type: "string" },
      steps: { type: "string", default: "7" },
    },
  });
  const m = machineInfo();
  const threads = m.cores;
  const torch = await ensureTorchEnv(v.install!);
  const tfEnv = await ensureTfEnv(v.install!);
  if (!torch.python || !tfEnv.python) {
    console.log(`bench ceiling: not run: ${[torch.note, tfEnv.note].filter(Boolean).join("; ")}`);
    writeResult("ceiling", { machine: m, skipped: [torch.note, tfEnv.note].filter(Boolean), results: [] });
    return [];
  }
  let ours = true;
  try {
    await initBackend("tensorflow", { quiet: true });
  } catch (e) {
    ours = false;
    console.log(`  ours not measured: ${(e as Error).message.split("\n")[0]}`);
  }
  const want = v.configs?.split(",") ?? CEILING_CONFIGS.map((c) => c.id);
  const configs = CEILING_CONFIGS.filter((c) => want.includes(c.id));
  const reps = Number(v.reps);
  console.log(
    `bench ceiling: ${m.cpu}, ${m.cores} cores; load ${m.loadAvg.map((x) => x.toFixed(1)).join(" ")}; ` +
      `${reps} rounds, ${v.steps} steps per process (first ${DROP} dropped)`,
  );
  const results: CeilingResult[] = [];
  for (const cfg of configs) {
    console.log(`\n${cfg.id}: ${cfg.like} (width ${cfg.width}, ${cfg.blocks} blocks per branch)`);
    const job = { ...cfg, steps: Number(v.steps), threads };
    const seconds: Record<string, number[]> = {};
    const versions: Record<string, string> = {};
    for (let r = 0; r < reps; r++) {
      const line: string[] = [];
      const record = (byContender: Record<string, number[]>) => {
        for (const [k, ts] of Object.entries(byContender)) {
          (seconds[k] ??= []).push(...ts.slice(DROP));
          line.push(`${k} ${fmtS(stats(ts.slice(DROP)).median)} s`);
        }
      };
      for (
        const [py, script] of [[torch.python, "ceiling_torch.py"], [tfEnv.python, "ceiling_tf.py"]] as const
      ) {
        const out = await runSide(py, script, job, threads);
        Object.assign(versions, out.versions);
        record(out.seconds);
      }
      if (ours) record(await oursOnStack(cfg, Number(v.steps)));
      console.log(`  round ${r + 1}/${reps}: ${line.join(", ")}`);
    }
    const st = Object.fromEntries(Object.entries(seconds).map(([k, ts]) => [k, stats(ts)]));
    const ptBf16 = st["pytorch bf16+CL"]?.median;
    for (const [k, s] of Object.entries(st)) {
      console.log(
        `  ${k.padEnd(42)} ${fmtS(s.median).padStart(6)} s (${fmtS(s.min)}-${fmtS(s.max)}, n=${s.n})  ` +
          `x PyTorch bf16+CL ${(ptBf16 / s.median).toFixed(2)}`,
      );
    }
    results.push({ config: cfg, seconds, stats: st, versions });
  }
  const p = writeResult("ceiling", { machine: m, reps, results });
  console.log(`results: ${p}`);
  return results;
}
