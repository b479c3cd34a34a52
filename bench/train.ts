/**
 * `deno task bench train [--quick] [--reps N] [--configs w18s2-b1,w48-b1,...] [--backends tensorflow,wasm,...]
 *                        [--no-torch] [--no-paddle] [--install] [--step-budget S] [--no-profile] [--size WxH]
 *                        [--paddle-reps N]`
 *
 * Train-step throughput (forward + loss + backward + momentum-SGD update, `trainStep` of lib/train/step.ts,
 * exactly what the trainer runs, diagnostics on) in images/s for the HRNet contrast model (19 classes,
 * projection 720, loss CE + 0.1 x pixel contrast as configs/hrnet_w48_contrast), beside:
 *   - PyTorch on CPU (bench/torch_train.py: timm's HRNet features + the same heads and loss), and
 *   - PaddleSeg on CPU (bench/paddle_train.py: its HRNetW48Contrast + PixelContrastCrossEntropyLoss),
 * on the same images and labels, steps interleaved repeat by repeat so that load from other processes hits all
 * contenders alike. Reports median and spread (min-max) per contender, the ratio to PyTorch, peak process RSS
 * (ours: VmHWM reset per configuration; baselines: their own process) and TensorFlow.js' byte count (steady
 * state and, from one profiled step, the peak), and the kernel time per op type of that profiled step.
 *
 * Every contender uses both cores: libtensorflow's intra-op pool (all cores), torch.set_num_threads(cores),
 * paddle with OMP_NUM_THREADS=cores; the OpenMP baselines get OMP_WAIT_POLICY=PASSIVE (see bench/_common.ts).
 * Backends other than tensorflow are measured only where a small probe says one step fits the step budget.
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { type BackendName, initBackend, probeBackend } from "../lib/backend/mod.ts";
import { buildModel, type SegModel } from "../lib/models/mod.ts";
import { MomentumSGD } from "../lib/train/optimizer.ts";
import { trainStep } from "../lib/train/step.ts";
import { Rng } from "../lib/util/rng.ts";
import {
  availableMemory,
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
import { type Backbone, makeInputs, SEED_LOSS, TRAIN_CONFIGS, type TrainConfig } from "./_workload.ts";

export { type Backbone, makeInputs, SEED_LOSS, TRAIN_CONFIGS, type TrainConfig };

/** Our side of one configuration on one backend. */
export class OurTrainer {
  readonly model: SegModel;
  readonly optimizer = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
  readonly rng = new Rng(2021);
  iter = 0;

  constructor(
    readonly cfg: TrainConfig,
    readonly image: Float32Array,
    readonly label: Int32Array,
    readonly recompute = false,
  ) {
    this.model = buildModel({ backbone: cfg.model, numClasses: 19, projDim: 720 }, this.rng.fork("init"));
  }

  /** One train step; returns seconds and the loss. */
  async step(): Promise<{ seconds: number; loss: number }> {
    const t0 = performance.now();
    const r = await trainStep([{
      image: this.image,
      label: this.label,
      shape: [this.cfg.n, this.cfg.h, this.cfg.w],
    }], {
      model: this.model,
      optimizer: this.optimizer,
      loss: SEED_LOSS,
      rng: this.rng,
      iter: this.iter++,
      lr: 0.01,
      diagnostics: true,
      recompute: this.recompute,
    });
    return { seconds: (performance.now() - t0) / 1000, loss: r.loss };
  }

  dispose(): void {
    this.model.dispose();
    for (const v of this.optimizer.velocity.values()) v.dispose();
  }
}

export interface OpTime {
  op: string;
  calls: number;
  ms: number;
}

/** Kernel time per op type of one call of `f` (tf.profile), plus the peak of TF.js' byte count. */
export async function profileOps(
  f: () => void | Promise<void>,
): Promise<{ ops: OpTime[]; peakBytes: number; wallS: number }> {
  const t0 = performance.now();
  const info = await tf.profile(f);
  const wallS = (performance.now() - t0) / 1000;
  const by = new Map<string, OpTime>();
  for (const k of info.kernels) {
    const ms = await (k.kernelTimeMs as unknown as Promise<number | { error: string }> | number);
    const o = by.get(k.name) ?? { op: k.name, calls: 0, ms: 0 };
    o.calls++;
    o.ms += typeof ms === "number" ? ms : 0;
    by.set(k.name, o);
  }
  return { ops: [...by.values()].sort((a, b) => b.ms - a.ms), peakBytes: info.peakBytes, wallS };
}

export interface ContenderResult {
  contender: string;
  detail: string;
  threads: string;
  seconds: number[];
  stats: Stats;
  imagesPerSecond: number;
  ratioTorch: number | null;
  peakRssBytes: number | null;
  tfBytes?: number;
  tfPeakBytes?: number;
  note?: string;
  losses?: number[];
}

export interface ConfigResult {
  config: TrainConfig;
  /** How the contenders were scheduled: "+" = interleaved repeat by repeat; phases ran one after the other. */
  phases?: string[];
  contenders: ContenderResult[];
  skipped: string[];
  profile?: OpTime[];
  profileWallS?: number;
}

function flags(args: string[]) {
  return parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      reps: { type: "string" },
      configs: { type: "string" },
      backends: { type: "string" },
      "no-torch": { type: "boolean", default: false },
      "no-paddle": { type: "boolean", default: false },
      install: { type: "boolean", default: false },
      "step-budget": { type: "string", default: "90" },
      "no-profile": { type: "boolean", default: false },
      size: { type: "string" },
      "paddle-reps": { type: "string", default: "2" },
    },
  }).values;
}

interface Baseline {
  name: "pytorch" | "paddleseg";
  server: LineServer;
  hello: Record<string, unknown>;
  times: number[];
  losses: number[];
}

async function startBaseline(
  name: Baseline["name"],
  python: string,
  cfg: TrainConfig,
  inputs: string,
  threads: number,
  extra: Record<string, unknown> = {},
): Promise<Baseline> {
  const server = new LineServer(
    python,
    name === "pytorch" ? "torch_train.py" : "paddle_train.py",
    baselineEnv(threads),
  );
  try {
    const hello = await server.request({
      model: cfg.model,
      n: cfg.n,
      h: cfg.h,
      w: cfg.w,
      threads,
      inputs,
      ...extra,
    });
    return { name, server, hello, times: [], losses: [] };
  } catch (e) {
    server.kill();
    throw e;
  }
}

export async function run(args: string[]): Promise<ConfigResult[]> {
  const v = flags(args);
  const cores = navigator.hardwareConcurrency;
  const reps = Math.max(1, Number(v.reps ?? (v.quick ? 2 : 3)));
  const budget = Number(v["step-budget"]);
  const wantIds = v.configs?.split(",") ??
    (v.quick ? ["w18s2-b1", "w18s2-b2"] : TRAIN_CONFIGS.map((c) => c.id));
  const size = v.size?.split("x").map(Number);
  const configs = TRAIN_CONFIGS.filter((c) => wantIds.includes(c.id))
    .map((c) => size ? { ...c, w: size[0], h: size[1] } : c);
  const m = machineInfo();
  console.log(
    `bench train: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB; load ${
      m.loadAvg.map((x) => x.toFixed(1)).join(" ")
    };` +
      ` ${reps} timed steps per contender after 1 warm-up`,
  );

  // --- baselines
  const torchEnv = v["no-torch"] ? { note: "skipped (--no-torch)" } : await ensureTorchEnv(v.install);
  const paddleEnv = v["no-paddle"] ? { note: "skipped (--no-paddle)" } : await ensurePaddleEnv(v.install);
  if (torchEnv.note) console.log(`  PyTorch: ${torchEnv.note}`);
  if (paddleEnv.note) console.log(`  PaddleSeg: ${paddleEnv.note}`);

  // --- our backends: tensorflow first (it must load before anything touches WebGPU), webgpu last
  const wanted = (v.backends?.split(",") ?? ["tensorflow", "wasm", "cpu", "webgpu"]) as BackendName[];
  const backends: { name: BackendName; detail: string }[] = [];
  const backendSkips: string[] = [];
  for (
    const b of (["tensorflow", "wasm", "cpu", "webgpu"] as BackendName[]).filter((b) => wanted.includes(b))
  ) {
    const p = await probeBackend(b);
    if (!p.available) backendSkips.push(`${b}: ${p.detail}`);
    else if (b === "webgpu" && !p.autoEligible) {
      backendSkips.push(`webgpu: ${p.detail} (a software rasteriser)`);
    } else {
      const info = await initBackend(b, { quiet: true });
      backends.push({ name: b, detail: info.detail });
    }
  }
  for (const s of backendSkips) console.log(`  not measured: ${s}`);

  // probe the slow backends once: seconds per image-pixel of a small W18-Small-V2 step, scaled by the model's
  // cost relative to W18-Small-V2 on tensorflow (measured below)
  const probeRate = new Map<BackendName, number>();
  for (const b of backends.filter((b) => b.name !== "tensorflow")) {
    await tf.setBackend(b.name);
    // the pure-JS cpu backend is thousands of times slower: a tinier probe, and one step (a bound from above)
    const [h, w] = b.name === "cpu" ? [16, 32] : [32, 64];
    const cfg: TrainConfig = { id: "probe", model: "HRNet_W18_Small_V2", h, w, n: 1 };
    const inp = makeInputs(1, cfg.h, cfg.w);
    const t = new OurTrainer(cfg, inp.image, inp.label);
    const s = b.name === "cpu"
      ? (await t.step()).seconds
      : Math.min((await t.step()).seconds, (await t.step()).seconds);
    t.dispose();
    probeRate.set(b.name, s / (cfg.h * cfg.w));
    console.log(`  ${b.name} probe: W18-Small-V2 ${w}x${h} step ${fmtS(s)} s`);
  }

  const results: ConfigResult[] = [];
  const tfRate = new Map<string, number>(); // seconds per pixel on tensorflow, per model
  /** Peak RSS per contender and model at the largest batch measured so far (to size the next phases). */
  const peaks = new Map<string, { n: number; bytes: number }>();
  const estimate = (who: string, cfg: TrainConfig, fallback: number) => {
    const p = peaks.get(`${who}/${cfg.model}`);
    return p ? p.bytes * cfg.n / p.n : fallback * cfg.n;
  };
  for (const cfg of configs) {
    console.log(`\n${cfg.id}: ${cfg.model} ${cfg.w}x${cfg.h}, batch ${cfg.n}`);
    const inputs = makeInputs(cfg.n, cfg.h, cfg.w);
    const res: ConfigResult = { config: cfg, contenders: [], skipped: [...backendSkips] };
    const pixels = cfg.n * cfg.h * cfg.w;
    const big = cfg.model === "HRNet_W48";

    // which of our backends fit the step budget
    const mine: { name: BackendName; detail: string }[] = [];
    for (const b of backends) {
      if (b.name !== "tensorflow") {
        const w18 = tfRate.get("HRNet_W18_Small_V2"), own = tfRate.get(cfg.model);
        const scale = w18 && own ? own / w18 : big ? 10 : 1;
        const est = probeRate.get(b.name)! * pixels * scale;
        if (est > budget) {
          res.skipped.push(
            `${b.name}: one step estimated at ${est.toFixed(0)} s (> step budget ${budget} s)`,
          );
          continue;
        }
      }
      mine.push(b);
    }
    const bases: { name: Baseline["name"]; python: string }[] = [];
    for (const [name, env] of [["pytorch", torchEnv], ["paddleseg", paddleEnv]] as const) {
      if (env.python) bases.push({ name, python: env.python });
      else res.skipped.push(`${name}: ${env.note}`);
    }

    // Phases: ours and PyTorch interleaved when both fit in memory at once, else one after the other;
    // PaddleSeg (the largest and slowest) always on its own. Three W48 processes at once made the machine
    // evict pages and every step 3x slower.
    const avail = availableMemory() ?? 8 * 2 ** 30;
    const ourEst = estimate("ours", cfg, big ? 7 * 2 ** 30 : 1.2 * 2 ** 30);
    const torchEst = estimate("pytorch", cfg, big ? 4.5 * 2 ** 30 : 1 * 2 ** 30);
    const together = ourEst + torchEst < 0.7 * avail;
    const phases: ("ours" | Baseline["name"])[][] = together
      ? [["ours", "pytorch"], ["paddleseg"]]
      : [["ours"], ["pytorch"], ["paddleseg"]];
    res.phases = phases.map((ph) =>
      ph.filter((w) => w === "ours" || bases.some((b) => b.name === w)).join("+")
    )
      .filter((x) => x);
    if (!together) {
      console.log(
        `  ours (~${gb(ourEst)} GiB) and PyTorch (~${gb(torchEst)} GiB) do not fit together in ${
          gb(avail)
        } GiB: ` +
          "measured one after the other",
      );
    }
    const times = new Map<string, number[]>();
    const losses = new Map<string, number[]>();
    const torchSeconds = () => times.get("pytorch");

    for (const phase of phases) {
      const ours: { b: BackendName; detail: string; t: OurTrainer; note?: string }[] = [];
      const running: Baseline[] = [];
      if (phase.includes("ours")) {
        for (const b of mine) {
          await tf.setBackend(b.name);
          let recompute = false;
          let note: string | undefined;
          if (b.name === "tensorflow" && ourEst > 0.8 * avail) {
            recompute = true;
            note =
              `backbone checkpointing on (recompute: true): a plain step's estimated ${gb(ourEst)} GiB ` +
              `would not fit in the ${gb(avail)} GiB available`;
          }
          ours.push({
            b: b.name,
            detail: b.detail,
            t: new OurTrainer(cfg, inputs.image, inputs.label, recompute),
            note,
          });
        }
      }
      for (const bl of bases.filter((b) => phase.includes(b.name))) {
        try {
          running.push(await startBaseline(bl.name, bl.python, cfg, inputs.path, cores));
        } catch (e) {
          res.skipped.push(`${bl.name}: ${(e as Error).message}`);
        }
      }
      if (!ours.length && !running.length) continue;
      resetPeakRss();
      for (const o of ours) {
        await tf.setBackend(o.b);
        await o.t.step(); // warm-up
      }
      for (const bl of running) await bl.server.request({ step: 1 });
      // PaddleSeg's W48 step takes minutes on a small CPU: fewer repeats for it alone
      const phaseReps = phase.length === 1 && phase[0] === "paddleseg" && big
        ? Math.min(reps, Number(v["paddle-reps"]))
        : reps;
      for (let r = 0; r < phaseReps; r++) {
        const line: string[] = [];
        for (const o of ours) {
          await tf.setBackend(o.b);
          const s = await o.t.step();
          push(times, `ours/${o.b}`, s.seconds);
          push(losses, `ours/${o.b}`, s.loss);
          line.push(`${o.b} ${fmtS(s.seconds)} s`);
        }
        for (const bl of running) {
          const s = await bl.server.request({ step: 1 });
          bl.times.push(Number(s.seconds));
          bl.losses.push(Number(s.loss));
          line.push(`${bl.name} ${fmtS(Number(s.seconds))} s`);
        }
        console.log(`  repeat ${r + 1}/${phaseReps}: ${line.join(", ")}`);
      }
      const ourPeak = peakRss();
      for (const o of ours) {
        await tf.setBackend(o.b);
        const key = `ours/${o.b}`;
        const c: ContenderResult = {
          contender: key,
          detail: o.detail,
          threads: o.b === "tensorflow"
            ? `${cores} (intra-op pool)`
            : o.b === "wasm"
            ? "1 (XNNPACK, no threads in Deno)"
            : o.b === "cpu"
            ? "1 (JS)"
            : "GPU",
          seconds: times.get(key)!,
          stats: stats(times.get(key)!),
          imagesPerSecond: 0,
          ratioTorch: null,
          peakRssBytes: o.b === "tensorflow" ? ourPeak : null,
          tfBytes: tf.memory().numBytes,
          note: o.note,
          losses: losses.get(key),
        };
        if (o.b === "tensorflow") {
          tfRate.set(cfg.model, c.stats.median / pixels);
          if (ourPeak && !o.note) peaks.set(`ours/${cfg.model}`, { n: cfg.n, bytes: ourPeak });
          if (!v["no-profile"] && cfg.n === 1) {
            // one more step under tf.profile: kernel time per op type and the peak of TF.js' byte count
            const p = await profileOps(async () => void await o.t.step());
            c.tfPeakBytes = p.peakBytes;
            res.profile = p.ops;
            res.profileWallS = p.wallS;
          }
        }
        res.contenders.push(c);
        o.t.dispose();
      }
      for (const bl of running) {
        const bye = await bl.server.close();
        const h = bl.hello;
        const peak = bye ? Number(bye.max_rss) : null;
        if (peak) peaks.set(`${bl.name}/${cfg.model}`, { n: cfg.n, bytes: peak });
        times.set(bl.name, bl.times);
        res.contenders.push({
          contender: bl.name,
          detail: bl.name === "pytorch"
            ? `torch ${h.torch}, timm ${h.timm} (${(Number(h.params) / 1e6).toFixed(1)}M params)`
            : `paddlepaddle ${h.paddlepaddle}, paddleseg ${h.paddleseg} (${
              (Number(h.params) / 1e6).toFixed(1)
            }M params incl. BN statistics)`,
          threads: `${h.threads}`,
          seconds: bl.times,
          stats: stats(bl.times),
          imagesPerSecond: 0,
          ratioTorch: null,
          peakRssBytes: peak,
          losses: bl.losses,
        });
      }
    }
    const tm = torchSeconds()?.length ? stats(torchSeconds()!).median : null;
    for (const c of res.contenders) {
      c.imagesPerSecond = cfg.n / c.stats.median;
      c.ratioTorch = tm ? tm / c.stats.median : null;
    }
    results.push(res);
    printConfig(res);
  }
  const path = writeResult("train", { machine: m, loadAvgEnd: Deno.loadavg(), reps, results });
  console.log(`\nresults: ${path}`);
  return results;
}

function push(m: Map<string, number[]>, k: string, x: number): void {
  const a = m.get(k) ?? [];
  a.push(x);
  m.set(k, a);
}

function printConfig(r: ConfigResult): void {
  console.log(
    `  ${"contender".padEnd(18)}${"median s".padStart(10)}${"min-max s".padStart(16)}${"img/s".padStart(9)}` +
      `${"x torch".padStart(9)}${"peak RSS GiB".padStart(14)}${"tf GiB".padStart(8)}${"tf peak".padStart(9)}`,
  );
  for (const c of r.contenders) {
    console.log(
      `  ${c.contender.padEnd(18)}${fmtS(c.stats.median).padStart(10)}${
        `${fmtS(c.stats.min)}-${fmtS(c.stats.max)}`.padStart(16)
      }` +
        `${c.imagesPerSecond.toFixed(3).padStart(9)}${
          (c.ratioTorch ? c.ratioTorch.toFixed(2) : "-").padStart(9)
        }` +
        `${gb(c.peakRssBytes).padStart(14)}${gb(c.tfBytes).padStart(8)}${gb(c.tfPeakBytes).padStart(9)}`,
    );
    if (c.note) console.log(`    note: ${c.note}`);
  }
  for (const s of r.skipped) console.log(`  not measured: ${s}`);
  if (r.phases) console.log(`  schedule: ${r.phases.join(", then ")} ("+" = interleaved repeat by repeat)`);
  if (r.profile) {
    const total = r.profile.reduce((a, o) => a + o.ms, 0);
    console.log(`  profile (one step, ${fmtS(r.profileWallS!)} s wall, kernel time by op type):`);
    for (const o of r.profile.slice(0, 8)) {
      console.log(
        `    ${o.op.padEnd(26)}${String(o.calls).padStart(6)} calls ${
          (o.ms / 1000).toFixed(2).padStart(7)
        } s ${(100 * o.ms / total).toFixed(0).padStart(3)}%`,
      );
    }
  }
}

if (import.meta.main) await run(Deno.args);
