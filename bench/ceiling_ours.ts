/**
 * Our side of `deno task bench ceiling`: the branch stack of bench/ceiling_torch.py built from lib/models' layers
 * (PaddleSeg ConvBN/ConvBNReLU, NHWC, training-mode BN) and trained as our trainer does it, op by op on the native
 * backend: forward and cross-entropy under `tf.variableGrads`, momentum SGD (lib/train/optimizer.ts), in fp32 and
 * in `train.precision: bf16` (lib/backend/native_bf16.ts). Beside the graph rows it shows what eager dispatch
 * costs on the same layers.
 */
import { tf } from "../lib/backend/tf.ts";
import { withComputePrecision } from "../lib/backend/native_bf16.ts";
import { resizeBilinear } from "../lib/backend/resize.ts";
import { BnUpdates, Conv2d, ConvBN, type ForwardContext } from "../lib/models/layers.ts";
import { ParamStore } from "../lib/models/params.ts";
import { MomentumSGD } from "../lib/train/optimizer.ts";
import { Rng } from "../lib/util/rng.ts";
import type { CeilingConfig } from "./ceiling.ts";

class BranchStack {
  readonly store = new ParamStore();
  readonly stem: ConvBN[];
  readonly branches: [ConvBN, ConvBN][][];
  readonly trans: ConvBN[];
  readonly head: Conv2d;
  #n = 0;

  constructor(readonly cfg: CeilingConfig) {
    const cbr = (cin: number, cout: number, k = 3, stride = 1, relu = true) =>
      new ConvBN(this.store, {
        name: `l${this.#n++}`,
        torchConv: "c",
        torchBn: "b",
        inChannels: cin,
        outChannels: cout,
        kernelSize: k,
        stride,
        relu,
        padding: "symmetric",
      });
    const cs = [0, 1, 2, 3].map((i) => cfg.width * 2 ** i);
    this.stem = [cbr(3, 64, 3, 2), cbr(64, 64, 3, 2), cbr(64, cfg.width, 1)];
    this.branches = cs.map((c) =>
      Array.from({ length: cfg.blocks }, () => [cbr(c, c), cbr(c, c, 3, 1, false)])
    );
    this.trans = [0, 1, 2].map((i) => cbr(cs[i], cs[i + 1], 3, 2));
    this.head = new Conv2d(this.store, {
      name: "head",
      torchName: "head",
      inChannels: cs.reduce((a, b) => a + b),
      outChannels: 19,
      kernelSize: 1,
      bias: true,
      padding: "same",
    });
    this.store.materialise(new Rng(0));
  }

  /** x: [N,H,W,3] -> logits [N,H,W,19]. */
  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    let y = x;
    for (const l of this.stem) y = l.forward(y, ctx);
    const outs: tf.Tensor4D[] = [];
    this.branches.forEach((blocks, i) => {
      for (const [a, b] of blocks) y = tf.relu(tf.add(y, b.forward(a.forward(y, ctx), ctx)));
      outs.push(y);
      if (i < 3) y = this.trans[i].forward(y, ctx);
    });
    const [h, w] = [outs[0].shape[1], outs[0].shape[2]];
    const cat = tf.concat([outs[0], ...outs.slice(1).map((o) => resizeBilinear(o, [h, w], false))], 3);
    return resizeBilinear(this.head.forward(cat), [this.cfg.h, this.cfg.w], false);
  }
}

/** Step seconds of our eager step on the stack, by contender name. */
export async function oursOnStack(cfg: CeilingConfig, steps: number): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const precision of ["fp32", "bf16"] as const) {
    const model = new BranchStack(cfg);
    const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 0 });
    const rng = new Rng(1);
    const x = tf.randomNormal([cfg.n, cfg.h, cfg.w, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const labels = tf.tensor1d(
      Int32Array.from({ length: cfg.n * cfg.h * cfg.w }, () => Math.floor(rng.next() * 19)),
      "int32",
    );
    const onehot = tf.oneHot(labels, 19);
    const params = new Map(model.store.params.map((p) => [p.spec.name, p.value]));
    const trainable = model.store.params.filter((p) => p.spec.trainable);
    const ts: number[] = [];
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      const bn = new BnUpdates();
      const { value, grads } = withComputePrecision(
        precision,
        () =>
          tf.variableGrads(() =>
            tf.losses.softmaxCrossEntropy(
              onehot,
              tf.reshape(model.forward(x, { training: true, bnUpdates: bn }), [-1, 19]),
            ) as tf.Scalar, trainable.map((p) => p.value)),
      );
      const named: Record<string, tf.Tensor> = {};
      for (const p of trainable) named[p.spec.name] = grads[p.value.name];
      opt.step(params, named, 0.01);
      bn.commit();
      await value.data();
      tf.dispose([value, ...Object.values(grads)]);
      ts.push((performance.now() - t0) / 1000);
    }
    tf.dispose([x, labels, onehot]);
    opt.dispose();
    model.store.dispose();
    out[`ours/tensorflow eager ${precision}`] = ts;
  }
  return out;
}
