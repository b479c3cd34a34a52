/**
 * Child process of webgpu_test.ts, started with the software Vulkan environment (lavapipe): the real train
 * step (contrast term, diagnostics, gradient share) of a tiny HRNet contrast model on the native backend and
 * on webgpu side by side, 3 steps, then an evaluation of both. Prints one JSON line of measured differences.
 *
 * Teacher-forced: before each step the webgpu model, optimizer and generator are set to the native ones'
 * state, so every step is compared from the same weights. (Left to drift apart, two float32 trajectories of a
 * tiny randomly initialised net soon pick different anchors: predictions start near ties, and one flipped
 * pixel changes the contrast gradient by a percent or more — a property of the sampler, not of the backend.)
 * The native backend loads first: libtensorflow cannot load after Mesa's LLVM (lib/backend/mod.ts).
 *
 *   deno run -A tests/backend/_webgpu_parity.ts
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel, type SegModel } from "../../lib/models/mod.ts";
import { lossOptionsOf, modelOptionsOf } from "../../lib/run/options.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { type MicroBatch, stepGradients } from "../../lib/train/step.ts";
import { type EvalSample, evaluate } from "../../lib/eval/mod.ts";
import { Rng } from "../../lib/util/rng.ts";

const native = await initBackend("tensorflow", { quiet: true });
const webgpu = await initBackend("webgpu", { quiet: true });

const C = 3, H = 32, W = 64, LR = 0.05;
const loss = lossOptionsOf({
  types: [
    { type: "CrossEntropyLoss" },
    { type: "PixelContrastCrossEntropyLoss", max_samples: 64, max_views: 8, contrast_group_size: 2 },
  ],
  coef: [1, 0.1],
});

/** Left part class 0, right part class 1, bottom quarter class 2, a few ignored pixels; noisy images. */
function toyBatch(seed: number, n = 2): MicroBatch {
  const rng = new Rng(seed);
  const image = new Float32Array(n * H * W * 3), label = new Int32Array(n * H * W);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const c = i >= (3 * H) / 4 ? 2 : j < W / 2 + 8 * b ? 0 : 1;
        const p = (b * H + i) * W + j;
        label[p] = (i * 7 + j) % 23 === 0 ? 255 : c;
        for (let k = 0; k < 3; k++) image[p * 3 + k] = (k === c ? 0.8 : -0.8) + 0.5 * rng.normal();
      }
    }
  }
  return { image, label, shape: [n, H, W] };
}

interface Side {
  backend: "tensorflow" | "webgpu";
  model: SegModel;
  optimizer: MomentumSGD;
  rng: Rng;
}

async function side(backend: Side["backend"]): Promise<Side> {
  await initBackend(backend, { quiet: true });
  const model = buildModel(
    modelOptionsOf({ type: "HRNetW48Contrast", backbone: "HRNet_Tiny", numClasses: C, projDim: 8 }),
    new Rng(1),
  );
  return {
    backend,
    model,
    optimizer: new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 }),
    rng: new Rng(2),
  };
}

/** Host copies of every parameter (BN statistics included) and of the momentum buffers. */
async function snapshot(
  s: Side,
): Promise<{ params: Map<string, Float32Array>; velocity: Map<string, Float32Array> }> {
  const params = new Map<string, Float32Array>(), velocity = new Map<string, Float32Array>();
  for (const [k, v] of s.model.namedWeights()) params.set(k, (await v.data()) as Float32Array);
  for (const [k, v] of await s.optimizer.state()) velocity.set(k, (await v.data()) as Float32Array);
  return { params, velocity };
}

async function copyState(from: Side, to: Side): Promise<void> {
  const snap = await snapshot(from);
  await initBackend(to.backend, { quiet: true });
  for (const [k, v] of to.model.namedWeights()) v.assign(tf.tensor(snap.params.get(k)!, v.shape));
  if (snap.velocity.size) {
    const vel = new Map([...snap.velocity].map(([k, d]) => {
      const p = to.model.namedWeights().get(k)!;
      return [k, tf.tensor(d, p.shape)] as [string, tf.Tensor];
    }));
    to.optimizer.loadState(vel, to.model.trainableWeights());
    tf.dispose([...vel.values()]);
  }
  to.rng.setState(from.rng.getState());
}

async function step(s: Side, k: number, batch: MicroBatch) {
  await initBackend(s.backend, { quiet: true });
  const r = await stepGradients([batch], {
    model: s.model,
    optimizer: s.optimizer,
    loss,
    rng: s.rng,
    iter: k,
    lr: LR,
    diagnostics: true,
    gradientShare: true,
  });
  const grads = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(r.grads)) grads.set(name, (await g.data()) as Float32Array);
  s.optimizer.step(s.model.trainableWeights(), r.grads, LR);
  tf.dispose(Object.values(r.grads));
  return { loss: r.loss, diag: r.diagnostics[0], grads };
}

/** Relative L2 difference of b from a, over all values (and the largest per tensor, skipping zero-norm ones). */
function relDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>, skip = (_: string) => false) {
  let d2 = 0, n2 = 0, worst = 0, worstName = "";
  for (const [k, x] of a) {
    if (skip(k)) continue;
    const y = b.get(k)!;
    let d = 0, n = 0;
    for (let i = 0; i < x.length; i++) {
      d += (x[i] - y[i]) ** 2;
      n += x[i] ** 2;
    }
    d2 += d;
    n2 += n;
    if (n > 0 && Math.sqrt(d / n) > worst) [worst, worstName] = [Math.sqrt(d / n), k];
  }
  return { overall: Math.sqrt(d2 / n2), worst, worstName, tensors: a.size };
}

// a conv bias right before BN has an analytically zero gradient: its values are rounding noise
const zeroByDesign = (name: string) => /^(cls_head\.0|proj_head\.proj\.0)\._conv\.bias$/.test(name);

const A = await side("tensorflow"), B = await side("webgpu");
const steps = [];
for (let k = 0; k < 3; k++) {
  await copyState(A, B);
  const batch = toyBatch(10 + k);
  const a = await step(A, k, batch), b = await step(B, k, batch);
  const [wa, wb] = [await snapshot(A), await snapshot(B)];
  steps.push({
    loss: [a.loss, b.loss],
    ce: [a.diag.ce, b.diag.ce],
    contrast: [a.diag.contrast, b.diag.contrast],
    anchors: [a.diag.contrastDetail?.anchors, b.diag.contrastDetail?.anchors],
    gradShare: [a.diag.grad?.contrastShare, b.diag.grad?.contrastShare],
    grad: relDiff(a.grads, b.grads, zeroByDesign),
    weightsAfter: relDiff(wa.params, wb.params, zeroByDesign),
  });
}

// evaluation on four images with each backend's model (same weights): whole, and slide windows at two
// scales with flips
await copyState(A, B);
const samples: EvalSample[] = [];
for (let s = 0; s < 2; s++) {
  const b = toyBatch(20 + s);
  for (let i = 0; i < 2; i++) {
    samples.push({
      image: b.image.subarray(i * H * W * 3, (i + 1) * H * W * 3),
      label: b.label.subarray(i * H * W, (i + 1) * H * W),
      height: H,
      width: W,
      name: `toy ${s}.${i}`,
    });
  }
}
const modes = {
  whole: {},
  slide_aug: {
    isSlide: true,
    cropSize: [32, 32],
    stride: [16, 16],
    augEval: true,
    scales: [0.75, 1],
    flipHorizontal: true,
  },
} as const;
const evals: Record<string, { mIoU: [number, number]; pixels: number; disagree: number; mode: string }> = {};
for (const [name, mode] of Object.entries(modes)) {
  const r = [];
  for (const s of [A, B]) {
    await initBackend(s.backend, { quiet: true });
    r.push(
      await evaluate(
        s.model,
        samples,
        { numClasses: C, progress: false, ...mode } as Parameters<typeof evaluate>[2],
      ),
    );
  }
  const [ca, cb] = [r[0].confusion.counts, r[1].confusion.counts];
  evals[name] = {
    mIoU: [r[0].metrics.mIoU, r[1].metrics.mIoU],
    pixels: r[0].confusion.total,
    // half the L1 distance of the two confusion matrices: pixels counted in a different cell
    disagree: ca.reduce((t, v, i) => t + Math.abs(v - cb[i]), 0) / 2,
    mode: r[1].mode,
  };
}

console.log(JSON.stringify({ native: native.detail, webgpu: webgpu.detail, steps, evals }));
for (const s of [A, B]) {
  await initBackend(s.backend, { quiet: true });
  s.model.dispose();
  s.optimizer.dispose();
}
