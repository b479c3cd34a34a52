/**
 * `deno task bench train [--quick] [--reps N] [--configs w18s2-b1,w48-b1,...] [--backends tensorflow,wasm,...]
 *                        [--no-torch] [--no-paddle] [--no-bf16] [--install] [--step-budget S] [--no-profile]
 *                        [--no-eager]
 *                        [--size WxH] [--paddle-reps N]`
 *
 * Train-step throughput (forward + loss + backward + momentum-SGD update, `trainStep` of lib/train/step.ts,
 * exactly what the trainer runs, diagnostics on) in images/s for the HRNet contrast model (19 classes,
 * projection 720, loss CE + 0.1 x pixel contrast as configs/hrnet_w48_contrast), beside:
 *   - PyTorch 2.15 + timm 1.0.31 on CPU (bench/torch_train.py: timm's HRNet features + the same heads and loss), as a
 *     user trains today: fp32, fp32 + channels_last, and bf16 autocast + channels_last where the CPU has bf16;
 *   - PaddleSeg on CPU (bench/paddle_train.py: its HRNetW48Contrast + PixelContrastCrossEntropyLoss),
 * on the same images and labels. Ours runs in fp32 and, on such a CPU, with `precision: bf16` (the same trainer
 * alternating, lib/backend/native_bf16.ts), on the native backend as `deno task train` does by default (the
 * model's forward and backward as one recorded TensorFlow graph, lib/train/graph_step.ts) and, beside it, op by op
 * (`ours/tensorflow eager ...`, `train.graph: off`; `--no-eager` leaves these out). Steps are interleaved repeat by repeat so that load from other
 * processes hits all contenders alike, as far as memory allows (else phase by phase). Reports median and spread
 * (min-max) per contender, the ratio to each PyTorch mode, peak process RSS (ours: VmHWM reset before each step,
 * max over a contender's steps; baselines: their own process) and TensorFlow.js' byte count (steady state and,
 * from one profiled step, the peak), and the kernel time per op type of a profiled op-by-op fp32 and bf16 step.
 *
 * Every contender uses both cores: libtensorflow's intra-op pool (all cores), torch.set_num_threads(cores),
 * paddle with OMP_NUM_THREADS=cores; the OpenMP baselines get OMP_WAIT_POLICY=PASSIVE (see bench/_common.ts).
 * Backends other than tensorflow are measured only where a small probe says one step fits the step budget.
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import { type BackendName, initBackend, probeBackend } from "../lib/backend/mod.ts";
import { BF16_CPU_FLAGS, cpuBf16Flags, type Precision } from "../lib/backend/native_bf16.ts";
import { buildModel, type SegModel } from "../lib/models/mod.ts";
import { modelOptionsOf } from "../lib/run/options.ts";
import { MomentumSGD } from "../lib/train/optimizer.ts";
import { trainStep } from "../lib/train/step.ts";
import { GraphSteps, resolveGraph } from "../lib/train/graph_step.ts";
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
  /** The trainer's graph steps (train.graph: auto), one set per precision; none with recompute or off the native backend. */
  readonly #graphs = new Map<Precision, GraphSteps>();

  constructor(
    readonly cfg: TrainConfig,
    readonly image: Float32Array,
    readonly label: Int32Array,
    readonly recompute = false,
  ) {
    this.model = buildModel(
      modelOptionsOf({ backbone: cfg.model, numClasses: 19, projDim: 720 }),
      this.rng.fork("init"),
    );
  }

  /** Whether `step` runs the graph step (what `deno task train` does here, with `train.graph: auto`). */
  get graphed(): boolean {
    return resolveGraph("auto", tf.getBackend(), this.recompute).graph;
  }

  /**
   * One train step; returns seconds and the loss. `mode` "graph" is the trainer's default where it applies
   * (native backend, no recompute), "eager" runs op by op (`train.graph: off`).
   */
  async step(
    precision: Precision = "fp32",
    mode: "graph" | "eager" = "graph",
  ): Promise<{ seconds: number; loss: number }> {
    let graph: GraphSteps | null = null;
    if (mode === "graph" && this.graphed) {
      graph = this.#graphs.get(precision) ?? new GraphSteps(this.model, precision);
      this.#graphs.set(precision, graph);
    }
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
      precision,
      graph,
    });
    return { seconds: (performance.now() - t0) / 1000, loss: r.loss };
  }

  dispose(): void {
    for (const g of this.#graphs.values()) g.dispose();
    this.model.dispose();
    this.optimizer.dispose();
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

/** The PyTorch modes measured, by contender name, with what bench/torch_train.py gets for each. */
export const TORCH_MODES = [
  { name: "pytorch bf16+CL", extra: { channels_last: true, autocast: "bf16" }, bf16: true },
  { name: "pytorch fp32+CL", extra: { channels_last: true }, bf16: false },
  { name: "pytorch fp32", extra: {}, bf16: false },
] as const;
export type TorchMode = (typeof TORCH_MODES)[number]["name"];

/**
 * Our contender names: `ours/<backend>` (fp32) and the native backend in bf16, as `deno task train` runs them
 * (on the native backend: the graph step, unless recompute is on); `... eager` the same op by op.
 */
export const OURS_BF16 = "ours/tensorflow bf16";
export const OURS_EAGER = "ours/tensorflow eager";
export const OURS_EAGER_BF16 = "ours/tensorflow eager bf16";

interface OurRun {
  p: Precision;
  mode: "graph" | "eager";
  key: string;
}

/** What to time of our trainer on backend `b`. */
function ourRuns(b: BackendName, bf16: boolean, graphed: boolean, eager: boolean): OurRun[] {
  if (b !== "tensorflow") return [{ p: "fp32", mode: "eager", key: `ours/${b}` }];
  const runs: OurRun[] = [{ p: "fp32", mode: "graph", key: "ours/tensorflow" }];
  if (bf16) runs.push({ p: "bf16", mode: "graph", key: OURS_BF16 });
  if (graphed && eager) {
    runs.push({ p: "fp32", mode: "eager", key: OURS_EAGER });
    if (bf16) runs.push({ p: "bf16", mode: "eager", key: OURS_EAGER_BF16 });
  }
  return runs;
}

export interface ContenderResult {
  contender: string;
  detail: string;
  threads: string;
  seconds: number[];
  stats: Stats;
  imagesPerSecond: number;
  /** PyTorch's median step time over this contender's, per PyTorch mode measured (> 1: this one is faster). */
  ratios: Partial<Record<TorchMode, number>>;
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
  /** Kernel time per op of one profiled fp32 step on tensorflow (batch-1 configurations). */
  profile?: OpTime[];
  profileWallS?: number;
  /** The same for a bf16 step. */
  profileBf16?: OpTime[];
  profileBf16WallS?: number;
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
      "no-bf16": { type: "boolean", default: false },
      install: { type: "boolean", default: false },
      "step-budget": { type: "string", default: "90" },
      "no-profile": { type: "boolean", default: false },
      "no-eager": { type: "boolean", default: false },
      size: { type: "string" },
      "paddle-reps": { type: "string", default: "2" },
    },
  }).values;
}

interface Baseline {
  /** Contender name: one of TORCH_MODES or "paddleseg". */
  name: string;
  server: LineServer;
  hello: Record<string, unknown>;
  times: number[];
  losses: number[];
}

interface BaselineSpec {
  name: string;
  script: "torch_train.py" | "paddle_train.py";
  python: string;
  extra: Record<string, unknown>;
  /** Peak RSS to assume for batch 1 before one was measured (W18-Small-V2 at 512x256, HRNet-W48 at 1024x512). */
  fallback: [number, number];
}

async function startBaseline(
  spec: BaselineSpec,
  cfg: TrainConfig,
  inputs: string,
  threads: number,
): Promise<Baseline> {
  const server = new LineServer(spec.python, spec.script, baselineEnv(threads));
  try {
    const hello = await server.request({
      model: cfg.model,
      n: cfg.n,
      h: cfg.h,
      w: cfg.w,
      threads,
      inputs,
      ...spec.extra,
    });
    return { name: spec.name, server, hello, times: [], losses: [] };
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
  const bf16Flags = cpuBf16Flags();
  const bf16 = !v["no-bf16"] && bf16Flags.length > 0;
  const bf16Skip = v["no-bf16"]
    ? "bf16: skipped (--no-bf16)"
    : `bf16 (ours and PyTorch autocast): this CPU has no native bf16 (neither ${
      BF16_CPU_FLAGS.join(" nor ")
    } in /proc/cpuinfo)`;
  console.log(bf16 ? `  bf16: CPU has ${bf16Flags.join(", ")}` : `  not measured: ${bf16Skip}`);

  // --- baselines
  const torchEnv = v["no-torch"] ? { note: "skipped (--no-torch)" } : await ensureTorchEnv(v.install);
  const paddleEnv = v["no-paddle"] ? { note: "skipped (--no-paddle)" } : await ensurePaddleEnv(v.install);
  if (torchEnv.note) console.log(`  PyTorch: ${torchEnv.note}`);
  if (paddleEnv.note) console.log(`  PaddleSeg: ${paddleEnv.note}`);
  const GiB = 2 ** 30;
  const baselineSpecs: BaselineSpec[] = [];
  const baselineSkips: string[] = [];
  for (const mode of TORCH_MODES) {
    if (!torchEnv.python) baselineSkips.push(`${mode.name}: ${torchEnv.note}`);
    else if (mode.bf16 && !bf16) continue; // said once above
    else {
      baselineSpecs.push({
        name: mode.name,
        script: "torch_train.py",
        python: torchEnv.python,
        extra: mode.extra,
        fallback: [1 * GiB, 4.5 * GiB],
      });
    }
  }
  if (paddleEnv.python) {
    baselineSpecs.push({
      name: "paddleseg",
      script: "paddle_train.py",
      python: paddleEnv.python,
      extra: {},
      fallback: [1.5 * GiB, 6 * GiB],
    });
  } else baselineSkips.push(`paddleseg: ${paddleEnv.note}`);

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
  if (!bf16) backendSkips.push(bf16Skip);

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
    const res: ConfigResult = { config: cfg, contenders: [], skipped: [...backendSkips, ...baselineSkips] };
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

    // Phases: ours with as many PyTorch modes (the bf16 and channels_last ones first: the ratios that matter)
    // as fit in memory at once, interleaved repeat by repeat; the other modes in further phases packed the
    // same way; PaddleSeg (the largest and slowest) always on its own. Three W48 processes at once made the
    // machine evict pages and every step 3x slower.
    const avail = availableMemory() ?? 8 * GiB;
    const ourEst = estimate("ours", cfg, big ? 7 * GiB : 1.2 * GiB);
    const room = 0.7 * avail;
    const torchSpecs = baselineSpecs.filter((b) => b.script === "torch_train.py");
    const est = (b: BaselineSpec) => estimate(b.name, cfg, b.fallback[big ? 1 : 0]);
    const phases: string[][] = [["ours"]];
    let used = ourEst;
    const later: BaselineSpec[] = [];
    for (const b of torchSpecs) {
      if (used + est(b) < room) {
        phases[0].push(b.name);
        used += est(b);
      } else later.push(b);
    }
    while (later.length) {
      const phase = [later.shift()!.name];
      let sum = est(torchSpecs.find((b) => b.name === phase[0])!);
      for (let i = 0; i < later.length;) {
        if (sum + est(later[i]) < room) {
          sum += est(later[i]);
          phase.push(later.splice(i, 1)[0].name);
        } else i++;
      }
      phases.push(phase);
    }
    if (baselineSpecs.some((b) => b.name === "paddleseg")) phases.push(["paddleseg"]);
    res.phases = phases.map((ph) => ph.join(" + "));
    if (phases.length > (baselineSpecs.some((b) => b.name === "paddleseg") ? 2 : 1)) {
      console.log(
        `  ours (~${gb(ourEst)} GiB) and all PyTorch modes do not fit together in ${gb(avail)} GiB: ` +
          `phases ${res.phases.join(", then ")}`,
      );
    }
    const times = new Map<string, number[]>();
    const losses = new Map<string, number[]>();
    const ourPeaks = new Map<string, number>();

    for (const phase of phases) {
      const ours: {
        b: BackendName;
        detail: string;
        t: OurTrainer;
        note?: string;
        runs: OurRun[];
      }[] = [];
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
          const t = new OurTrainer(cfg, inputs.image, inputs.label, recompute);
          ours.push({
            b: b.name,
            detail: b.detail,
            t,
            note,
            // fp32 and bf16, graph and op by op alternate on the same trainer (one model in memory; the timings
            // do not depend on the weights' values)
            runs: ourRuns(b.name, bf16, t.graphed, !v["no-eager"]),
          });
        }
      }
      for (const spec of baselineSpecs.filter((b) => phase.includes(b.name))) {
        try {
          running.push(await startBaseline(spec, cfg, inputs.path, cores));
        } catch (e) {
          res.skipped.push(`${spec.name}: ${(e as Error).message}`);
        }
      }
      if (!ours.length && !running.length) continue;
      for (const o of ours) {
        await tf.setBackend(o.b);
        for (const r of o.runs) await o.t.step(r.p, r.mode); // warm-up (and the graph steps' recording)
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
          for (const { p, mode, key: k } of o.runs) {
            resetPeakRss();
            const s = await o.t.step(p, mode);
            const peak = peakRss();
            if (peak) ourPeaks.set(k, Math.max(ourPeaks.get(k) ?? 0, peak));
            push(times, k, s.seconds);
            push(losses, k, s.loss);
            line.push(`${k.replace("ours/", "")} ${fmtS(s.seconds)} s`);
          }
        }
        for (const bl of running) {
          const s = await bl.server.request({ step: 1 });
          bl.times.push(Number(s.seconds));
          bl.losses.push(Number(s.loss));
          line.push(`${bl.name} ${fmtS(Number(s.seconds))} s`);
        }
        console.log(`  repeat ${r + 1}/${phaseReps}: ${line.join(", ")}`);
      }
      for (const o of ours) {
        await tf.setBackend(o.b);
        for (const { p, mode, key: k } of o.runs) {
          const graphStep = o.t.graphed && mode === "graph";
          const how = o.b !== "tensorflow"
            ? ""
            : graphStep
            ? "; forward and backward as one TensorFlow graph (train.graph: auto)"
            : "; op by op (train.graph: off)";
          const c: ContenderResult = {
            contender: k,
            detail: p === "bf16"
              ? `${o.detail}${how}; bf16 (train.precision: bf16, CPU ${bf16Flags.join(", ")}): ${
                graphStep
                  ? "ops chosen by grappler's oneDNN auto mixed precision"
                  : "convolutions and matmuls"
              }`
              : `${o.detail}${how}`,
            threads: o.b === "tensorflow"
              ? `${cores} (intra-op pool)`
              : o.b === "wasm"
              ? "1 (XNNPACK, no threads in Deno)"
              : o.b === "cpu"
              ? "1 (JS)"
              : "GPU",
            seconds: times.get(k)!,
            stats: stats(times.get(k)!),
            imagesPerSecond: 0,
            ratios: {},
            peakRssBytes: ourPeaks.get(k) ?? null,
            tfBytes: tf.memory().numBytes,
            note: o.note,
            losses: losses.get(k),
          };
          if (o.b === "tensorflow") {
            if (p === "fp32" && mode === "graph") tfRate.set(cfg.model, c.stats.median / pixels);
            const peak = ourPeaks.get(k);
            if (peak && !o.note) {
              const prev = peaks.get(`ours/${cfg.model}`);
              if (!prev || peak / cfg.n > prev.bytes / prev.n) {
                peaks.set(`ours/${cfg.model}`, { n: cfg.n, bytes: peak });
              }
            }
            if (!v["no-profile"] && cfg.n === 1 && (mode === "eager" || !o.t.graphed)) {
              // one more step under tf.profile: kernel time per op type and the peak of TF.js' byte count (op by
              // op: inside a graph step tf.profile sees only the loss's kernels)
              const prof = await profileOps(async () => void await o.t.step(p, "eager"));
              c.tfPeakBytes = prof.peakBytes;
              if (p === "fp32") {
                res.profile = prof.ops;
                res.profileWallS = prof.wallS;
              } else {
                res.profileBf16 = prof.ops;
                res.profileBf16WallS = prof.wallS;
              }
            }
          }
          res.contenders.push(c);
        }
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
          detail: bl.name.startsWith("pytorch")
            ? `torch ${h.torch}, timm ${h.timm}, ${h.mode} (${(Number(h.params) / 1e6).toFixed(1)}M params)`
            : `paddlepaddle ${h.paddlepaddle}, paddleseg ${h.paddleseg} (${
              (Number(h.params) / 1e6).toFixed(1)
            }M params incl. BN statistics)`,
          threads: `${h.threads}`,
          seconds: bl.times,
          stats: stats(bl.times),
          imagesPerSecond: 0,
          ratios: {},
          peakRssBytes: peak,
          losses: bl.losses,
        });
      }
    }
    for (const c of res.contenders) {
      c.imagesPerSecond = cfg.n / c.stats.median;
      for (const mode of TORCH_MODES) {
        const t = times.get(mode.name);
        if (t?.length) c.ratios[mode.name] = stats(t).median / c.stats.median;
      }
    }
    results.push(res);
    printConfig(res);
  }
  const path = writeResult("train", { machine: m, loadAvgEnd: Deno.loadavg(), reps, bf16Flags, results });
  console.log(`\nresults: ${path}`);
  return results;
}

function push(m: Map<string, number[]>, k: string, x: number): void {
  const a = m.get(k) ?? [];
  a.push(x);
  m.set(k, a);
}

/** Short column names for the ratio to each PyTorch mode. */
const RATIO_COLUMNS: [TorchMode, string][] = [
  ["pytorch fp32", "x pt32"],
  ["pytorch fp32+CL", "x pt32CL"],
  ["pytorch bf16+CL", "x ptbfCL"],
];

function printConfig(r: ConfigResult): void {
  console.log(
    `  ${"contender".padEnd(22)}${"median s".padStart(10)}${"min-max s".padStart(16)}${"img/s".padStart(9)}` +
      RATIO_COLUMNS.map(([, h]) => h.padStart(10)).join("") +
      `${"peak RSS GiB".padStart(14)}${"tf GiB".padStart(8)}${"tf peak".padStart(9)}`,
  );
  for (const c of r.contenders) {
    console.log(
      `  ${c.contender.padEnd(22)}${fmtS(c.stats.median).padStart(10)}${
        `${fmtS(c.stats.min)}-${fmtS(c.stats.max)}`.padStart(16)
      }` +
        `${c.imagesPerSecond.toFixed(3).padStart(9)}` +
        RATIO_COLUMNS.map(([k]) => (c.ratios[k] ? c.ratios[k]!.toFixed(2) : "-").padStart(10)).join("") +
        `${gb(c.peakRssBytes).padStart(14)}${gb(c.tfBytes).padStart(8)}${gb(c.tfPeakBytes).padStart(9)}`,
    );
    if (c.note) console.log(`    note: ${c.note}`);
  }
  for (const s of r.skipped) console.log(`  not measured: ${s}`);
  if (r.phases) console.log(`  schedule: ${r.phases.join(", then ")} ("+" = interleaved repeat by repeat)`);
  for (
    const [label, ops, wall] of [["fp32", r.profile, r.profileWallS], [
      "bf16",
      r.profileBf16,
      r.profileBf16WallS,
    ]] as const
  ) {
    if (!ops) continue;
    const total = ops.reduce((a, o) => a + o.ms, 0);
    console.log(`  profile, ${label} (one step, ${fmtS(wall!)} s wall, kernel time by op type):`);
    for (const o of ops.slice(0, 8)) {
      console.log(
        `    ${o.op.padEnd(26)}${String(o.calls).padStart(6)} calls ${
          (o.ms / 1000).toFixed(2).padStart(7)
        } s ${(100 * o.ms / total).toFixed(0).padStart(3)}%`,
      );
    }
  }
}

if (import.meta.main) await run(Deno.args);
