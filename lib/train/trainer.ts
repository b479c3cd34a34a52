/**
 * The training loop (PaddleSeg's `core/train.py`, for one device), readable top to bottom:
 *
 *   backend -> how this run relates to the reference -> data (checked) -> model, loss, optimizer
 *   -> resume? -> for each iteration: batch, lr, step, log -> checkpoint, evaluate, report -> summary
 *
 * Everything random comes from one seeded generator (dropout, anchor sampling, memory bank) plus the data
 * loader's own seed-derived streams, and both are saved with each checkpoint, so `--resume_model`
 * continues exactly where the run stopped.
 *
 * How the datasets, the model, the loss and the report are made is handed in ({@link TrainParts}): the
 * composition root, lib/run/train.ts, gives lib/run's builders and lib/viz's report writer. This module knows
 * the order of the steps, not how each part is built.
 */
import { join } from "node:path";
import { type BackendInfo, type BackendRequest, initBackend } from "../backend/mod.ts";
import { bf16OpCounts, type Precision, resolvePrecision } from "../backend/native_bf16.ts";
import { type Config, configDiff, configToYaml, loadConfigText } from "../config/mod.ts";
import { checkOnStart, DataLoader, type SegDataset } from "../data/mod.ts";
import { validate } from "../eval/validate.ts";
import type { LossDiagnostics, LossOptions, MemoryBank } from "../losses/mod.ts";
import type { SegModel } from "../models/mod.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import {
  findCheckpoint,
  loadCheckpoint,
  pruneCheckpoints,
  readTrainState,
  repairSaveDir,
  saveCheckpoint,
} from "./checkpoint.ts";
import { claimSaveDir } from "./run_dir.ts";
import { type EvalRecord, MetricsLog, type ReportWriter, type TrainRecord } from "./run_record.ts";
import { MomentumSGD } from "./optimizer.ts";
import { describeRun } from "./reference.ts";
import { polyLr } from "./schedule.ts";
import { splitBatch, trainStep } from "./step.ts";
import { GraphSteps, resolveGraph } from "./graph_step.ts";

/** How the parts of a run are made from its config (handed in by lib/run/train.ts). */
export interface TrainParts {
  /** Opens `config[which]`, with progress; throws naming the key when the config has none. */
  dataset(config: Config, which: "train_dataset" | "val_dataset"): Promise<SegDataset>;
  /** The model of `config.model` with its configured pretrained weights, initialised from `rng`. */
  model(config: Config, rng: Rng, log: (line: string) => void): Promise<SegModel>;
  /** The loss options and, when the contrast loss uses one, its memory bank (initialised from `rng`). */
  loss(config: Config, rng: Rng): { options: LossOptions; memory: MemoryBank | null };
  /** Writes the run's HTML report. */
  report: ReportWriter;
}

export interface TrainOptions {
  /** Config file name, for logs and the report. */
  configName: string;
  /** Backend from the CLI flag / environment; falls back to `config.backend`. */
  backend?: BackendRequest;
  /** Where log lines go (default console.log). */
  log?: (line: string) => void;
  /** Show the progress bar (default true). */
  progress?: boolean;
  /** Called after every iteration (notebooks' live display, tests). */
  onIteration?: (iter: number, loss: number, lr: number) => void;
}

export interface TrainResult {
  saveDir: string;
  iters: number;
  backend: BackendInfo;
  bestMIoU: number;
  bestIter: number;
  lastEval: EvalRecord | null;
  reportPath: string;
  secondsPerIter: number;
  /** The compute precision the run used (after `auto` / fallback). */
  precision: Precision;
}

export async function train(config: Config, parts: TrainParts, opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? console.log;
  // 0. The run's folder: refused if it holds another run (lib/train/run_dir.ts), locked for this process,
  //    and checkpoint swaps a killed run left half-done are put back.
  const claim = await claimSaveDir(config.train.save_dir, config.train.resume_model ?? null);
  try {
    await repairSaveDir(config.train.save_dir, log);
    return await trainIn(config, parts, opts, log);
  } finally {
    await claim.release();
  }
}

async function trainIn(
  config: Config,
  parts: TrainParts,
  opts: TrainOptions,
  log: (line: string) => void,
): Promise<TrainResult> {
  const saveDir = config.train.save_dir;

  // 1. Backend, and how this run relates to the 4-GPU reference.
  const backend = await initBackend(opts.backend ?? config.backend);
  const relation = describeRun(config, backend.name);
  for (const line of relation.lines) log(line);
  const graphMode = resolveGraph(config.train.graph, backend.name, config.train.recompute);
  const precision = resolvePrecision(config.train.precision, backend.name, undefined, graphMode.graph);
  log(precision.line);
  log(graphMode.line);

  // 2. Data, checked before anything expensive happens.
  const trainDs = await parts.dataset(config, "train_dataset");
  const valDs = config.train.do_eval ? await parts.dataset(config, "val_dataset") : null;
  for (const ds of [trainDs, valDs]) if (ds) await checkOnStart(ds);
  log(
    `data: ${trainDs.items.length} training images` +
      (valDs ? `, ${valDs.items.length} validation images` : ""),
  );

  // 3. Model, loss, optimizer; the one generator of the run.
  const rng = new Rng(config.seed);
  const model = await parts.model(config, rng, log);
  const { options: loss, memory } = parts.loss(config, rng);
  const optimizer = new MomentumSGD({
    momentum: config.optimizer.momentum,
    weightDecay: config.optimizer.weight_decay,
  });
  const schedule = { ...config.lr_scheduler, learningRate: relation.lr };
  const lrAt = (k: number) =>
    polyLr(k, {
      learningRate: schedule.learningRate,
      endLr: schedule.end_lr,
      power: schedule.power,
      iters: config.iters,
      warmupIters: schedule.warmup_iters,
      warmupStartLr: schedule.warmup_start_lr,
    });
  const configYaml = configToYaml(config);
  const graph = graphMode.graph
    ? new GraphSteps(model, precision.precision, {
      onRecord: (r) =>
        log(
          `graph: recorded the step for input ${r.shape.join("x")} (${r.ops} ops) in ${
            r.seconds.toFixed(1)
          } s` +
            (precision.precision === "bf16"
              ? "; bf16 ops chosen by grappler's oneDNN auto mixed precision"
              : ""),
        ),
    })
    : null;

  // 4. Resume: model, optimizer, memory bank, generator and data position; the config must not change.
  let startIter = 0, bestMIoU = -1, bestIter = -1;
  let loaderState = undefined;
  let runId: string = crypto.randomUUID();
  if (config.train.resume_model) {
    const found = await findCheckpoint(config.train.resume_model);
    if (found?.note) log(`note: ${found.note}`);
    const dir = found?.dir ?? config.train.resume_model;
    const saved = await readTrainState(dir);
    const savedConfig = await loadConfigText(saved.configYaml, `${dir}/state.json`);
    const diff = configDiff(withoutRunKeys(savedConfig), withoutRunKeys(config));
    if (diff.length) {
      throw new Error(
        `resume: the config differs from the one ${dir} was trained with:\n  ${diff.join("\n  ")}\n` +
          "resume with the same config (run settings under train: may change), or start a new run",
      );
    }
    const state = await loadCheckpoint(dir, { model, optimizer, memory });
    rng.setState(state.rng);
    loaderState = state.loader;
    startIter = state.iter;
    bestMIoU = state.bestMIoU;
    bestIter = state.bestIter;
    runId = state.runId ?? runId;
    log(`resumed from ${dir} at iteration ${startIter}`);
  }
  const metrics = await MetricsLog.open(
    join(saveDir, "metrics.jsonl"),
    config.train.resume_model ? startIter : null,
  );

  // 5. The loop.
  const accum = config.train.grad_accum;
  const loader = new DataLoader(trainDs, {
    batchSize: config.batch_size * accum,
    seed: config.seed,
    state: loaderState,
  });
  const reportPath = join(saveDir, "report.html");
  const writeRunReport = () =>
    parts.report(reportPath, {
      summary: {
        configName: opts.configName,
        backend: backend.name,
        details: {
          iterations: config.iters,
          batch: `${config.batch_size} x ${accum}`,
          seed: config.seed,
          precision: precision.precision,
        },
      },
      train: metrics.train,
      evals: metrics.evals,
      classNames: trainDs.classNames ?? undefined,
    });
  const progress = opts.progress === false
    ? null
    : new Progress({ total: config.iters, label: "train", unit: "it" });
  progress?.update(startIter, "", true);
  progress?.restartClock(startIter);
  const t0 = performance.now();
  let window: { loss: number; diag: LossDiagnostics[]; t: number; n: number } = {
    loss: 0,
    diag: [],
    t: performance.now(),
    n: 0,
  };
  let lastEval: EvalRecord | null = metrics.evals.at(-1) ?? null;
  let lastSaved: string | null = null;
  try {
    for (let k = startIter; k < config.iters; k++) {
      const batch = await loader.next();
      const lr = lrAt(k);
      const logNow = (k + 1) % config.train.log_iters === 0 || k + 1 === config.iters;
      const bf16Before = k === startIter && precision.precision === "bf16" && !graph
        ? new Map(bf16OpCounts)
        : null;
      const r = await trainStep(
        splitBatch({ image: batch.image, label: batch.label, shape: batch.shape }, config.batch_size),
        {
          model,
          optimizer,
          loss,
          rng,
          memory,
          iter: k,
          lr,
          precision: precision.precision,
          recompute: config.train.recompute,
          graph,
          // losses every iteration (the log line averages them); the statistics only where a line is logged
          diagnostics: true,
          statistics: logNow,
          gradientShare: logNow && loss.contrast !== null,
        },
      );
      if (bf16Before) {
        // which ops the size policy of lib/backend/native_bf16.ts put in bf16 (the small ones gain nothing)
        const ran = [...bf16OpCounts].map(([op, n]) => [op, n - (bf16Before.get(op) ?? 0)] as const)
          .filter(([, n]) => n > 0);
        log(
          `precision: bf16 ran ${
            ran.map(([op, n]) => `${n} ${op}`).join(", ") || "no op"
          } in the first step ` +
            "(ops too small or memory-bound to gain stay fp32)",
        );
      }
      window.loss += r.loss;
      window.diag.push(...r.diagnostics);
      window.n++;
      opts.onIteration?.(k + 1, r.loss, lr);
      progress?.update(k + 1, `loss ${r.loss.toFixed(4)} lr ${lr.toExponential(3)}`);

      if (logNow) {
        const rec = trainRecord(k + 1, lr, window, (performance.now() - t0) / 1000);
        await metrics.append(rec);
        if (!progress || !Deno.stderr.isTerminal()) {
          log(
            `[TRAIN] iter ${rec.iter}/${config.iters} loss ${rec.loss.toFixed(4)} ce ${rec.ce.toFixed(4)}` +
              (rec.contrast != null ? ` contrast ${rec.contrast.toFixed(4)}` : "") +
              ` lr ${lr.toExponential(4)} ${(rec.iterTime ?? 0).toFixed(3)} s/it`,
          );
        }
        window = { loss: 0, diag: [], t: performance.now(), n: 0 };
      }

      const done = k + 1;
      const evalNow = valDs && (done % config.train.eval_interval! === 0 || done === config.iters);
      const saveNow = done % config.train.save_interval === 0 || done === config.iters;
      if (evalNow) {
        const res = await validate(model, valDs!, config, { progress: opts.progress !== false });
        log(res.summary);
        lastEval = {
          type: "eval",
          iter: done,
          mIoU: res.metrics.mIoU,
          acc: res.metrics.acc,
          kappa: res.metrics.kappa,
          classIoU: res.metrics.classIoU,
          classAcc: res.metrics.classAcc,
          confusion: res.confusion.toRows(),
          mode: res.mode,
          valLoss: res.valLoss ?? null,
        };
        await metrics.append(lastEval);
        if (res.metrics.mIoU > bestMIoU) {
          bestMIoU = res.metrics.mIoU;
          bestIter = done;
        }
      }
      if (saveNow || evalNow) {
        const state = {
          iter: done,
          rng: rng.getState(),
          loader: loader.state(),
          bestMIoU,
          bestIter,
          configYaml,
          runId,
        };
        if (saveNow) {
          lastSaved = join(saveDir, `iter_${done}`);
          await saveCheckpoint(lastSaved, { model, optimizer, memory, state });
          await pruneCheckpoints(saveDir, config.train.keep_checkpoint_max, runId, done);
        }
        if (evalNow && bestIter === done) {
          await saveCheckpoint(join(saveDir, "best_model"), { model, optimizer, memory, state });
          log(
            `[EVAL] best mIoU ${bestMIoU.toFixed(4)} at iteration ${bestIter} (${
              lastEval!.mode
            }) -> ${saveDir}/best_model`,
          );
        }
        writeRunReport();
      }
    }
  } finally {
    loader.close();
    progress?.finish();
    graph?.dispose();
  }
  writeRunReport();
  const secondsPerIter = (performance.now() - t0) / 1000 / Math.max(1, config.iters - startIter);
  log(`done: ${config.iters} iterations, ${secondsPerIter.toFixed(3)} s/it on ${backend.name}`);
  if (lastEval) {
    log(`last evaluation: mIoU ${lastEval.mIoU.toFixed(4)} (${lastEval.mode}) at iteration ${lastEval.iter}`);
  }
  if (bestIter > 0) {
    const best = await findCheckpoint(join(saveDir, "best_model"));
    log(
      best
        ? `best model: ${best.dir} (mIoU ${bestMIoU.toFixed(4)}, iteration ${bestIter})`
        : `best model: iteration ${bestIter} (mIoU ${
          bestMIoU.toFixed(4)
        }), saved in the run this one resumed`,
    );
  }
  if (lastSaved) log(`last checkpoint: ${lastSaved}`);
  log(`report: ${reportPath}`);
  model.dispose();
  optimizer.dispose();
  return {
    saveDir,
    iters: config.iters,
    backend,
    bestMIoU,
    bestIter,
    lastEval,
    reportPath,
    secondsPerIter,
    precision: precision.precision,
  };
}

/** Keys that may differ between an interrupted run and its resumption. */
function withoutRunKeys(c: Config): unknown {
  // precision and graph may change too: the weights and the optimizer state are fp32 either way
  const { resume_model: _r, precision: _p, graph: _g, ...trainRest } = c.train;
  const { backend: _b, ...rest } = c;
  return { ...rest, train: { ...trainRest, save_dir: undefined } };
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** Averages a log window's losses and contrast diagnostics into one record. */
function trainRecord(
  iter: number,
  lr: number,
  w: { loss: number; diag: LossDiagnostics[]; t: number; n: number },
  time: number,
): TrainRecord {
  const ce = mean(w.diag.map((d) => d.ce ?? 0));
  const details = w.diag.map((d) => d.contrastDetail).filter((d) => d !== null);
  const hasContrast = w.diag.some((d) => d.contrastWeight !== 0) && details.length > 0;
  let diagnostics: TrainRecord["diagnostics"] = null;
  if (hasContrast) {
    const C = details[0]!.anchorsPerClass.length;
    const perClass = new Array(C).fill(0);
    for (const d of details) d!.anchorsPerClass.forEach((v, i) => (perClass[i] += v / details.length));
    const sims = (f: (d: NonNullable<(typeof details)[0]>) => number | null) =>
      mean(details.map((d) => f(d!)).filter((v): v is number => v !== null));
    const grads = w.diag.map((d) => d.grad).filter((g) => g !== null);
    diagnostics = {
      anchorsPerClass: perClass,
      hard: mean(details.map((d) => d!.hardAnchors)),
      easy: mean(details.map((d) => d!.easyAnchors)),
      posSim: sims((d) => d.meanPosSim),
      negSim: sims((d) => d.meanNegSim),
      contrastShare: mean(w.diag.map((d) => d.contrastShareOfLoss ?? 0)),
      ...(grads.length ? { gradShare: mean(grads.map((g) => g!.contrastShare)) } : {}),
    };
  }
  return {
    type: "train",
    iter,
    lr,
    loss: w.loss / w.n,
    ce,
    contrast: hasContrast ? mean(w.diag.map((d) => d.contrast ?? 0)) : null,
    diagnostics,
    time,
    iterTime: (performance.now() - w.t) / 1000 / w.n,
  };
}
