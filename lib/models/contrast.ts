/**
 * The segmentation models: PaddleSeg's `HRNetW48Contrast` (any HRNet width) and its CE-only variant.
 *
 *   feats  = HRNet(x)                                   [N, H/4, W/4, Cb]   (Cb = 720 for W48)
 *   logits4 = cls_head(feats)  conv3x3(+bias) BN ReLU Dropout2D(p) conv1x1(no bias)   [N, H/4, W/4, K]
 *   logitsUp = bilinear(logits4, [H, W])                [N, H, W, K]
 *   embed  = L2norm(proj_head(feats))  conv1x1(+bias) BN ReLU conv1x1(+bias)  [N, H/4, W/4, D]
 *
 * Parameter names are PaddleSeg state_dict keys (`cls_head.0._conv.weight`, `proj_head.proj.1.bias`, ...).
 */
import { tf } from "../backend/tf.ts";
import { Rng } from "../util/rng.ts";
import { type BackboneName, HRNet, HRNET_CONFIGS } from "./hrnet.ts";
import { BnUpdates, Conv2d, ConvBN, type ForwardContext, type PaddingMode } from "./layers.ts";
import { resizeBilinear } from "../backend/resize.ts";
import { dropout2d, l2Normalize } from "./ops.ts";
import { numel, ParamStore } from "./params.ts";

export type ModelType = "HRNetW48Contrast" | "HRNetCE";

/**
 * Complete model options. The config layer fills them (lib/run/options.ts maps the validated `model` section,
 * whose schema holds every default and bound); code that builds a model without a config gets the schema's
 * defaults from lib/run's `modelOptionsOf`.
 */
export interface ModelOptions {
  /** "HRNetW48Contrast": segmentation + projection head; "HRNetCE": segmentation head only (any HRNet width). */
  type: ModelType;
  /** PaddleSeg backbone factory name, e.g. "HRNet_W48". */
  backbone: BackboneName;
  numClasses: number;
  /** Dropout2D probability in the segmentation head. */
  dropProb: number;
  /** Projection dimension D of the projection head (HRNetW48Contrast); null for HRNetCE, which has none. */
  projDim: number | null;
  /** "same" (Paddle's padding) or "symmetric" (TORCH's padding=1). */
  paddingMode: PaddingMode;
  /** false (Paddle): half-pixel bilinear everywhere; true: TORCH align_corners=True. */
  alignCorners: boolean;
}

export interface ForwardOptions {
  /** Training mode: batch-statistics BN (running stats queued, see `commitBnUpdates`) and dropout. */
  training: boolean;
  /** Dropout randomness; required in training when dropProb > 0. */
  rng?: Rng;
  /** Compute the projection head (default: true for the contrast model). */
  embed?: boolean;
  /**
   * Gradient checkpointing of the backbone in training: the stem and every HighResolutionModule are run
   * again in the backward pass instead of keeping their activations (much less memory, about one more
   * backbone forward of compute). Same values and gradients. Default false.
   */
  recompute?: boolean;
}

export interface SegOutputs {
  /** Logits bilinearly upsampled to the input size: [N, H, W, K]. */
  logitsUp: tf.Tensor4D;
  /** Logits at stride 4: [N, H/4, W/4, K]. */
  logits4: tf.Tensor4D;
  /** Unit-norm embeddings at stride 4: [N, H/4, W/4, D] (contrast model only). */
  embed?: tf.Tensor4D;
}

/** Which part of the model a parameter belongs to (for counts and partial loading). */
export type ParamGroup = "backbone" | "cls_head" | "proj_head";

export function paramGroup(name: string): ParamGroup {
  if (name.startsWith("backbone.")) return "backbone";
  if (name.startsWith("proj_head.")) return "proj_head";
  if (name.startsWith("cls_head.")) return "cls_head";
  throw new Error(`parameter '${name}' belongs to no known group`);
}

export interface BuildOptions {
  /** Create the variables (default true). false = shapes only, e.g. for `summary`. */
  materialise?: boolean;
  /** Initialisation randomness (required when materialising). */
  rng?: Rng;
}

/**
 * HRNet + segmentation head (+ projection head for the contrast type).
 *
 * Training step, as the trainer should drive it:
 *   const { value, grads } = model.variableGrads(() => lossOf(model.forward(x, { training: true, rng })));
 *   optimizer.step(model.trainableWeights(), grads, lr);   // grads keyed by parameter name
 *   model.commitBnUpdates();                               // BN running stats, Paddle momentum 0.9
 */
export class SegModel {
  readonly options: ModelOptions;
  readonly store: ParamStore;
  readonly backbone: HRNet;
  readonly clsConv: ConvBN;
  readonly clsOut: Conv2d;
  readonly projConv: ConvBN | null;
  readonly projOut: Conv2d | null;
  readonly bnUpdates = new BnUpdates();

  constructor(options: ModelOptions, build: BuildOptions = {}) {
    const o = options;
    this.options = o;
    this.store = new ParamStore();
    this.backbone = new HRNet(this.store, HRNET_CONFIGS[o.backbone], {
      padding: o.paddingMode,
      alignCorners: o.alignCorners,
    });
    const cb = this.backbone.featChannels;
    // cls_head = Sequential(ConvBNReLU(3x3, bias), Dropout2D, Conv2D(1x1, no bias)); Paddle default init.
    this.clsConv = new ConvBN(this.store, {
      name: "cls_head.0",
      torchConv: "cls_head.0",
      torchBn: "cls_head.1.0",
      inChannels: cb,
      outChannels: cb,
      kernelSize: 3,
      bias: true,
      relu: true,
      padding: o.paddingMode,
    });
    this.clsOut = new Conv2d(this.store, {
      name: "cls_head.2",
      torchName: "cls_head.3",
      inChannels: cb,
      outChannels: o.numClasses,
      kernelSize: 1,
      bias: false,
      padding: o.paddingMode,
    });
    if (o.type === "HRNetW48Contrast") {
      if (o.projDim === null) {
        throw new Error("SegModel: HRNetW48Contrast needs projDim (its embedding width)");
      }
      // proj_head.proj = Sequential(ConvBNReLU(1x1, bias), Conv2D(1x1, bias)).
      this.projConv = new ConvBN(this.store, {
        name: "proj_head.proj.0",
        torchConv: "proj_head.proj.0",
        torchBn: "proj_head.proj.1.0",
        inChannels: cb,
        outChannels: cb,
        kernelSize: 1,
        bias: true,
        relu: true,
        padding: o.paddingMode,
      });
      this.projOut = new Conv2d(this.store, {
        name: "proj_head.proj.1",
        torchName: "proj_head.proj.2",
        inChannels: cb,
        outChannels: o.projDim,
        kernelSize: 1,
        bias: true,
        padding: o.paddingMode,
      });
    } else {
      this.projConv = null;
      this.projOut = null;
    }
    if (build.materialise ?? true) {
      if (!build.rng) throw new Error("SegModel: an Rng is required to initialise the weights (build.rng)");
      this.store.materialise(build.rng);
    }
  }

  get numClasses(): number {
    return this.options.numClasses;
  }

  get hasProjection(): boolean {
    return this.projOut !== null;
  }

  /**
   * x: [N,H,W,3] float32 (normalised image). Training mode queues BN batch statistics (apply them with
   * `commitBnUpdates()` after the step) and needs `rng` for dropout.
   */
  forward(x: tf.Tensor4D, opts: ForwardOptions): SegOutputs {
    if (x.rank !== 4 || x.shape[3] !== 3) throw new Error(`model input must be [N,H,W,3], got [${x.shape}]`);
    const training = opts.training;
    if (training && this.options.dropProb > 0 && !opts.rng) {
      throw new Error("SegModel.forward: training mode needs an Rng for dropout (opts.rng)");
    }
    const ctx: ForwardContext = {
      training,
      rng: opts.rng,
      bnUpdates: training ? this.bnUpdates : undefined,
      recompute: training && (opts.recompute ?? false),
    };
    const wantEmbed = (opts.embed ?? true) && this.hasProjection;
    const [, h, w] = x.shape;
    return tf.tidy(() => {
      const feats = this.backbone.forward(x, ctx);
      let y = this.clsConv.forward(feats, ctx);
      if (training) y = dropout2d(y, this.options.dropProb, opts.rng!);
      const logits4 = this.clsOut.forward(y);
      const logitsUp = resizeBilinear(logits4, [h, w], this.options.alignCorners);
      const out: SegOutputs = { logitsUp, logits4 };
      if (wantEmbed) out.embed = l2Normalize(this.projOut!.forward(this.projConv!.forward(feats, ctx)));
      return out as unknown as tf.TensorContainer;
    }) as unknown as SegOutputs;
  }

  /** Inference: eval mode, no projection head. Returns logits at input size [N,H,W,K]. */
  predict(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const out = this.forward(x, { training: false, embed: false });
      out.logits4.dispose();
      return out.logitsUp;
    });
  }

  /** Apply the queued BN running-statistics updates (in forward order); returns how many were applied. */
  commitBnUpdates(): number {
    return this.bnUpdates.commit();
  }

  /** Drop queued BN updates without applying them (e.g. after a forward used only for diagnostics). */
  discardBnUpdates(): void {
    this.bnUpdates.discard();
  }

  /** Every tensor by PaddleSeg name, BN running statistics included (checkpoints, import). */
  namedWeights(): Map<string, tf.Variable> {
    return new Map(this.store.params.map((p) => [p.spec.name, p.value]));
  }

  /** Trainable tensors by name (for the optimizer). */
  trainableWeights(): Map<string, tf.Variable> {
    return new Map(this.store.params.filter((p) => p.spec.trainable).map((p) => [p.spec.name, p.value]));
  }

  trainableVariables(): tf.Variable[] {
    return this.store.params.filter((p) => p.spec.trainable).map((p) => p.value);
  }

  /**
   * `tf.variableGrads` over the trainable variables, with gradients keyed by OUR parameter names.
   * `f` must return a scalar loss.
   */
  variableGrads(f: () => tf.Scalar): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
    const { value, grads } = tf.variableGrads(f, this.trainableVariables());
    const named: Record<string, tf.Tensor> = {};
    for (const [tfName, g] of Object.entries(grads)) {
      const name = this.store.nameOfVariable(tfName);
      if (!name) throw new Error(`variableGrads: gradient for unknown variable '${tfName}'`);
      named[name] = g;
    }
    return { value, grads: named };
  }

  /** Parameter counts per group and convention (see docs/method.md §1.4). */
  counts(): ParamCounts {
    return countParams(this.store);
  }

  dispose(): void {
    this.bnUpdates.discard();
    this.store.dispose();
  }
}

export interface ParamCounts {
  /** Trainable parameters per group. */
  trainable: Record<ParamGroup, number>;
  /** BN running statistics (mean + variance) per group. */
  bnStats: Record<ParamGroup, number>;
  /** Number of tensors per group (all roles). */
  tensors: Record<ParamGroup, number>;
  totalTrainable: number;
  /** `paddle.flops` "Total Params": eval mode (no projection head), BN running stats included. */
  paddleFlopsTotal: number;
}

export function countParams(store: ParamStore): ParamCounts {
  const zero = (): Record<ParamGroup, number> => ({ backbone: 0, cls_head: 0, proj_head: 0 });
  const trainable = zero(), bnStats = zero(), tensors = zero();
  for (const p of store.params) {
    const g = paramGroup(p.spec.name);
    const n = numel(p.spec.shape);
    tensors[g]++;
    if (p.spec.trainable) trainable[g] += n;
    else bnStats[g] += n;
  }
  const totalTrainable = trainable.backbone + trainable.cls_head + trainable.proj_head;
  const paddleFlopsTotal = trainable.backbone + trainable.cls_head + bnStats.backbone + bnStats.cls_head;
  return { trainable, bnStats, tensors, totalTrainable, paddleFlopsTotal };
}

/** Build a model from plain options; `rng` initialises the weights as PaddleSeg does. */
export function buildModel(options: ModelOptions, rng: Rng = new Rng(0)): SegModel {
  return new SegModel(options, { materialise: true, rng });
}
