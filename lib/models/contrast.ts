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

/** Accepted spellings of the model types (PaddleSeg / REPRO / config names). */
const TYPE_ALIASES: Record<string, ModelType> = {
  HRNetW48Contrast: "HRNetW48Contrast",
  HRNetW48ContrastHead: "HRNetW48Contrast",
  HRNetCE: "HRNetCE",
  HRNetW48: "HRNetCE",
};

/** Plain options (the trainer maps the config's `model.*` keys onto these). */
export interface ModelOptions {
  /**
   * "HRNetW48Contrast" (seg + projection head, default; alias "HRNetW48ContrastHead") or "HRNetCE" (seg head
   * only; alias "HRNetW48", the config's name for the CE-only twin).
   */
  type?: ModelType | "HRNetW48" | "HRNetW48ContrastHead";
  /** PaddleSeg backbone factory name, e.g. "HRNet_W48". */
  backbone: BackboneName;
  numClasses: number;
  /** Dropout2D probability in the seg head (default 0.1). */
  dropProb?: number;
  /** Projection dimension D (default 720; ignored by HRNetCE). */
  projDim?: number;
  /** "same" (Paddle, default; config spelling "paddle") or "symmetric" (TORCH; config spelling "torch"). */
  paddingMode?: PaddingMode | "paddle" | "torch";
  /** false (Paddle, default): half-pixel bilinear everywhere; true: TORCH align_corners=True. */
  alignCorners?: boolean;
  /** BN momentum in Paddle's convention (default 0.9) and epsilon (default 1e-5). */
  bnMomentum?: number;
  bnEpsilon?: number;
}

export interface ResolvedModelOptions {
  type: ModelType;
  backbone: BackboneName;
  numClasses: number;
  dropProb: number;
  projDim: number;
  paddingMode: PaddingMode;
  alignCorners: boolean;
  bnMomentum: number;
  bnEpsilon: number;
}

export function resolveModelOptions(o: ModelOptions): ResolvedModelOptions {
  if (!(o.backbone in HRNET_CONFIGS)) {
    throw new Error(
      `model.backbone.type: unknown backbone '${o.backbone}' (known: ${
        Object.keys(HRNET_CONFIGS).join(", ")
      })`,
    );
  }
  if (!Number.isInteger(o.numClasses) || o.numClasses < 1) {
    throw new Error(`model.num_classes must be a positive integer, got ${o.numClasses}`);
  }
  const type = TYPE_ALIASES[o.type ?? "HRNetW48Contrast"];
  if (!type) {
    throw new Error(
      `model.type: unknown model type '${o.type}' (known: ${Object.keys(TYPE_ALIASES).join(", ")})`,
    );
  }
  const pm = o.paddingMode ?? "same";
  const paddingMode = pm === "paddle" ? "same" : pm === "torch" ? "symmetric" : pm;
  const r: ResolvedModelOptions = {
    type,
    backbone: o.backbone,
    numClasses: o.numClasses,
    dropProb: o.dropProb ?? 0.1,
    projDim: o.projDim ?? 720,
    paddingMode,
    alignCorners: o.alignCorners ?? false,
    bnMomentum: o.bnMomentum ?? 0.9,
    bnEpsilon: o.bnEpsilon ?? 1e-5,
  };
  if (!(r.dropProb >= 0 && r.dropProb < 1)) {
    throw new Error(`model.drop_prob must be in [0, 1), got ${r.dropProb}`);
  }
  if (!Number.isInteger(r.projDim) || r.projDim < 1) {
    throw new Error(`model.proj_dim must be a positive integer, got ${r.projDim}`);
  }
  if (r.paddingMode !== "same" && r.paddingMode !== "symmetric") {
    throw new Error(
      `model.backbone.padding_mode must be 'paddle' ('same') or 'torch' ('symmetric'), got '${o.paddingMode}'`,
    );
  }
  return r;
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
  readonly options: ResolvedModelOptions;
  readonly store: ParamStore;
  readonly backbone: HRNet;
  readonly clsConv: ConvBN;
  readonly clsOut: Conv2d;
  readonly projConv: ConvBN | null;
  readonly projOut: Conv2d | null;
  readonly bnUpdates = new BnUpdates();

  constructor(options: ModelOptions, build: BuildOptions = {}) {
    const o = resolveModelOptions(options);
    this.options = o;
    this.store = new ParamStore();
    const bn = { bnMomentum: o.bnMomentum, bnEpsilon: o.bnEpsilon };
    this.backbone = new HRNet(this.store, HRNET_CONFIGS[o.backbone], {
      padding: o.paddingMode,
      alignCorners: o.alignCorners,
      ...bn,
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
      ...bn,
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
        ...bn,
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

/** The config's `model` section, structurally (lib/models does not import lib/config). */
export interface ModelConfigLike {
  type: string;
  backbone: { type: string; padding_mode?: string; align_corners?: boolean };
  num_classes?: number;
  drop_prob?: number;
  proj_dim?: number;
}

/** Map the config's `model.*` keys onto `ModelOptions` (`num_classes` must be resolved by then). */
export function modelOptionsFromConfig(m: ModelConfigLike): ModelOptions {
  if (m.num_classes === undefined) throw new Error("model.num_classes is not set");
  return {
    type: m.type as ModelOptions["type"],
    backbone: m.backbone.type as BackboneName,
    numClasses: m.num_classes,
    dropProb: m.drop_prob,
    projDim: m.proj_dim,
    paddingMode: m.backbone.padding_mode as ModelOptions["paddingMode"],
    alignCorners: m.backbone.align_corners,
  };
}

/** Build a model from plain options; `rng` initialises the weights as PaddleSeg does. */
export function buildModel(options: ModelOptions, rng: Rng = new Rng(0)): SegModel {
  return new SegModel(options, { materialise: true, rng });
}
