/**
 * `deno task bench eval [--quick] [--reps N] [--no-torch] [--no-paddle] [--install]`
 *
 * Evaluation throughput in images/s on the native backend: `predictClasses` of lib/eval/inference.ts (the
 * model's eval-mode forward without the projection head, bilinear upsampling, argmax, download of the class
 * map), whole image and sliding window (PaddleSeg's grid), beside PyTorch (bench/torch_train.py) and PaddleSeg
 * (its core.infer.inference, bench/paddle_train.py) on CPU, same image, interleaved repeat by repeat.
 *
 *   HRNet-W18-Small-V2 on a 2048x1024 frame: whole, and slide with crop 1024x512, stride 768x384 (9 windows)
 *   HRNet-W48 contrast on a 1024x512 image: whole, and slide with crop 512x256, stride 384x192 (9 windows)
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { initBackend } from "../lib/backend/mod.ts";
import { buildModel } from "../lib/models/mod.ts";
import { modelOptionsOf } from "../lib/run/options.ts";
import { predictClasses, resolveEvalMode } from "../lib/eval/inference.ts";
import { Rng } from "../lib/util/rng.ts";
import {
  baselineEnv,
  ensurePaddleEnv,
  ensureTorchEnv,
  fmtS,
  gb,
  LineServer,
  machineInfo,
  peakRss,
  resetPeakRss,
  type Stats,
  stats,
  writeResult,
} from "./_common.ts";
import { type Backbone, makeInputs } from "./_workload.ts";

export interface EvalConfig {
  id: string;
  model: Backbone;
  h: number;
  w: number;
  crop: [number, number];
  stride: [number, number];
}

export const EVAL_CONFIGS: EvalConfig[] = [
  {
    id: "w18s2-2048x1024",
    model: "HRNet_W18_Small_V2",
    h: 1024,
    w: 2048,
    crop: [1024, 512],
    stride: [768, 384],
  },
  { id: "w48-1024x512", model: "HRNet_W48", h: 512, w: 1024, crop: [512, 256], stride: [384, 192] },
];

export interface EvalContender {
  contender: string;
  mode: "whole" | "slide";
  seconds: number[];
  stats: Stats;
  imagesPerSecond: number;
  ratioTorch: number | null;
  peakRssBytes: number | null;
}

export interface EvalResult {
  config: EvalConfig;
  contenders: EvalContender[];
  skipped: string[];
  detail: Record<string, string>;
}

export async function run(args: string[]): Promise<EvalResult[]> {
  const { values: v } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      "no-torch": { type: "boolean", default: false },
      "no-paddle": { type: "boolean", default: false },
      install: { type: "boolean", default: false },
    },
  });
  const reps = Math.max(1, Number(v.reps ?? (v.quick ? 2 : 3)));
  const cores = navigator.hardwareConcurrency;
  const info = await initBackend("tensorflow", { quiet: true });
  const m = machineInfo();
  console.log(
    `bench eval: backend ${info.name} (${info.detail}); ${reps} timed images per mode after 1 warm-up`,
  );
  const torchEnv = v["no-torch"] ? { note: "skipped (--no-torch)" } : await ensureTorchEnv(v.install);
  const paddleEnv = v["no-paddle"] ? { note: "skipped (--no-paddle)" } : await ensurePaddleEnv(v.install);
  const configs = v.quick ? EVAL_CONFIGS.slice(0, 1) : EVAL_CONFIGS;
  const results: EvalResult[] = [];
  for (const cfg of configs) {
    console.log(
      `\n${cfg.id}: ${cfg.model} on ${cfg.w}x${cfg.h}; slide crop ${cfg.crop.join("x")} stride ${
        cfg.stride.join("x")
      }`,
    );
    const inputs = makeInputs(1, cfg.h, cfg.w);
    const res: EvalResult = { config: cfg, contenders: [], skipped: [], detail: { ours: info.detail } };
    const model = buildModel(
      modelOptionsOf({ backbone: cfg.model, numClasses: 19, projDim: 720 }),
      new Rng(3).fork("init"),
    );
    const x = tf.tensor4d(inputs.image, [1, cfg.h, cfg.w, 3]);
    const modes = {
      whole: resolveEvalMode({}),
      slide: resolveEvalMode({ isSlide: true, cropSize: cfg.crop, stride: cfg.stride }),
    };
    const ours = (mode: "whole" | "slide") => {
      const t0 = performance.now();
      const y = predictClasses(model, x, modes[mode]);
      y.dataSync();
      y.dispose();
      return (performance.now() - t0) / 1000;
    };
    const bases: { name: string; server: LineServer }[] = [];
    for (const [name, env] of [["pytorch", torchEnv], ["paddleseg", paddleEnv]] as const) {
      if (!env.python) {
        res.skipped.push(`${name}: ${env.note}`);
        continue;
      }
      const server = new LineServer(
        env.python,
        name === "pytorch" ? "torch_train.py" : "paddle_train.py",
        baselineEnv(cores),
      );
      try {
        const h = await server.request({
          model: cfg.model,
          n: 1,
          h: cfg.h,
          w: cfg.w,
          threads: cores,
          inputs: inputs.path,
        });
        res.detail[name] = name === "pytorch"
          ? `torch ${h.torch}, timm ${h.timm}`
          : `paddlepaddle ${h.paddlepaddle}, paddleseg ${h.paddleseg}`;
        bases.push({ name, server });
      } catch (e) {
        server.kill();
        res.skipped.push(`${name}: ${(e as Error).message}`);
      }
    }
    for (const mode of ["whole", "slide"] as const) {
      resetPeakRss();
      const times: Record<string, number[]> = { ours: [] };
      ours(mode);
      for (const b of bases) {
        times[b.name] = [];
        await b.server.request({ infer: mode, crop: cfg.crop, stride: cfg.stride });
      }
      for (let r = 0; r < reps; r++) {
        times.ours.push(ours(mode));
        for (const b of bases) {
          times[b.name].push(
            Number((await b.server.request({ infer: mode, crop: cfg.crop, stride: cfg.stride })).seconds),
          );
        }
      }
      const peak = peakRss();
      const torchMed = times.pytorch ? stats(times.pytorch).median : null;
      for (const [name, ts] of Object.entries(times)) {
        const st = stats(ts);
        res.contenders.push({
          contender: name === "ours" ? "ours/tensorflow" : name,
          mode,
          seconds: ts,
          stats: st,
          imagesPerSecond: 1 / st.median,
          ratioTorch: torchMed ? torchMed / st.median : null,
          peakRssBytes: name === "ours" ? peak : null,
        });
      }
    }
    for (const b of bases) {
      const bye = await b.server.close();
      for (const c of res.contenders) {
        if (c.contender === b.name) {
          c.peakRssBytes = bye ? Number(bye.max_rss) : null;
        }
      }
    }
    x.dispose();
    model.dispose();
    console.log(
      `  ${"contender".padEnd(18)}${"mode".padEnd(7)}${"median s".padStart(10)}${"min-max s".padStart(16)}${
        "img/s".padStart(9)
      }${"x torch".padStart(9)}${"peak RSS GiB".padStart(14)}`,
    );
    for (const c of res.contenders) {
      console.log(
        `  ${c.contender.padEnd(18)}${c.mode.padEnd(7)}${fmtS(c.stats.median).padStart(10)}` +
          `${`${fmtS(c.stats.min)}-${fmtS(c.stats.max)}`.padStart(16)}${
            c.imagesPerSecond.toFixed(3).padStart(9)
          }` +
          `${(c.ratioTorch ? c.ratioTorch.toFixed(2) : "-").padStart(9)}${gb(c.peakRssBytes).padStart(14)}`,
      );
    }
    for (const s of res.skipped) console.log(`  not measured: ${s}`);
    results.push(res);
  }
  const path = writeResult("eval", { machine: m, loadAvgEnd: Deno.loadavg(), reps, results });
  console.log(`\nresults: ${path}`);
  return results;
}

if (import.meta.main) await run(Deno.args);
