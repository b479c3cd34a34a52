/**
 * `deno task bench loss [--iters 10] [--warmup 2] [--dims 720,256] [--backend NAME]
 *                       [--paddle-iters 2] [--paddle-warmup 1] [--no-paddle]`
 *
 * Time per call of our anchor sampler + pixel contrast loss, forward and backward (gradient w.r.t. the
 * embeddings), at the reference's per-GPU size: batch 2, 19 classes, 128x256 embeddings (512x1024 labels),
 * D 720 (REPRO) and 256 (TORCH). Beside it, in the same run, PaddleSeg's PixelContrastCrossEntropyLoss on
 * CPU (bench/paddle_loss.py) when a Python with paddlepaddle + paddleseg is found: $PC_PADDLE_VENV, else
 * .cache/paddle (the set-up step `paddle`). Both sides use the same label maps and predictions (written to bench/out/).
 * PaddleSeg takes tens of seconds per call on a small CPU (its index_select kernels dominate), hence its
 * own, smaller iteration count.
 */
import { tf } from "../lib/backend/tf.ts";
import { backendFromArgs, backendFromEnv, initBackend } from "../lib/backend/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { labelsAndPredictions } from "../lib/losses/labels.ts";
import { sampleHardAnchors } from "../lib/losses/sampler.ts";
import { pixelContrastLoss } from "../lib/losses/pixel_contrast.ts";
import { contrastOptionsOf } from "../lib/run/options.ts";
import { Tape } from "../lib/backend/tape.ts";
import { PADDLE_VENV_DIR } from "./_common.ts";

const N = 2, C = 19, h = 128, w = 256, H = 4 * h, W = 4 * w;

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

/** Cityscapes-like label maps: 22 Voronoi cells per image with random classes (some ignored). */
function makeInputs(rng: Rng): { labels: Uint8Array; logits: Float32Array } {
  const small = new Uint8Array(N * h * w);
  for (let b = 0; b < N; b++) {
    const seeds = Array.from({ length: 22 }, () => ({
      y: rng.int(h),
      x: rng.int(w),
      c: rng.next() < 0.08 ? 255 : rng.int(C),
    }));
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let best = 0, bd = Infinity;
        seeds.forEach((s, k) => {
          const d = (s.y - i) ** 2 + (s.x - j) ** 2;
          if (d < bd) (bd = d, best = k);
        });
        small[(b * h + i) * w + j] = seeds[best].c;
      }
    }
  }
  const labels = new Uint8Array(N * H * W);
  for (let b = 0; b < N; b++) {
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) labels[(b * H + r) * W + c] = small[(b * h + (r >> 2)) * w + (c >> 2)];
    }
  }
  const logits = new Float32Array(N * h * w * C);
  for (let p = 0; p < N * h * w; p++) {
    for (let k = 0; k < C; k++) logits[p * C + k] = rng.normal();
    const y = small[p];
    const t = y === 255 || rng.next() > 0.6 ? rng.int(C) : y;
    logits[p * C + t] += 3;
  }
  return { labels, logits };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function paddleBaseline(inputsPath: string, dims: number[], iters: number, warmup: number) {
  const venv = Deno.env.get("PC_PADDLE_VENV") ?? PADDLE_VENV_DIR;
  const python = `${venv}/bin/python`;
  try {
    await Deno.stat(python);
  } catch {
    return { error: `no Python at ${python} (set PC_PADDLE_VENV to a venv with paddlepaddle + paddleseg)` };
  }
  const cmd = new Deno.Command(python, {
    args: [
      "bench/paddle_loss.py",
      "--inputs",
      inputsPath,
      "--dims",
      dims.join(","),
      "--iters",
      `${iters}`,
      "--warmup",
      `${warmup}`,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(text) as {
      error?: string;
      ms?: Record<string, number>;
      loss?: Record<string, number>;
      paddlepaddle?: string;
      paddleseg?: string;
    };
  } catch {
    return {
      error: `unreadable output (exit ${out.code}): ${new TextDecoder().decode(out.stderr).slice(-400)}`,
    };
  }
}

export async function run(args: string[]): Promise<void> {
  const iters = Number(flag(args, "iters", "10"));
  const warmup = Number(flag(args, "warmup", "2"));
  const dims = flag(args, "dims", "720,256").split(",").map(Number);
  const info = await initBackend(backendFromArgs(args) ?? backendFromEnv());
  console.log(
    `bench loss: backend ${info.name} (${info.detail}); batch ${N}, ${C} classes, embeddings ${h}x${w}, labels ${H}x${W}`,
  );
  const rng = new Rng(2021);
  const { labels, logits } = makeInputs(rng);
  await Deno.mkdir("bench/out", { recursive: true });
  const inputsPath = "bench/out/loss_inputs.bin";
  const head = new TextEncoder().encode(JSON.stringify({ n: N, H, W, h, w, C }) + "\n");
  const body = new Uint8Array(head.length + labels.length + logits.byteLength);
  body.set(head, 0);
  body.set(labels, head.length);
  body.set(new Uint8Array(logits.buffer), head.length + labels.length);
  await Deno.writeFile(inputsPath, body);

  const labelsT = tf.tensor3d(Int32Array.from(labels), [N, H, W], "int32");
  const logitsT = tf.tensor4d(logits, [N, h, w, C]);
  const opts = contrastOptionsOf({ contrastGroupSize: 2 }); // seed defaults otherwise: 0.1, 0.07, 1024, 100, 255

  // the host part alone: download of labels/predictions + sampling
  const hostMs: number[] = [];
  let anchors = 0;
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    const hp = await labelsAndPredictions(labelsT, logitsT);
    const s = sampleHardAnchors(hp.labels, hp.preds, N, h * w, {
      maxSamples: 1024,
      maxViews: 100,
      ignoreIndex: 255,
      draw: "random",
    }, rng);
    if (i >= warmup) hostMs.push(performance.now() - t0);
    anchors = s.totalClasses * s.nView;
  }

  const ours: Record<number, { ms: number; loss: number }> = {};
  for (const D of dims) {
    const embed = tf.tidy(() => {
      const e = tf.randomNormal([N, h, w, D], 0, 1, "float32", 7);
      return tf.div(e, tf.norm(e, 2, -1, true)) as tf.Tensor4D;
    });
    const times: number[] = [];
    let loss = 0;
    for (let i = 0; i < warmup + iters; i++) {
      const t0 = performance.now();
      const tape = new Tape();
      const r = await pixelContrastLoss({ logits4: logitsT, embed, labels: labelsT }, opts, {
        rng,
        similarityStats: false,
        tape,
      });
      const { value: v, grad: g } = tf.valueAndGrad(() => tape.replay(r.loss))(embed);
      loss = (await v.data())[0];
      const first = tf.slice(tf.reshape(g, [-1]), [0], [1]);
      await first.data(); // the gradient exists
      first.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
      tf.dispose([v, g]);
    }
    embed.dispose();
    ours[D] = { ms: median(times), loss };
  }
  tf.dispose([labelsT, logitsT]);

  const pIters = Number(flag(args, "paddle-iters", "2")), pWarmup = Number(flag(args, "paddle-warmup", "1"));
  if (!args.includes("--no-paddle")) {
    console.log(`  running PaddleSeg (${pWarmup} + ${pIters} calls per D; slow on CPU) ...`);
  }
  const base = args.includes("--no-paddle")
    ? { error: "skipped (--no-paddle)" }
    : await paddleBaseline(inputsPath, dims, pIters, pWarmup);
  console.log(
    `  host: labels/predictions download + sampling (${anchors} anchors): ${median(hostMs).toFixed(1)} ms`,
  );
  if (base.error) console.log(`  PaddleSeg baseline unavailable: ${base.error}`);
  else {console.log(
      `  baseline: paddlepaddle ${base.paddlepaddle}, paddleseg ${base.paddleseg}, CPU, same label maps and predictions`,
    );}
  console.log("  D     ours (ms/call)   PaddleSeg CPU (ms/call)   speed-up   loss ours / PaddleSeg");
  for (const D of dims) {
    const p = base.ms?.[`${D}`];
    const ratio = p ? `${(p / ours[D].ms).toFixed(1)}x` : "n/a";
    const pl = base.loss?.[`${D}`];
    console.log(
      `  ${String(D).padEnd(5)} ${ours[D].ms.toFixed(1).padStart(10)}       ${
        p ? p.toFixed(1).padStart(10) : "       n/a"
      }` +
        `              ${ratio.padStart(7)}    ${ours[D].loss.toFixed(4)} / ${
          pl !== undefined ? pl.toFixed(4) : "n/a"
        }`,
    );
  }
  console.log(
    `  (ours: median of ${iters} calls after ${warmup} warm-up; PaddleSeg: median of ${pIters} after ${pWarmup}; ` +
      `forward + backward w.r.t. the embeddings; target >= 5x)`,
  );
}

if (import.meta.main) await run(Deno.args);
