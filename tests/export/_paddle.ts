/**
 * Helpers of the PaddleSeg tests: the project's Paddle environment (set-up step `paddle`, which the
 * README's test command runs), subprocesses, a seeded checkpoint of ours, and our side of the agreement
 * runs (the same batches, the same steps, PaddleSeg's anchors).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tf } from "../../lib/backend/tf.ts";
import type { Config } from "../../lib/config/mod.ts";
import { DataLoader } from "../../lib/data/mod.ts";
import { saveWeights, type SegModel } from "../../lib/models/mod.ts";
import { datasetFromConfig, modelFromConfig, withoutPretrained } from "../../lib/run/build.ts";
import { lossOptions } from "../../lib/run/options.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { polyLr } from "../../lib/train/schedule.ts";
import { batchTensors, type MicroBatch, trainStep } from "../../lib/train/step.ts";
import { crossEntropyLoss } from "../../lib/losses/mod.ts";
import { Rng } from "../../lib/util/rng.ts";
import { paddlePython } from "../../scripts/setup/paddle.ts";

export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
export const PY = paddlePython(ROOT);

const problem = existsSync(PY) ? null : `${PY} is missing (run 'deno task setup --only paddle')`;
const allowSkip = Deno.env.get("PC_ALLOW_PADDLE_SKIP") === "1";
if (problem && allowSkip) console.warn(`SKIPPING the PaddleSeg tests (PC_ALLOW_PADDLE_SKIP=1): ${problem}`);
/** `ignore` of the PaddleSeg tests: only when the environment is missing AND skipping was asked for. */
export const SKIP_PADDLE = problem !== null && allowSkip;

export function requirePaddle(): void {
  if (problem) throw new Error(`${problem}; or set PC_ALLOW_PADDLE_SKIP=1 to skip the PaddleSeg tests`);
}

export interface RunResult {
  code: number;
  out: string;
}

/** Runs a command in the project root; stdout + stderr together. */
export async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const r = await new Deno.Command(cmd, { args, cwd: ROOT, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Runs a Python script of the Paddle venv that prints one JSON line last. */
export async function python(
  args: string[],
  env: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const r = await run(PY, args, { OMP_NUM_THREADS: "2", ...env });
  const last = r.out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
  if (r.code !== 0 || !last) throw new Error(`${args[0]} failed (exit ${r.code}):\n${r.out.slice(-4000)}`);
  return JSON.parse(last);
}

/** `deno run -A lib/cli/<name>.ts ...` */
export function denoCli(name: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", join("lib", "cli", `${name}.ts`), ...args], env);
}

/** The config's bare model (no pretrained files) initialised from its seed, as our trainer starts. */
export async function initialModel(config: Config): Promise<SegModel> {
  return await modelFromConfig(withoutPretrained(config), new Rng(config.seed), () => {});
}

/**
 * A checkpoint of ours (model.safetensors) with the seeded initial weights; `scramble` "all" gives every
 * tensor random values of its kind instead (BN scale, shift and running statistics included), so that a
 * tensor that went to the wrong name or lost its statistics cannot go unnoticed; "bn" only the BN tensors
 * (the convs keep the seed's initialisation).
 */
export async function seededCheckpoint(
  config: Config,
  dir: string,
  scramble: "all" | "bn" | "none",
): Promise<string> {
  const model = await initialModel(config);
  try {
    if (scramble !== "none") {
      const rng = new Rng(7);
      const r = () => rng.next();
      const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      for (const p of model.store.params) {
        const shape = p.spec.shape;
        const n = shape.reduce((a, b) => a * b, 1);
        // conv weights at fan-in scale (HWIO: fan-in = kh*kw*cin): the seed's N(0, 0.001) under BN makes
        // the first steps chaotic (a 1e-6 nudge of the weights moves the loss by 1e-3 within 3 steps)
        const fanIn = shape.length === 4 ? shape[0] * shape[1] * shape[2] : 1;
        const draw: Record<string, () => number> = {
          conv_weight: () => normal() / Math.sqrt(fanIn),
          conv_bias: () => 0.1 * (r() - 0.5),
          bn_weight: () => 0.5 + r(),
          bn_bias: () => 0.2 * (r() - 0.5),
          bn_mean: () => 0.2 * (r() - 0.5),
          bn_variance: () => 0.5 + 1.5 * r(),
        };
        if (scramble === "bn" && p.spec.role.startsWith("conv")) continue;
        const values = Float32Array.from({ length: n }, draw[p.spec.role]);
        tf.tidy(() => p.value.assign(tf.tensor(values, shape)));
      }
    }
    const path = join(dir, "model.safetensors");
    await Deno.mkdir(dir, { recursive: true });
    await saveWeights(model, path, { note: "tests/export seeded checkpoint" });
    return path;
  } finally {
    model.dispose();
  }
}

export interface OurStep {
  ce: number;
  contrast: number;
  total: number;
  lr: number;
  anchors: number;
}

/**
 * Our side of paddle_train_steps.py: `steps` optimizer steps of `model` with the config's optimizer and
 * schedule, step k on the dataset's images 2k mod n and 2k+1 mod n in order (the train transforms must be
 * deterministic), anchors drawn as PaddleSeg's with randperm = identity.
 */
export async function ourSteps(
  config: Config,
  model: SegModel,
  steps: number,
  bn: "train" | "eval" = "train",
): Promise<{
  images: string[];
  steps: OurStep[];
}> {
  const ds = await datasetFromConfig(config, "train_dataset");
  const loader = new DataLoader(ds, {
    batchSize: config.batch_size,
    shuffle: false,
    dropLast: true,
    workers: 0,
  });
  const batches: MicroBatch[] = [];
  try {
    for await (const b of loader.epoch()) {
      batches.push({ image: b.image.slice(), label: b.label.slice(), shape: b.shape });
    }
  } finally {
    loader.close();
  }
  if (ds.items.length % config.batch_size !== 0) {
    throw new Error("ourSteps: n must be a multiple of batch_size");
  }
  const loss = lossOptions(config.loss);
  if (loss.contrast) loss.contrast = { ...loss.contrast, draw: "identity" };
  const optimizer = new MomentumSGD({
    momentum: config.optimizer.momentum,
    weightDecay: config.optimizer.weight_decay,
  });
  const s = config.lr_scheduler;
  const out: OurStep[] = [];
  const rng = new Rng(config.seed);
  for (let k = 0; k < steps; k++) {
    const lr = polyLr(k, {
      learningRate: s.learning_rate,
      endLr: s.end_lr,
      power: s.power,
      iters: config.iters,
      warmupIters: s.warmup_iters,
      warmupStartLr: s.warmup_start_lr,
    });
    if (bn === "eval") {
      // BN on its running statistics (inference mode): CE only, as paddle_train_steps.py ... eval
      const { x, y } = batchTensors(batches[k % batches.length]);
      const { value, grads } = model.variableGrads(() => {
        const o = model.forward(x, { training: false, embed: false });
        return tf.mul(crossEntropyLoss(o.logitsUp, y, loss.ce), loss.coef[0]) as tf.Scalar;
      });
      x.dispose();
      y.dispose();
      const total = (await value.data())[0];
      value.dispose();
      optimizer.step(model.trainableWeights(), grads, lr);
      for (const g of Object.values(grads)) g.dispose();
      out.push({ ce: total / loss.coef[0], contrast: 0, total, lr, anchors: 0 });
      continue;
    }
    const r = await trainStep([batches[k % batches.length]], {
      model,
      optimizer,
      loss,
      rng,
      iter: k,
      lr,
      diagnostics: true,
    });
    const d = r.diagnostics[0];
    out.push({
      ce: d.ce!,
      contrast: d.contrast ?? 0,
      total: r.loss,
      lr,
      anchors: d.contrastDetail?.anchors ?? 0,
    });
  }
  optimizer.dispose();
  return { images: ds.items.map((it) => it.image.split("/").pop()!), steps: out };
}

/** |a - b| / |b| */
export const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
