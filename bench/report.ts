/**
 * `deno task bench report`: writes bench/RESULTS.md from the last results under bench/out/ (train.json,
 * eval.json, gpu.json, precision.json and ceiling.json when present, and the logs of the other benchmarks),
 * which `deno task bench` (all) produces first.
 * GPU figures come from bench/out/gpu.json when this machine has a GPU, else from the recorded device run in
 * bench/gpu_results.json (labelled with its card and date; not measured in this run).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tf } from "../lib/backend/tf.ts";
import { fmtS, gb, machineInfo, OUT_DIR, PADDLE_VENV_DIR, ROOT, TORCH_VENV } from "./_common.ts";
import {
  type ConfigResult,
  type OpTime,
  OURS_BF16,
  OURS_EAGER,
  OURS_EAGER_BF16,
  TORCH_MODES,
  type TorchMode,
} from "./train.ts";
import type { EvalResult } from "./eval.ts";
import type { CeilingResult } from "./ceiling.ts";
import { type PrecisionRun, summary as precisionSummary } from "./precision.ts";

function readJson<T>(p: string): T | null {
  try {
    return JSON.parse(readFileSync(p, "utf8")) as T;
  } catch {
    return null;
  }
}

/** When each result under bench/out/ was written, e.g. "train 14:37, eval 12:31" (a report can mix runs). */
function sources(): string {
  const names = [
    "train.json",
    "ceiling.json",
    "precision.json",
    "eval.json",
    "loss.log",
    "data.log",
    "backends.log",
  ];
  const parts: string[] = [];
  for (const n of names) {
    try {
      const t = Deno.statSync(join(OUT_DIR, n)).mtime;
      if (t) {
        parts.push(`${n.replace(/\.(json|log)$/, "")} ${t.toISOString().slice(0, 16).replace("T", " ")}`);
      }
    } catch { /* not run */ }
  }
  return parts.join(", ") || "-";
}

function readText(p: string): string | null {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return null;
  }
}

async function version(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(r.stdout).trim().split("\n").pop() ?? "?";
  } catch {
    return "not available";
  }
}

const spread = (s: { median: number; min: number; max: number; n: number }) =>
  `${fmtS(s.median)} (${fmtS(s.min)}–${fmtS(s.max)}, n=${s.n})`;

const configName = (c: ConfigResult["config"]) =>
  `${c.model.replace("HRNet_", "HRNet-").replaceAll("_", "-")} ${c.w}x${c.h} b${c.n}`;

const ratioCell = (r: number | undefined) => r ? `**${r.toFixed(2)}**` : "-";

function trainTable(results: ConfigResult[]): string {
  const modes = TORCH_MODES.map((m) => m.name);
  const rows = [
    "| configuration | contender | s/step: median (min–max, n) | images/s | " +
    modes.map((m) => `× ${m.replace("pytorch", "PyTorch")}`).join(" | ") +
    " | peak RSS GiB | TF.js GiB (steady / peak) |",
    `|---|---|---|---|${modes.map(() => "---|").join("")}---|---|`,
  ];
  for (const r of results) {
    const name = configName(r.config);
    for (const c of r.contenders) {
      rows.push(
        `| ${name} | ${c.contender}${c.note ? " †" : ""} | ${spread(c.stats)} | ${
          c.imagesPerSecond.toFixed(3)
        } | ` +
          modes.map((m) => ratioCell(c.ratios?.[m])).join(" | ") +
          ` | ${gb(c.peakRssBytes)} | ${
            c.tfBytes != null ? `${gb(c.tfBytes)} / ${gb(c.tfPeakBytes)}` : "-"
          } |`,
      );
    }
  }
  const notes: string[] = [];
  for (const r of results) {
    for (const c of r.contenders) if (c.note) notes.push(`† ${r.config.id}, ${c.contender}: ${c.note}`);
    for (const s of r.skipped) notes.push(`${r.config.id}: not measured: ${s}`);
    if (r.phases) notes.push(`${r.config.id}: schedule ${r.phases.join(", then ")}`);
  }
  return rows.join("\n") + (notes.length ? "\n\n" + [...new Set(notes)].map((n) => `- ${n}`).join("\n") : "");
}

/** The two comparisons issue 16 sets targets for, per configuration (ratio > 1: ours is faster). */
function headlineTable(results: ConfigResult[]): string {
  const rows = [
    "| configuration | ours bf16 vs PyTorch bf16 autocast + channels_last (target ≥ 1.2) | ours fp32 vs PyTorch fp32 + channels_last (target ≥ 1.0) | ours bf16 vs ours fp32 | PyTorch bf16+CL vs its fp32+CL | graph step vs op by op (fp32 / bf16) |",
    "|---|---|---|---|---|---|",
  ];
  const med = (r: ConfigResult, who: string) => r.contenders.find((c) => c.contender === who)?.stats.median;
  const ratio = (a?: number, b?: number) => (a && b ? b / a : undefined);
  for (const r of results) {
    const bf = r.contenders.find((c) => c.contender === OURS_BF16);
    const fp = r.contenders.find((c) => c.contender === "ours/tensorflow");
    const cell = (x?: number, target?: number) =>
      x === undefined
        ? "not measured"
        : `**${x.toFixed(2)}**${target ? (x >= target ? " (met)" : " (not met)") : ""}`;
    rows.push(
      `| ${configName(r.config)} | ${cell(bf?.ratios["pytorch bf16+CL" as TorchMode], 1.2)} | ${
        cell(fp?.ratios["pytorch fp32+CL" as TorchMode], 1.0)
      } | ${cell(ratio(med(r, OURS_BF16), med(r, "ours/tensorflow")))} | ${
        cell(ratio(med(r, "pytorch bf16+CL"), med(r, "pytorch fp32+CL")))
      } | ${
        r.contenders.some((c) => c.contender === OURS_EAGER)
          ? `${cell(ratio(med(r, "ours/tensorflow"), med(r, OURS_EAGER)))} / ${
            cell(ratio(med(r, OURS_BF16), med(r, OURS_EAGER_BF16)))
          }`
          : "op by op only (recompute)"
      } |`,
    );
  }
  return rows.join("\n");
}

function profileTable(ops: OpTime[]): string {
  const total = ops.reduce((a, o) => a + o.ms, 0);
  const rows = ["| op | calls | kernel s | share |", "|---|---|---|---|"];
  for (const o of ops.slice(0, 12)) {
    rows.push(`| ${o.op} | ${o.calls} | ${(o.ms / 1000).toFixed(2)} | ${(100 * o.ms / total).toFixed(0)}% |`);
  }
  return rows.join("\n");
}

function ceilingTable(results: CeilingResult[]): string {
  const rows = [
    "| stack | contender | s/step: median (min–max, n) | × PyTorch bf16+CL |",
    "|---|---|---|---|",
  ];
  for (const r of results) {
    const pt = r.stats["pytorch bf16+CL"]?.median;
    for (const [k, s] of Object.entries(r.stats)) {
      rows.push(
        `| ${r.config.like} | ${k} | ${fmtS(s.median)} (${fmtS(s.min)}–${fmtS(s.max)}, n=${s.n}) | ` +
          `**${(pt / s.median).toFixed(2)}** |`,
      );
    }
  }
  return rows.join("\n");
}

function evalTable(results: EvalResult[]): string {
  const rows = [
    "| model, image | mode | contender | s/image: median (min–max, n) | images/s | × PyTorch | peak RSS GiB |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    const c0 = r.config;
    for (const c of r.contenders) {
      rows.push(
        `| ${c0.model.replace("HRNet_", "HRNet-").replaceAll("_", "-")}, ${c0.w}x${c0.h} | ${
          c.mode === "slide" ? `slide ${c0.crop.join("x")} / ${c0.stride.join("x")}` : "whole"
        } | ${c.contender} | ${spread(c.stats)} | ${c.imagesPerSecond.toFixed(3)} | ${
          c.ratioTorch ? `**${c.ratioTorch.toFixed(2)}**` : "-"
        } | ${gb(c.peakRssBytes)} |`,
      );
    }
    for (const s of r.skipped) rows.push(`| ${c0.id} | - | not measured: ${s} | | | | |`);
  }
  return rows.join("\n");
}

interface GpuRow {
  contender: string;
  config: string;
  median: number;
  min: number;
  max: number;
  seconds: number[];
  imagesPerSecond: number;
  ratioTorch?: number | null;
  warmupS?: number;
  note?: string;
}

function gpuSection(): string {
  const here = readJson<Record<string, unknown>>(join(OUT_DIR, "gpu.json"));
  const recorded = readJson<Record<string, unknown>>(join(ROOT, "bench", "gpu_results.json"));
  const g = here?.nvidia ? here : recorded;
  const lines: string[] = [];
  if (!here?.nvidia) {
    lines.push(
      "This machine has no NVIDIA GPU (`deno task bench gpu` said so and exited 0)." +
        (recorded
          ? " The figures below are the RECORDED device run of bench/gpu_results.json, not measured in this run."
          : ""),
    );
  }
  if (!g) return lines.join("\n\n");
  lines.push(
    `Card: **${g.nvidia}**; recorded ${g.date}; Deno ${g.deno}.\n\n` +
      `- Deno's WebGPU adapter: ${g.webgpuAdapter} — ${
        g.webgpuHardware
          ? "**the real GPU** (hardware adapter)"
          : "**not** the GPU (software adapter or none)"
      }` +
      (g.vulkan ? `\n- Vulkan: ${g.vulkan}` : "") +
      `\n- PyTorch: ${g.torch}` +
      (g.webgpuFullStepError
        ? `\n- The full train step failed on TF.js' webgpu backend: \`${g.webgpuFullStepError}\`. ` +
          (/OffscreenCanvas|clearRect/.test(String(g.webgpuFullStepError))
            ? "(That run predates the asynchronous step: tfjs-backend-webgpu's synchronous read-back draws " +
              "through a 2D OffscreenCanvas, whose 2D context Deno does not have, and the step then read the loss and the " +
              "sampler's labels/predictions synchronously.) "
            : "") +
          "The webgpu row is therefore the CE-only step (backbone + seg head + CE, backward, SGD update; no " +
          "projection head and no contrast loss) with an asynchronous loss download, beside PyTorch's CE-only and " +
          "full steps on the same GPU."
        : ""),
  );
  const rows = (g.rows as GpuRow[] | undefined) ?? [];
  if (rows.length) {
    lines.push(
      [
        "| contender | configuration | s/step: median (min–max, n) | images/s | × PyTorch (same step) | notes |",
        "|---|---|---|---|---|---|",
        ...rows.map((r) =>
          `| ${r.contender} | ${r.config} | ${fmtS(r.median)} (${fmtS(r.min)}–${
            fmtS(r.max)
          }, n=${r.seconds.length}) | ${r.imagesPerSecond.toFixed(2)} | ${
            r.ratioTorch ? r.ratioTorch.toFixed(3) : "-"
          } | ${
            [r.warmupS ? `warm-up ${fmtS(r.warmupS)} s` : "", r.note ?? ""].filter((x) => x).join("; ")
          } |`
        ),
      ].join("\n"),
    );
  }
  return lines.join("\n\n");
}

export async function run(_args: string[] = []): Promise<string> {
  const train = readJson<
    { machine: ReturnType<typeof machineInfo>; loadAvgEnd: number[]; reps: number; results: ConfigResult[] }
  >(
    join(OUT_DIR, "train.json"),
  );
  const ev = readJson<{ reps: number; results: EvalResult[] }>(join(OUT_DIR, "eval.json"));
  const m = train?.machine ?? machineInfo();
  const torchHello = train?.results.flatMap((r) => r.contenders).find((c) =>
    c.contender.startsWith("pytorch")
  )
    ?.detail;
  const torchV = torchHello?.replace(/, (fp32|bf16).*$/, "") ??
    await version(join(TORCH_VENV, "bin", "python"), [
      "-c",
      "import torch, timm; print('torch', torch.__version__, '/ timm', timm.__version__)",
    ]);
  const paddleV = await version(join(PADDLE_VENV_DIR, "bin", "python"), [
    "-c",
    "import cv2, paddle, paddleseg; print('paddlepaddle', paddle.__version__, '/ paddleseg', paddleseg.__version__)",
  ]);
  const tfDetail = train?.results.flatMap((r) => r.contenders).find((c) => c.contender === "ours/tensorflow")
    ?.detail;
  const tfV = tfDetail?.match(/libtensorflow (\d+\.\d+\.\d+)/)?.[1] ?? "?";
  const out: string[] = [];
  out.push(
    "# Benchmark results\n\n" +
      "Generated by `deno task bench` (bench/main.ts → bench/report.ts); every figure is measured beside its baseline " +
      "in the same run (steps interleaved repeat by repeat where memory allows), reported as median with the spread " +
      "(min–max) over the repeats, and as a ratio (> 1: ours is faster).",
  );
  out.push(
    `## Machine\n\n` +
      `- date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n` +
      `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memGiB} GiB; ${m.os}\n` +
      `- measured (UTC, when each result was written; \`deno task bench NAME\` reruns one): ${sources()}\n` +
      `- load average at the start of bench train: ${m.loadAvg.map((x) => x.toFixed(1)).join(" ")}` +
      (train ? `; at its end: ${train.loadAvgEnd.map((x) => x.toFixed(1)).join(" ")}` : "") +
      " (other processes shared the machine: ratios are the figures to read, absolute times are not)\n" +
      `- Deno ${m.deno}; TensorFlow.js ${tf.version_core}; libtensorflow ${tfV} (tfjs-node binding rebuilt by \`deno task setup\`)\n` +
      `- baselines: ${torchV} (PyPI, project-local venv provisioned by the bench; timm's HRNet features + ` +
      "PaddleSeg's heads and loss, bench/torch_train.py; in fp32, fp32 + channels_last, and " +
      '`torch.autocast("cpu", dtype=torch.bfloat16)` + channels_last where the CPU has bf16); ' +
      `${paddleV} (CPU wheels from PyPI, bench/paddle_train.py)\n` +
      `- bf16: CPU flags ${
        (train as { bf16Flags?: string[] } | null)?.bf16Flags?.join(", ") || "none (bf16 not measured)"
      }; ours = \`train.precision: bf16\` (graph step: grappler's oneDNN bf16 auto mixed precision; op by op: ` +
      "lib/backend/native_bf16.ts)\n" +
      `- threads: ours = libtensorflow's intra-op pool over all ${m.cores} cores; PyTorch torch.set_num_threads(${m.cores}); ` +
      `PaddlePaddle OMP_NUM_THREADS=${m.cores}; both baselines with OMP_WAIT_POLICY=PASSIVE (libgomp's busy-waiting ` +
      "made PyTorch 3.5x slower on this shared machine)",
  );
  if (train) {
    out.push(
      "## Train step (forward + loss + backward + momentum-SGD update)\n\n" +
        "`trainStep` of lib/train/step.ts with diagnostics, as the trainer runs it: the HRNet contrast model (19 classes, " +
        "projection 720), CE + 0.1 × pixel contrast (1024 anchors max, 100 views), SGD momentum 0.9, weight decay 2e-4; " +
        "normal-noise images and 64×64-pixel class blocks as labels, identical for all contenders. " +
        `${train.reps} timed steps each after one warm-up; ours in fp32 and bf16 alternate on one trainer, on the ` +
        "tensorflow backend as `deno task train` runs it (`train.graph: auto`: the model's forward and backward as " +
        "one recorded TensorFlow graph, lib/train/graph_step.ts, unless backbone checkpointing is on) and op by op " +
        "(`ours/tensorflow eager ...`, `train.graph: off`). Peak RSS: ours = " +
        "VmHWM of the Deno process reset before each step, max over that contender's steps; baselines = their own " +
        "process. TF.js GiB = `tf.memory().numBytes` after the steps / peak of one profiled step. × columns: that " +
        "PyTorch mode's median step time over the contender's (> 1: the contender is faster).\n\n" +
        "### Against the targets of issue 16\n\n" + headlineTable(train.results) +
        "\n\n### All contenders\n\n" +
        trainTable(train.results),
    );
    const prof = train.results.filter((r) => r.profile || r.profileBf16);
    if (prof.length) {
      const parts: string[] = [];
      for (const r of prof) {
        if (r.profile) {
          parts.push(
            `### ${r.config.id}, fp32 (${fmtS(r.profileWallS!)} s wall)\n\n${profileTable(r.profile)}`,
          );
        }
        if (r.profileBf16) {
          parts.push(
            `### ${r.config.id}, bf16 (${fmtS(r.profileBf16WallS!)} s wall)\n\n${
              profileTable(r.profileBf16)
            }`,
          );
        }
      }
      out.push(
        "## Where a native train step spends its time\n\n" +
          "Kernel time per op type of one profiled op-by-op step on the tensorflow backend (`tf.profile` cannot see " +
          "inside a graph step; nested kernels of " +
          "custom ops are counted inside their op too; in bf16 a conv or matmul's time includes its casts).\n\n" +
          parts.join("\n\n"),
      );
    }
  }
  const ceiling = readJson<
    { machine: ReturnType<typeof machineInfo>; reps: number; results: CeilingResult[] }
  >(
    join(OUT_DIR, "ceiling.json"),
  );
  if (ceiling?.results.length) {
    out.push(
      "## libtensorflow's own graph route beside PyTorch (bench ceiling)\n\n" +
        "What the native backend could reach by running the whole step as one TensorFlow graph (bench/ceiling.ts): " +
        "the same HRNet branch stack (bench/ceiling_torch.py) trained by a `tf.function` step in Python TensorFlow " +
        `${
          ceiling.results[0].versions.tensorflow ?? "?"
        } (the release of our libtensorflow; grappler's oneDNN ` +
        "fusions, bf16 through its auto mixed precision or Keras' mixed_bfloat16) and by PyTorch " +
        `${
          ceiling.results[0].versions.torch ?? "?"
        } (channels_last, fp32 and bf16 autocast), separate processes ` +
        `alternated over ${ceiling.reps} rounds with ours (the same stack from lib/models' layers, trained op by op as ` +
        "our trainer does: bench/ceiling_ours.ts); " +
        `load ${ceiling.machine.loadAvg.map((x) => x.toFixed(1)).join(" ")} ` +
        "at the start. × = PyTorch bf16+CL's median over the row's (> 1: faster than PyTorch's bf16 step).\n\n" +
        ceilingTable(ceiling.results),
    );
  }
  const prec = readJson<{ config: string; bf16Flags: string[]; runs: PrecisionRun[] }>(
    join(OUT_DIR, "precision.json"),
  );
  if (prec?.runs.length) {
    out.push(
      "## Accuracy of `train.precision: bf16` (bench precision)\n\n" +
        `\`${prec.config}\` trained once per precision and seed (\`deno task bench precision\`, each run alone, CPU ` +
        `bf16 flags: ${
          prec.bf16Flags.join(", ") || "none"
        }); final mIoU [whole] on the validation split.\n\n` +
        precisionSummary(prec.runs),
    );
  }
  const fixes = readText(join(ROOT, "bench", "FIXES.md"));
  if (fixes) out.push(fixes.trim());
  if (ev) {
    out.push(
      "## Evaluation (images/s)\n\n" +
        "`predictClasses` of lib/eval/inference.ts (eval-mode forward without the projection head, upsampling, argmax, " +
        `download) beside PyTorch and PaddleSeg's \`core.infer.inference\`; ${ev.reps} timed images per mode after one warm-up.\n\n` +
        evalTable(ev.results),
    );
  }
  for (
    const [name, title] of [["loss", "Loss + sampler alone (bench loss)"], [
      "data",
      "Data loader (bench data)",
    ], [
      "backends",
      "Convolution forward + backward per backend (bench backends)",
    ]] as const
  ) {
    const log = readText(join(OUT_DIR, `${name}.log`));
    if (log) {
      out.push(
        `## ${title}\n\nOutput of \`deno task bench ${name}\` in this run:\n\n\`\`\`\n${clean(log)}\n\`\`\``,
      );
    }
  }
  out.push(`## GPU (bench gpu)\n\n${gpuSection()}`);
  const md = out.join("\n\n") + "\n";
  const path = join(ROOT, "bench", "RESULTS.md");
  writeFileSync(path, md);
  console.log(`bench report: wrote ${path}`);
  return path;
}

/** Drops progress-line noise and libtensorflow's start-up chatter from a captured log. */
function clean(log: string): string {
  return log.split("\n")
    .map((l) => l.split("\r").pop()!)
    .filter((l) => !/^(I0000|WARNING: All log messages|\[setup\])/.test(l))
    .join("\n").trim();
}

if (import.meta.main) await run(Deno.args);
