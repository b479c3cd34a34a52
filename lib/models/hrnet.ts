/**
 * HRNet backbone (HRNetV2 representation), NHWC, as PaddleSeg's `paddleseg/models/backbones/hrnet.py`:
 * stem (two 3x3 stride-2 ConvBNReLU), layer1 (Bottleneck blocks), transitions, stages of
 * HighResolutionModules (BasicBlock branches + fuse layers), and the final concat of all branches
 * upsampled to stride 4. Parameter names are PaddleSeg's state_dict keys (prefix `backbone.`); each also
 * records its name in the official PyTorch HRNet / ContrastiveSeg code (no prefix).
 *
 * Widths: PaddleSeg's factories HRNet_W18_Small_V1 ... HRNet_W64, plus `HRNet_Tiny` for fast tests.
 */
import { tf } from "../backend/tf.ts";
import { ConvBN, type ForwardContext, type PaddingMode } from "./layers.ts";
import { resizeBilinear } from "../backend/resize.ts";
import { recomputeInBackward } from "./ops.ts";
import type { Param, ParamInit, ParamStore } from "./params.ts";
import { hrnetConcatChannels, type HRNetConfig, type StageConfig } from "./hrnet_configs.ts";

export {
  BACKBONE_NAMES,
  type BackboneName,
  HRNET_CONFIGS,
  hrnetConcatChannels,
  type HRNetConfig,
  type StageConfig,
} from "./hrnet_configs.ts";

export interface HRNetOptions {
  /** 'same' (Paddle, default) or 'symmetric' (PyTorch padding=1). */
  padding: PaddingMode;
  /** Bilinear upsampling in fuse layers and the final concat: false = half-pixel centres (Paddle). */
  alignCorners: boolean;
  /** Name prefix (PaddleSeg: `backbone.`). */
  prefix?: string;
}

/** `HRNet.init_weight`: backbone convs Normal(0, 0.001) (BN gamma 1, beta 0 is the BN default). */
const BACKBONE_CONV_INIT: ParamInit = { kind: "normal", std: 0.001 };

interface Common {
  store: ParamStore;
  padding: PaddingMode;
}

function convBN(
  c: Common,
  name: string,
  torchConv: string,
  torchBn: string,
  cin: number,
  cout: number,
  k: number,
  stride: number,
  relu: boolean,
): ConvBN {
  return new ConvBN(c.store, {
    name,
    torchConv,
    torchBn,
    inChannels: cin,
    outChannels: cout,
    kernelSize: k,
    stride,
    relu,
    padding: c.padding,
    weightInit: BACKBONE_CONV_INIT,
  });
}

/** 1x1 -> 3x3 -> 1x1 (x4), projection shortcut on the first block. */
class BottleneckBlock {
  readonly conv1: ConvBN;
  readonly conv2: ConvBN;
  readonly conv3: ConvBN;
  readonly convDown: ConvBN | null;

  constructor(c: Common, name: string, torch: string, cin: number, filters: number, downsample: boolean) {
    this.conv1 = convBN(c, `${name}.conv1`, `${torch}.conv1`, `${torch}.bn1`, cin, filters, 1, 1, true);
    this.conv2 = convBN(c, `${name}.conv2`, `${torch}.conv2`, `${torch}.bn2`, filters, filters, 3, 1, true);
    this.conv3 = convBN(
      c,
      `${name}.conv3`,
      `${torch}.conv3`,
      `${torch}.bn3`,
      filters,
      filters * 4,
      1,
      1,
      false,
    );
    this.convDown = downsample
      ? convBN(
        c,
        `${name}.conv_down`,
        `${torch}.downsample.0`,
        `${torch}.downsample.1`,
        cin,
        filters * 4,
        1,
        1,
        false,
      )
      : null;
  }

  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => {
      const y = this.conv3.forward(this.conv2.forward(this.conv1.forward(x, ctx), ctx), ctx);
      const residual = this.convDown ? this.convDown.forward(x, ctx) : x;
      return tf.relu(tf.add(y, residual));
    });
  }
}

/** 3x3 -> 3x3 with identity shortcut (channels never change inside an HRNet branch). */
class BasicBlock {
  readonly conv1: ConvBN;
  readonly conv2: ConvBN;

  constructor(c: Common, name: string, torch: string, channels: number) {
    this.conv1 = convBN(c, `${name}.conv1`, `${torch}.conv1`, `${torch}.bn1`, channels, channels, 3, 1, true);
    this.conv2 = convBN(
      c,
      `${name}.conv2`,
      `${torch}.conv2`,
      `${torch}.bn2`,
      channels,
      channels,
      3,
      1,
      false,
    );
  }

  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    return tf.tidy(() => tf.relu(tf.add(this.conv2.forward(this.conv1.forward(x, ctx), ctx), x)));
  }
}

/** New branches by a 3x3 stride-2 ConvBNReLU from the last branch; changed widths by a 3x3 ConvBNReLU. */
class TransitionLayer {
  readonly convs: (ConvBN | null)[] = [];

  constructor(c: Common, prefix: string, tname: string, t: number, cin: number[], cout: number[]) {
    for (let i = 0; i < cout.length; i++) {
      const name = `${prefix}.transition_${tname}_layer_${i + 1}`;
      if (i < cin.length) {
        this.convs.push(
          cin[i] !== cout[i]
            ? convBN(c, name, `transition${t}.${i}.0`, `transition${t}.${i}.1`, cin[i], cout[i], 3, 1, true)
            : null,
        );
      } else {
        const last = cin[cin.length - 1];
        this.convs.push(
          convBN(c, name, `transition${t}.${i}.0.0`, `transition${t}.${i}.0.1`, last, cout[i], 3, 2, true),
        );
      }
    }
  }

  forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    return this.convs.map((conv, i) => {
      if (!conv) return xs[i];
      return conv.forward(i < xs.length ? xs[i] : xs[xs.length - 1], ctx);
    });
  }
}

/** Branches of BasicBlocks, then the fuse layers (every output branch sums all input branches). */
class HighResolutionModule {
  readonly branches: BasicBlock[][] = [];
  /** fuse[i][j]: j > i one 1x1 ConvBN; j < i a chain of (i - j) 3x3 stride-2 ConvBN(ReLU); j = i empty. */
  readonly fuse: ConvBN[][][] = [];
  readonly alignCorners: boolean;

  constructor(
    c: Common,
    prefix: string,
    name: string,
    torch: string,
    cfg: StageConfig,
    alignCorners: boolean,
  ) {
    this.alignCorners = alignCorners;
    const ch = cfg.numChannels;
    const nb = ch.length;
    for (let i = 0; i < nb; i++) {
      const blocks: BasicBlock[] = [];
      for (let j = 0; j < cfg.numBlocks[i]; j++) {
        blocks.push(
          new BasicBlock(
            c,
            `${prefix}.branches_func.bb_${name}_branch_layer_${i + 1}_${j + 1}`,
            `${torch}.branches.${i}.${j}`,
            ch[i],
          ),
        );
      }
      this.branches.push(blocks);
    }
    for (let i = 0; i < nb; i++) {
      const row: ConvBN[][] = [];
      for (let j = 0; j < nb; j++) {
        const base = `${prefix}.fuse_func.residual_${name}_layer_${i + 1}_${j + 1}`;
        const tbase = `${torch}.fuse_layers.${i}.${j}`;
        if (j > i) {
          row.push([convBN(c, base, `${tbase}.0`, `${tbase}.1`, ch[j], ch[i], 1, 1, false)]);
        } else if (j < i) {
          const chain: ConvBN[] = [];
          let pre = ch[j];
          for (let k = 0; k < i - j; k++) {
            const last = k === i - j - 1;
            const out = last ? ch[i] : ch[j];
            chain.push(
              convBN(c, `${base}_${k + 1}`, `${tbase}.${k}.0`, `${tbase}.${k}.1`, pre, out, 3, 2, !last),
            );
            pre = out;
          }
          row.push(chain);
        } else {
          row.push([]);
        }
      }
      this.fuse.push(row);
    }
  }

  forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    const outs = this.branches.map((blocks, i) =>
      tf.tidy(() => blocks.reduce((h, b) => b.forward(h, ctx), xs[i]))
    );
    const fused = this.fuse.map((row, i) =>
      tf.tidy(() => {
        let residual = outs[i];
        const [, h, w] = residual.shape;
        for (let j = 0; j < row.length; j++) {
          if (j > i) {
            const y = row[j][0].forward(outs[j], ctx);
            residual = tf.add(residual, resizeBilinear(y, [h, w], this.alignCorners));
          } else if (j < i) {
            residual = tf.add(residual, row[j].reduce((t, conv) => conv.forward(t, ctx), outs[j]));
          }
        }
        return tf.relu(residual);
      })
    );
    for (let i = 0; i < outs.length; i++) if (outs[i] !== xs[i]) outs[i].dispose();
    return fused;
  }
}

/** The trainable parameters a piece of the network adds to the store (for gradient checkpointing). */
function trainableSince(store: ParamStore, mark: number): Param[] {
  return store.params.slice(mark).filter((p) => p.spec.trainable);
}

/** Run a block, checkpointed when ctx.recompute is set (BN statistics are queued by the first run only). */
function runBlock(
  block: (xs: tf.Tensor4D[], ctx: ForwardContext) => tf.Tensor4D[],
  xs: tf.Tensor4D[],
  params: Param[],
  ctx: ForwardContext,
): tf.Tensor4D[] {
  if (!ctx.recompute || !ctx.training) return block(xs, ctx);
  return recomputeInBackward(
    (ins, recomputing) =>
      block(ins, { ...ctx, bnUpdates: recomputing ? undefined : ctx.bnUpdates, recompute: false }),
    xs,
    params.map((p) => p.value),
  );
}

class Stage {
  readonly modules: HighResolutionModule[] = [];
  readonly moduleParams: Param[][] = [];

  constructor(
    c: Common,
    prefix: string,
    stageName: string,
    s: number,
    cfg: StageConfig,
    alignCorners: boolean,
  ) {
    for (let m = 0; m < cfg.numModules; m++) {
      const name = `${stageName}_${m + 1}`;
      const mark = c.store.params.length;
      this.modules.push(
        new HighResolutionModule(c, `${prefix}.stage_${name}`, name, `stage${s}.${m}`, cfg, alignCorners),
      );
      this.moduleParams.push(trainableSince(c.store, mark));
    }
  }

  forward(xs: tf.Tensor4D[], ctx: ForwardContext): tf.Tensor4D[] {
    let cur = xs;
    for (let i = 0; i < this.modules.length; i++) {
      const m = this.modules[i];
      const next = runBlock((ins, cx) => m.forward(ins, cx), cur, this.moduleParams[i], ctx);
      if (cur !== xs) cur.forEach((t) => t.dispose());
      cur = next;
    }
    return cur;
  }
}

/** HRNet backbone: `forward(x: [N,H,W,3]) -> [N, ceil(H/4), ceil(W/4), sum(stage4 channels)]`. */
export class HRNet {
  readonly config: HRNetConfig;
  readonly featChannels: number;
  readonly alignCorners: boolean;
  readonly stem1: ConvBN;
  readonly stem2: ConvBN;
  readonly layer1: BottleneckBlock[] = [];
  readonly tr1: TransitionLayer;
  readonly st2: Stage;
  readonly tr2: TransitionLayer;
  readonly st3: Stage;
  readonly tr3: TransitionLayer;
  readonly st4: Stage;
  /** Trainable parameters of stem + layer1 (one checkpointed block). */
  readonly stemParams: Param[];

  constructor(store: ParamStore, config: HRNetConfig, o: HRNetOptions) {
    this.config = config;
    this.alignCorners = o.alignCorners;
    const p = (o.prefix ?? "backbone.").replace(/\.$/, "");
    const c: Common = { store, padding: o.padding };
    const { stage1, stage2, stage3, stage4 } = config;
    this.featChannels = hrnetConcatChannels(config);

    const mark = store.params.length;
    const stem = config.stemChannels ?? 64;
    this.stem1 = convBN(c, `${p}.conv_layer1_1`, "conv1", "bn1", 3, stem, 3, 2, true);
    this.stem2 = convBN(c, `${p}.conv_layer1_2`, "conv2", "bn2", stem, stem, 3, 2, true);
    const f = stage1.numChannels[0];
    for (let i = 0; i < stage1.numBlocks[0]; i++) {
      const cin = i === 0 ? stem : f * 4;
      this.layer1.push(new BottleneckBlock(c, `${p}.la1.bb_layer2_${i + 1}`, `layer1.${i}`, cin, f, i === 0));
    }
    this.stemParams = trainableSince(store, mark);
    this.tr1 = new TransitionLayer(c, `${p}.tr1`, "tr1", 1, [f * 4], stage2.numChannels);
    this.st2 = new Stage(c, `${p}.st2`, "st2", 2, stage2, o.alignCorners);
    this.tr2 = new TransitionLayer(c, `${p}.tr2`, "tr2", 2, stage2.numChannels, stage3.numChannels);
    this.st3 = new Stage(c, `${p}.st3`, "st3", 3, stage3, o.alignCorners);
    this.tr3 = new TransitionLayer(c, `${p}.tr3`, "tr3", 3, stage3.numChannels, stage4.numChannels);
    this.st4 = new Stage(c, `${p}.st4`, "st4", 4, stage4, o.alignCorners);
  }

  /**
   * The four stage-4 branches, strides 4/8/16/32 (`x: [N,H,W,3]`). With `ctx.recompute` (training), the
   * stem + layer1 and every HighResolutionModule are checkpointed blocks.
   */
  branches(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D[] {
    const stemBlock = (xs: tf.Tensor4D[], cx: ForwardContext) => [
      tf.tidy(() => {
        let h = this.stem2.forward(this.stem1.forward(xs[0], cx), cx);
        for (const b of this.layer1) h = b.forward(h, cx);
        return h;
      }),
    ];
    const [la1] = runBlock(stemBlock, [x], this.stemParams, ctx);
    const run = (tr: TransitionLayer, st: Stage, xs: tf.Tensor4D[]): tf.Tensor4D[] => {
      const t = tr.forward(xs, ctx);
      const out = st.forward(t, ctx);
      t.forEach((v) => {
        if (!xs.includes(v)) v.dispose();
      });
      return out;
    };
    const s2 = run(this.tr1, this.st2, [la1]);
    la1.dispose();
    const s3 = run(this.tr2, this.st3, s2);
    s2.forEach((t) => t.dispose());
    const s4 = run(this.tr3, this.st4, s3);
    s3.forEach((t) => t.dispose());
    return s4;
  }

  /** HRNetV2 representation: branches upsampled to branch 0's size and concatenated along channels. */
  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const bs = this.branches(x, ctx);
    const out = tf.tidy(() => {
      const [, h, w] = bs[0].shape;
      return tf.concat([bs[0], ...bs.slice(1).map((b) => resizeBilinear(b, [h, w], this.alignCorners))], 3);
    });
    bs.forEach((t) => t.dispose());
    return out;
  }
}
