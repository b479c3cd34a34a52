/**
 * Functional layers holding their own named parameters: Conv2d, BatchNorm2d and PaddleSeg's
 * `ConvBN` / `ConvBNReLU` (names `<prefix>._conv.*` and `<prefix>._batch_norm.*`).
 *
 * Forward functions take a `ForwardContext` that says whether we are training (batch statistics,
 * dropout) and where the BN batch statistics go (see `BnUpdates`).
 */
import { flatUpdatesPay, tf } from "../backend/tf.ts";
import type { Rng } from "../util/rng.ts";
import { batchNormTrain } from "./ops.ts";
import { type Param, type ParamInit, ParamStore } from "./params.ts";

/**
 * 'same': Paddle/TF 'same' (for stride 2 on even sizes: pad 0 before, 1 after), the REPRO default.
 * 'symmetric': PyTorch `padding=k//2` on both sides (TORCH mode). Identical for stride-1 convs.
 */
export type PaddingMode = "same" | "symmetric";

export interface ForwardContext {
  training: boolean;
  /** Source of dropout masks (required in training when a dropout layer has p > 0). */
  rng?: Rng;
  /** Collects training-mode BN batch statistics for the running-average update. */
  bnUpdates?: BnUpdates;
  /** Gradient checkpointing of backbone blocks (training only; see `recomputeInBackward`). */
  recompute?: boolean;
}

/** One training-mode forward's batch statistics of one BatchNorm layer. */
export interface PendingBn {
  bn: BatchNorm2d;
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Pending BN running-statistics updates. Training-mode forwards append kept (mean, variance) tensors;
 * `commit()` applies them (running = momentum * running + (1 - momentum) * batch, Paddle's
 * convention with momentum 0.9) and frees them; `discard()` frees them without updating.
 */
export class BnUpdates {
  #pending: PendingBn[] = [];

  push(bn: BatchNorm2d, mean: tf.Tensor1D, variance: tf.Tensor1D): void {
    this.#pending.push({ bn, mean, variance });
  }

  get size(): number {
    return this.#pending.length;
  }

  /** The pending statistics in forward order (a graph-recorded step fetches them: lib/train/graph_step.ts). */
  pending(): readonly PendingBn[] {
    return [...this.#pending];
  }

  /**
   * Where flat updates pay (native backend, `flatUpdatesPay`), all layers with the same momentum are updated as
   * one flat tensor per statistic (concatenated, updated, split back): the same arithmetic per value, but ~10
   * backend calls instead of 6 per layer (HRNet-W18-Small has 146 BN layers; on the native backend each call
   * costs ~15 µs; measured interleaved on a loaded machine, 146 layers: 84.5 -> 20.1 ms). Elsewhere (wasm:
   * concat/split copies cost more than the calls) each layer is updated on its own.
   */
  commit(): number {
    const n = this.#pending.length;
    let groups: PendingBn[][];
    if (flatUpdatesPay()) {
      const byMomentum = new Map<number, PendingBn[]>();
      for (const u of this.#pending) {
        const list = byMomentum.get(u.bn.momentum) ?? [];
        list.push(u);
        byMomentum.set(u.bn.momentum, list);
      }
      groups = [...byMomentum.values()];
    } else {
      groups = this.#pending.map((u) => [u]);
    }
    for (const list of groups) {
      const m = list[0].bn.momentum;
      tf.tidy(() => {
        const sizes = list.map((u) => u.mean.size);
        const cat = (ts: tf.Tensor1D[]) => (ts.length === 1 ? ts[0] : tf.concat(ts));
        for (const [running, batch] of [["runningMean", "mean"], ["runningVar", "variance"]] as const) {
          const r = cat(list.map((u) => u.bn[running].value as tf.Tensor1D));
          const b = cat(list.map((u) => u[batch]));
          const next = tf.add(tf.mul(r, m), tf.mul(b, 1 - m));
          const parts = list.length === 1 ? [next] : tf.split(next, sizes);
          list.forEach((u, i) => u.bn[running].value.assign(parts[i]));
        }
      });
    }
    this.discard(); // the batch statistics, now folded into the running ones
    return n;
  }

  /** Drops the pending batch statistics without updating the running ones. */
  discard(): void {
    for (const { mean, variance } of this.#pending) {
      mean.dispose();
      variance.dispose();
    }
    this.#pending = [];
  }
}

export interface Conv2dOptions {
  /** Paddle name prefix, e.g. `backbone.conv_layer1_1._conv` (params `<prefix>.weight`, `.bias`). */
  name: string;
  /** PyTorch name prefix, e.g. `conv1`. */
  torchName: string;
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  bias: boolean;
  padding: PaddingMode;
  /** Weight init; default Paddle's Conv2D default Normal(0, sqrt(2 / (k*k*Cin))). */
  weightInit?: ParamInit;
}

export class Conv2d {
  readonly weight: Param;
  readonly bias: Param | null;
  readonly stride: number;
  readonly kernelSize: number;
  readonly padding: PaddingMode;

  constructor(store: ParamStore, o: Conv2dOptions) {
    const k = o.kernelSize;
    this.stride = o.stride ?? 1;
    this.kernelSize = k;
    this.padding = o.padding;
    this.weight = store.add({
      name: `${o.name}.weight`,
      torchName: `${o.torchName}.weight`,
      shape: [k, k, o.inChannels, o.outChannels],
      role: "conv_weight",
      trainable: true,
      init: o.weightInit ?? { kind: "normal", std: Math.sqrt(2 / (k * k * o.inChannels)) },
    });
    this.bias = o.bias
      ? store.add({
        name: `${o.name}.bias`,
        torchName: `${o.torchName}.bias`,
        shape: [o.outChannels],
        role: "conv_bias",
        trainable: true,
        init: { kind: "constant", value: 0 },
      })
      : null;
  }

  /** x: [N,H,W,Cin] -> [N,H',W',Cout]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const k = this.kernelSize, s = this.stride;
      let y: tf.Tensor4D;
      if (k === 1) {
        y = tf.conv2d(x, this.weight.value as tf.Tensor4D, s, "valid");
      } else if (this.padding === "same" || s === 1) {
        // Stride 1 with an odd kernel: 'same' is the symmetric k//2 pad in both conventions.
        y = tf.conv2d(x, this.weight.value as tf.Tensor4D, s, "same");
      } else {
        const p = Math.floor(k / 2);
        const xp = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
        y = tf.conv2d(xp, this.weight.value as tf.Tensor4D, s, "valid");
      }
      return this.bias ? tf.add(y, this.bias.value) : y;
    });
  }
}

/** Paddle's `nn.BatchNorm2D` defaults, which every BN layer of the model uses. */
export const PADDLE_BN_MOMENTUM = 0.9;
export const PADDLE_BN_EPSILON = 1e-5;

export interface BatchNormOptions {
  /** Paddle prefix, e.g. `backbone.conv_layer1_1._batch_norm`. */
  name: string;
  /** PyTorch prefix, e.g. `bn1`. */
  torchName: string;
  channels: number;
  /** Paddle convention: running = momentum * running + (1 - momentum) * batch. Default PADDLE_BN_MOMENTUM. */
  momentum?: number;
  /** Default PADDLE_BN_EPSILON. */
  epsilon?: number;
}

/** BatchNorm over N, H, W. Params: `weight` (gamma), `bias` (beta), `_mean`, `_variance` (Paddle names). */
export class BatchNorm2d {
  readonly gamma: Param;
  readonly beta: Param;
  readonly runningMean: Param;
  readonly runningVar: Param;
  readonly momentum: number;
  readonly epsilon: number;

  constructor(store: ParamStore, o: BatchNormOptions) {
    const c = o.channels;
    this.momentum = o.momentum ?? PADDLE_BN_MOMENTUM;
    this.epsilon = o.epsilon ?? PADDLE_BN_EPSILON;
    const add = (suffix: string, torchSuffix: string, role: Param["spec"]["role"], value: number) =>
      store.add({
        name: `${o.name}.${suffix}`,
        torchName: `${o.torchName}.${torchSuffix}`,
        shape: [c],
        role,
        trainable: role === "bn_weight" || role === "bn_bias",
        init: { kind: "constant", value },
      });
    this.gamma = add("weight", "weight", "bn_weight", 1);
    this.beta = add("bias", "bias", "bn_bias", 0);
    this.runningMean = add("_mean", "running_mean", "bn_mean", 0);
    this.runningVar = add("_variance", "running_var", "bn_variance", 1);
  }

  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const gamma = this.gamma.value as tf.Tensor1D, beta = this.beta.value as tf.Tensor1D;
    if (ctx.training) {
      const sink = ctx.bnUpdates;
      return batchNormTrain(
        x,
        gamma,
        beta,
        this.epsilon,
        sink ? (mean, variance) => sink.push(this, mean, variance) : undefined,
      );
    }
    return tf.batchNorm(
      x,
      this.runningMean.value as tf.Tensor1D,
      this.runningVar.value as tf.Tensor1D,
      beta,
      gamma,
      this.epsilon,
    );
  }
}

export interface ConvBNOptions {
  /** Paddle prefix of the ConvBN(ReLU) layer, e.g. `backbone.conv_layer1_1`. */
  name: string;
  /** PyTorch prefixes of the conv and the BN, e.g. `conv1` and `bn1`. */
  torchConv: string;
  torchBn: string;
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  bias?: boolean;
  relu: boolean;
  padding: PaddingMode;
  weightInit?: ParamInit;
}

/** PaddleSeg `layers.ConvBN` / `layers.ConvBNReLU`. */
export class ConvBN {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly relu: boolean;

  constructor(store: ParamStore, o: ConvBNOptions) {
    this.conv = new Conv2d(store, {
      name: `${o.name}._conv`,
      torchName: o.torchConv,
      inChannels: o.inChannels,
      outChannels: o.outChannels,
      kernelSize: o.kernelSize,
      stride: o.stride,
      bias: o.bias ?? false,
      padding: o.padding,
      weightInit: o.weightInit,
    });
    this.bn = new BatchNorm2d(store, {
      name: `${o.name}._batch_norm`,
      torchName: o.torchBn,
      channels: o.outChannels,
    });
    this.relu = o.relu;
  }

  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.bn.forward(this.conv.forward(x), ctx);
      return this.relu ? tf.relu(y) : y;
    });
  }
}
