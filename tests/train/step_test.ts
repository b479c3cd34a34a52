import { assert } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel } from "../../lib/models/mod.ts";
import { lossOptionsFromConfig } from "../../lib/losses/mod.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { type MicroBatch, splitBatch, trainStep } from "../../lib/train/step.ts";
import { Rng } from "../../lib/util/rng.ts";

await initBackend();

const lossOptions = lossOptionsFromConfig({
  types: [
    { type: "CrossEntropyLoss" },
    { type: "PixelContrastCrossEntropyLoss", max_samples: 64, max_views: 8, contrast_group_size: 2 },
  ],
  coef: [1, 0.1],
});

function toyBatch(seed: number, n = 2, h = 32, w = 64): MicroBatch {
  // left half class 0, right half class 1, bottom quarter class 2; image encodes the class plus noise
  const rng = new Rng(seed);
  const image = new Float32Array(n * h * w * 3), label = new Int32Array(n * h * w);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const c = i >= (3 * h) / 4 ? 2 : j < w / 2 ? 0 : 1;
        const p = (b * h + i) * w + j;
        label[p] = c;
        for (let k = 0; k < 3; k++) image[p * 3 + k] = (k === c ? 0.8 : -0.8) + 0.2 * rng.normal();
      }
    }
  }
  return { image, label, shape: [n, h, w] };
}

Deno.test("trainStep lowers the loss on a learnable toy problem and leaks no tensors", () => {
  const rng = new Rng(1);
  const model = buildModel(
    { type: "HRNetW48Contrast", backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 },
    rng,
  );
  const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
  const batch = toyBatch(7);
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let k = 0; k < 12; k++) {
    const r = trainStep([batch], { model, optimizer: opt, loss: lossOptions, rng, iter: k, lr: 0.05 });
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

Deno.test("gradient accumulation over micro-batches equals one step on the whole batch (CE, no dropout)", () => {
  // Both micro-batches hold the same image, so BN batch statistics are identical in the two set-ups and
  // the accumulated update must equal the full-batch one.
  const ceOnly = lossOptionsFromConfig({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
  const make = () =>
    buildModel({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 3, dropProb: 0 }, new Rng(3));
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
    trainStep([twice], { model: c, optimizer: oc, loss: ceOnly, rng: new Rng(0), iter: k, lr: 0.1 });
    trainStep(splitBatch(twice, 1), {
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
