/**
 * `deno task bench precision [--config X] [--seeds 0,1] [--precisions fp32,bf16] [--iters N] [--out DIR]`
 *
 * Accuracy of `train.precision: bf16` against fp32: trains the default config (or `--config`) once per precision
 * and seed, each in its own `deno task train` process (lib/cli/train.ts, nothing else running beside it), and
 * reports the final mIoU of each run, the mean per precision and the bf16 - fp32 difference (issue 16 asks for
 * |difference| <= 0.01 over two seeds), with s/it. About 12 minutes per run of the default config on 2 cores:
 * 4 runs ~ 50 min. Results: bench/out/precision.json (bench/report.ts puts them into RESULTS.md) and the runs'
 * folders under output/precision/<date-time>/ (checkpoints, metrics.jsonl, report.html).
 *
 * On a CPU without native bf16 (neither avx512_bf16 nor amx_bf16) the bf16 runs fall back to fp32, which the
 * trainer says in one line; this benchmark then stops before training, as there is nothing to compare.
 */
import { parseArgs } from "node:util";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cpuBf16Flags } from "../lib/backend/native_bf16.ts";
import { DEFAULT_CONFIG } from "../lib/cli/common.ts";
import { machineInfo, ROOT, writeResult } from "./_common.ts";

export interface PrecisionRun {
  precision: string;
  seed: number;
  saveDir: string;
  mIoU: number | null;
  iters: number;
  secondsPerIter: number | null;
  wallMin: number;
  /** The trainer's "precision: ..." and "graph: ..." lines (what ran in bf16, and how). */
  precisionLines: string[];
  ok: boolean;
}

function lastEval(dir: string): { mIoU: number; iter: number } | null {
  const p = join(dir, "metrics.jsonl");
  if (!existsSync(p)) return null;
  const evals = readFileSync(p, "utf8").trim().split("\n").filter((l) => l).map((l) => JSON.parse(l))
    .filter((r) => r.type === "eval");
  const e = evals.at(-1);
  return e ? { mIoU: e.mIoU, iter: e.iter } : null;
}

export async function run(args: string[]): Promise<PrecisionRun[]> {
  const { values: v } = parseArgs({
    args,
    options: {
      config: { type: "string", default: DEFAULT_CONFIG },
      seeds: { type: "string", default: "0,1" },
      precisions: { type: "string", default: "fp32,bf16" },
      iters: { type: "string" },
      // a fresh folder per invocation: the trainer never writes into another run's save_dir
      out: {
        type: "string",
        default: `output/precision/${new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-")}`,
      },
    },
  });
  const flags = cpuBf16Flags();
  const precisions = v.precisions!.split(",");
  if (precisions.includes("bf16") && flags.length === 0) {
    console.log(
      "bench precision: this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16): bf16 runs would train in " +
        "fp32; nothing to compare here",
    );
    return [];
  }
  const seeds = v.seeds!.split(",").map(Number);
  const m = machineInfo();
  console.log(
    `bench precision: ${v.config}, precisions ${precisions.join(", ")} x seeds ${seeds.join(", ")}; ` +
      `${m.cpu}, ${m.cores} cores (bf16 flags: ${flags.join(", ") || "none"}); load ${
        m.loadAvg.map((x) => x.toFixed(1)).join(" ")
      }`,
  );
  const runs: PrecisionRun[] = [];
  for (const seed of seeds) {
    for (const precision of precisions) {
      const saveDir = join(v.out!, `${precision}_seed${seed}`);
      const argv = [
        "run",
        "-A",
        join(ROOT, "lib", "cli", "train.ts"),
        "--config",
        v.config!,
        "--precision",
        precision,
        "--seed",
        String(seed),
        "--save_dir",
        saveDir,
        ...(v.iters ? ["--iters", v.iters] : []),
      ];
      console.log(`\n=== ${precision}, seed ${seed}: deno ${argv.join(" ")}`);
      const t0 = performance.now();
      const child = new Deno.Command(Deno.execPath(), {
        args: argv,
        cwd: ROOT,
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const lines: string[] = [];
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of child.stdout) {
        await Deno.stdout.write(chunk);
        buf += dec.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        lines.push(...parts);
      }
      lines.push(buf);
      const st = await child.status;
      const wallMin = (performance.now() - t0) / 60000;
      const ev = lastEval(join(ROOT, saveDir));
      const done = lines.map((l) => l.match(/^done: (\d+) iterations, ([\d.]+) s\/it/)).find((x) => x);
      runs.push({
        precision,
        seed,
        saveDir,
        mIoU: ev?.mIoU ?? null,
        iters: done ? Number(done[1]) : ev?.iter ?? 0,
        secondsPerIter: done ? Number(done[2]) : null,
        wallMin,
        precisionLines: lines.filter((l) => l.startsWith("precision:") || l.startsWith("graph:")),
        ok: st.success,
      });
      writeResult("precision", { machine: m, config: v.config, bf16Flags: flags, runs });
    }
  }
  console.log(`\n${summary(runs)}`);
  return runs;
}

/** Per-run rows, the mean per precision and bf16 - fp32 (markdown). */
export function summary(runs: PrecisionRun[]): string {
  const seeds = [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b);
  const precisions = [...new Set(runs.map((r) => r.precision))];
  const f = (x: number | null | undefined, d = 4) => (x == null || !Number.isFinite(x) ? "-" : x.toFixed(d));
  const rows = [
    `| precision | ${seeds.map((s) => `seed ${s} mIoU`).join(" | ")} | mean ± half-range | s/it (mean) |`,
    `|---|${seeds.map(() => "---|").join("")}---|---|`,
  ];
  const means = new Map<string, number>();
  for (const p of precisions) {
    const rs = seeds.map((s) => runs.find((r) => r.precision === p && r.seed === s));
    const vals = rs.map((r) => r?.mIoU).filter((x): x is number => x != null);
    const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
    const half = vals.length ? (Math.max(...vals) - Math.min(...vals)) / 2 : NaN;
    const its = rs.map((r) => r?.secondsPerIter).filter((x): x is number => x != null);
    means.set(p, mean);
    rows.push(
      `| ${p} | ${rs.map((r) => f(r?.mIoU)).join(" | ")} | ${f(mean)} ± ${f(half)} | ${
        f(its.length ? its.reduce((a, b) => a + b, 0) / its.length : null, 3)
      } |`,
    );
  }
  const out = [rows.join("\n")];
  if (means.has("fp32") && means.has("bf16")) {
    const d = means.get("bf16")! - means.get("fp32")!;
    out.push(
      `bf16 - fp32 mean mIoU: ${d >= 0 ? "+" : ""}${f(d)} (issue 16's bound: within ±0.01: ${
        Math.abs(d) <= 0.01 ? "met" : "not met"
      })`,
    );
  }
  const lines = [...new Set(runs.flatMap((r) => r.precisionLines))];
  if (lines.length) out.push("Trainer lines:\n\n" + lines.map((l) => `- \`${l}\``).join("\n"));
  const failed = runs.filter((r) => !r.ok);
  if (failed.length) {
    out.push(`Failed runs: ${failed.map((r) => `${r.precision} seed ${r.seed}`).join(", ")}`);
  }
  return out.join("\n\n");
}

if (import.meta.main) await run(Deno.args);
