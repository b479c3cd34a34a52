import { assert, assertEquals, assertRejects } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel } from "../../lib/models/mod.ts";
import { lossOptionsOf, modelOptionsOf } from "../../lib/run/options.ts";
import { memoryBankFromOptions } from "../../lib/losses/mod.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { type MicroBatch, splitBatch, trainStep } from "../../lib/train/step.ts";
import { Rng } from "../../lib/util/rng.ts";
import { toyBatch, toyLossOptions } from "./_toy.ts";

await initBackend();

const lossOptions = toyLossOptions;

Deno.test("trainStep lowers the loss on a learnable toy problem and leaks no tensors", async () => {
  const rng = new Rng(1);
  const model = buildModel(
    modelOptionsOf({ type: "HRNetW48Contrast", backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 }),
    rng,
  );
  const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
  const batch = toyBatch(7);
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let k = 0; k < 12; k++) {
    const r = await trainStep([batch], { model, optimizer: opt, loss: lossOptions, rng, iter: k, lr: 0.05 });
    assert(Number.isFinite(r.loss), `loss at step ${k} is ${r.loss}`);
    losses.push(r.loss);
    if (k === 0) tensorsAfterFirst = tf.memory().numTensors;
    else assert(tf.memory().numTensors === tensorsAfterFirst, `step ${k} leaked tensors`);
  }
  const first = (losses[0] + losses[1]) / 2, last = (losses[10] + losses[11]) / 2;
  assert(last < 0.8 * first, `loss did not fall: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
  model.dispose();
  opt.dispose();
});

Deno.test("gradient accumulation over micro-batches equals one step on the whole batch (CE, no dropout)", async () => {
  // Both micro-batches hold the same image, so BN batch statistics are identical in the two set-ups and
  // the accumulated update must equal the full-batch one.
  const ceOnly = lossOptionsOf({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
  const make = () =>
    buildModel(
      modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 3, dropProb: 0 }),
      new Rng(3),
    );
  const one = toyBatch(11, 1, 64, 64);
  const twice: MicroBatch = {
    image: new Float32Array([...one.image, ...one.image]),
    label: new Int32Array([...one.label, ...one.label]),
    shape: [2, 64, 64],
  };
  const c = make(), d = make();
  const oc = new MomentumSGD({ momentum: 0.9, weightDecay: 0 });
  const od = new MomentumSGD({ momentum: 0.9, weightDecay: 0 });
  for (let k = 0; k < 2; k++) {
    await trainStep([twice], { model: c, optimizer: oc, loss: ceOnly, rng: new Rng(0), iter: k, lr: 0.1 });
    await trainStep(splitBatch(twice, 1), {
      model: d,
      optimizer: od,
      loss: ceOnly,
      rng: new Rng(0),
      iter: k,
      lr: 0.1,
    });
  }
  // Compare the updates (w - w0) tensor by tensor in relative L2 norm: BN backward subtracts nearly
  // equal terms, so element-wise float32 noise is amplified for tiny weights on oneDNN.
  const wc = c.trainableWeights(), wd = d.trainableWeights();
  const init = make();
  const w0 = init.trainableWeights();
  let checked = 0;
  for (const [name, v] of wc) {
    // a conv bias right before BN has an analytically zero gradient: its "update" is rounding noise
    if (/\._conv\.bias$/.test(name)) continue;
    const a = v.dataSync(), b = wd.get(name)!.dataSync(), z = w0.get(name)!.dataSync();
    let diff = 0, norm = 0;
    for (let i = 0; i < a.length; i++) {
      diff += (a[i] - b[i]) ** 2;
      norm += (a[i] - z[i]) ** 2;
    }
    assert(norm > 0, `${name} did not move: the comparison would be vacuous`);
    assert(
      Math.sqrt(diff / norm) < 1e-2,
      `${name}: updates differ by ${Math.sqrt(diff / norm)} (relative L2)`,
    );
    checked++;
  }
  assert(checked > wc.size - 4 && checked > 10, `checked ${checked}/${wc.size}`);
  init.dispose();
  for (const m of [c, d]) m.dispose();
  for (const o of [oc, od]) o.dispose();
});

/** Counts the engine's synchronous (dataSync/arraySync/bufferSync) and asynchronous (data/array) reads. */
function countReads(): { sync: number; async: number; restore: () => void } {
  const engine = tf.engine() as unknown as {
    readSync: (...a: unknown[]) => unknown;
    read: (...a: unknown[]) => unknown;
  };
  const { readSync, read } = engine;
  const c = {
    sync: 0,
    async: 0,
    restore: () => Object.assign(engine, { readSync, read }),
  };
  engine.readSync = function (this: unknown, ...a: unknown[]) {
    c.sync++;
    return readSync.apply(this, a);
  };
  engine.read = function (this: unknown, ...a: unknown[]) {
    c.async++;
    return read.apply(this, a);
  };
  return c;
}

Deno.test("trainStep reads back only asynchronously and as little as possible; tensor count flat across steps", async () => {
  const make = (type: "HRNetW48Contrast" | "HRNetCE") =>
    buildModel(modelOptionsOf({ type, backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 }), new Rng(5));
  const memOptions = lossOptionsOf({
    types: [
      { type: "CrossEntropyLoss" },
      {
        type: "PixelContrastCrossEntropyLoss",
        max_samples: 64,
        max_views: 8,
        contrast_group_size: 1,
        warmup_iters: 1,
        memory: { enabled: true, pixel_size: 12, segment_size: 3, mining: "semi_hard" },
      },
    ],
    coef: [1, 0.1],
  });
  const ceOnly = lossOptionsOf({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
  // expected reads per step, and the step after which the tensor count must stay the same
  const cases = [
    // the sampler's predictions once per micro-batch, then the losses and diagnostics once per step
    {
      name: "contrast, 2 micro-batches",
      type: "HRNetW48Contrast",
      loss: lossOptions,
      mem: false,
      reads: [3, 3, 3],
      settled: 0,
    },
    { name: "CE only", type: "HRNetCE", loss: ceOnly, mem: false, reads: [1, 1, 1], settled: 0 },
    // memory bank: warm-up (iteration 0) enqueues only; then predictions, the semi-hard ranks of the
    // two masks (2) and the enqueued vectors per micro-batch. The count settles after iteration 1 (the
    // bank's device copy and the projection head's momentum buffers appear with the first contrast term).
    {
      name: "memory bank",
      type: "HRNetW48Contrast",
      loss: memOptions,
      mem: true,
      reads: [3, 9, 9, 9],
      settled: 1,
    },
  ] as const;
  for (const c of cases) {
    const model = make(c.type);
    const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
    const rng = new Rng(9);
    const memory = c.mem ? memoryBankFromOptions(c.loss.contrast!, 3, 8, rng) : null;
    const batch = splitBatch(toyBatch(13), 1);
    let tensors = 0;
    for (let k = 0; k < c.reads.length; k++) {
      const reads = countReads();
      let r;
      try {
        r = await trainStep(batch, {
          model,
          optimizer: opt,
          loss: c.loss,
          rng,
          memory,
          iter: k,
          lr: 0.01,
          diagnostics: true,
          gradientShare: c.type === "HRNetW48Contrast",
        });
      } finally {
        reads.restore();
      }
      assert(Number.isFinite(r.loss) && r.diagnostics.length === 2, `${c.name}: step ${k}`);
      assertEquals(reads.sync, 0, `${c.name}, step ${k}: synchronous reads`);
      assertEquals(reads.async, c.reads[k], `${c.name}, step ${k}: asynchronous reads`);
      if (k === c.settled) tensors = tf.memory().numTensors;
      else if (k > c.settled) {
        assertEquals(tf.memory().numTensors, tensors, `${c.name}: step ${k} changed the tensor count`);
      }
    }
    // a non-finite loss stops before the update and leaves no tensor behind
    const bad = toyBatch(13);
    bad.image.fill(NaN);
    await assertRejects(
      () => trainStep([bad], { model, optimizer: opt, loss: c.loss, rng, memory, iter: 5, lr: 0.01 }),
      "training stopped before the update",
    );
    assertEquals(tf.memory().numTensors, tensors, `${c.name}: the failed step leaked tensors`);
    memory?.dispose();
    model.dispose();
    opt.dispose();
  }
});
