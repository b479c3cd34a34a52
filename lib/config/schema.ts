/**
 * The configuration schema: PaddleSeg's YAML keys (so users can port their configs), plus a few keys of
 * ours (marked "ours"). Validated once, at the edge (`loadConfig`); everything downstream reads the
 * plain, fully defaulted object typed `Config` (= `z.output<typeof configSchema>`).
 *
 * Conventions, as PaddleSeg:
 * - sizes are [width, height];
 * - paths (dataset_root, list files, pretrained weights, save_dir) are relative to the working
 *   directory; only `_base_` is relative to the YAML file that names it;
 * - `null` in YAML means "unset": the key takes its default (PaddleSeg writes `seed: null` etc.).
 *
 * Derived values are filled in here so that consumers never repeat the rule: `model.num_classes` and
 * every loss's `ignore_index` come from the dataset (PaddleSeg's sync rules), `model.bb_channels` from
 * the backbone, `loss.coef` broadcasting, `train.eval_interval`, and `test_config.scales` as a list.
 */
import { z } from "zod";
import {
  BACKBONE_NAMES,
  type BackboneName,
  HRNET_CONFIGS,
  hrnetConcatChannels,
} from "../models/hrnet_configs.ts";

// ---------------------------------------------------------------------------------------------------
// constants

export const BACKENDS = ["auto", "tensorflow", "wasm", "webgpu", "cpu"] as const;
export type BackendChoice = (typeof BACKENDS)[number];
/** `train.precision` (PaddleSeg's `--precision`): see lib/backend/native_bf16.ts. */
export const PRECISIONS = ["fp32", "bf16", "auto"] as const;
export type PrecisionChoice = (typeof PRECISIONS)[number];
/** `train.graph`: the model's forward and backward as one recorded TensorFlow graph (lib/train/graph_step.ts). */
export const GRAPH_MODES = ["auto", "on", "off"] as const;
export type GraphChoice = (typeof GRAPH_MODES)[number];

/**
 * Channels of the HRNetV2 representation (the four branches concatenated at stride 4) per backbone,
 * derived from the one table of widths (lib/models/hrnet_configs.ts: PaddleSeg's
 * `paddleseg/models/backbones/hrnet.py`; `HRNet_Tiny` is ours, for tests).
 */
export const HRNET_CONCAT_CHANNELS = Object.fromEntries(
  BACKBONE_NAMES.map((name) => [name, hrnetConcatChannels(HRNET_CONFIGS[name])]),
) as Record<BackboneName, number>;
export type BackboneType = BackboneName;
const BACKBONE_TYPES = Object.keys(HRNET_CONCAT_CHANNELS) as [BackboneType, ...BackboneType[]];

/** Cityscapes train-id classes and ignore label (also used by the synthetic Cityscapes-like dataset). */
export const CITYSCAPES_NUM_CLASSES = 19;
export const CITYSCAPES_IGNORE_INDEX = 255;

/**
 * Named CE class-weight presets and their class counts. The weights themselves live with the loss
 * (lib/losses/options.ts `CE_WEIGHT_PRESETS`), which resolves the name; the config only checks the count.
 * `torch_cityscapes`: the official PyTorch code's Cityscapes weights (docs/method.md §3).
 */
export const CE_WEIGHT_PRESET_SIZES = { torch_cityscapes: 19 } as const;
type WeightPreset = keyof typeof CE_WEIGHT_PRESET_SIZES;
const WEIGHT_PRESETS = Object.keys(CE_WEIGHT_PRESET_SIZES) as [WeightPreset, ...WeightPreset[]];

// ---------------------------------------------------------------------------------------------------
// small building blocks

const int = (min: number) => z.number().int().min(min);
const posInt = () => int(1);
const prob = () => z.number().min(0).max(1);
const sizeWH = () => z.tuple([posInt(), posInt()]);
const rgb = () => z.tuple([z.number(), z.number(), z.number()]);

/** A local file path; URLs are refused because nothing is downloaded at run time. */
const localPath = (what: string) =>
  z.string().min(1).refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s), {
    message: `${what} must be a local file path: URLs are not accepted because nothing is downloaded at ` +
      "run time; download the file yourself and give its path",
  });

// ---------------------------------------------------------------------------------------------------
// transforms (PaddleSeg `paddleseg/transforms/transforms.py`, same names, keys and defaults)

const resizeStepScaling = z.strictObject({
  type: z.literal("ResizeStepScaling"),
  min_scale_factor: z.number().positive().default(0.75).describe("smallest scale factor"),
  max_scale_factor: z.number().positive().default(1.25).describe("largest scale factor"),
  scale_step_size: z.number().min(0).default(0.25).describe(
    "one factor is drawn uniformly from min..max in these steps (0: continuous); aspect kept",
  ),
}).describe("random rescale of image (bilinear) and label (nearest)");

const padValue = z.union([z.number(), rgb()]).transform((v): [number, number, number] =>
  typeof v === "number" ? [v, v, v] : v
);

const randomPaddingCrop = z.strictObject({
  type: z.literal("RandomPaddingCrop"),
  crop_size: sizeWH().default((): [number, number] => [512, 512]).describe("crop [width, height]"),
  im_padding_value: padValue.default((): [number, number, number] => [127.5, 127.5, 127.5]).describe(
    "image fill when padding up to the crop size (a number or [r, g, b])",
  ),
  label_padding_value: int(0).max(255).default(255).describe("label fill when padding"),
  category_max_ratio: z.number().gt(0).max(1).default(1).describe(
    "PaddleSeg: retry the crop (up to loop_times) while one class covers more than this share (1: off)",
  ),
  ignore_index: int(0).max(255).optional().describe(
    "label excluded from the category_max_ratio count; filled from the dataset",
  ),
  loop_times: posInt().default(10).describe("PaddleSeg: crop attempts for category_max_ratio"),
}).describe("pad bottom/right to the crop size if smaller, then crop at a uniformly random offset");

const randomHorizontalFlip = z.strictObject({
  type: z.literal("RandomHorizontalFlip"),
  prob: prob().default(0.5).describe("flip probability"),
}).describe("horizontal flip of image and label");

const randomDistort = z.strictObject({
  type: z.literal("RandomDistort"),
  brightness_range: z.number().min(0).default(0.5).describe("factor drawn from U(1-r, 1+r)"),
  brightness_prob: prob().default(0.5).describe("probability of the brightness change"),
  contrast_range: z.number().min(0).default(0.5).describe("factor drawn from U(1-r, 1+r)"),
  contrast_prob: prob().default(0.5).describe("probability of the contrast change"),
  saturation_range: z.number().min(0).default(0.5).describe("factor drawn from U(1-r, 1+r)"),
  saturation_prob: prob().default(0.5).describe("probability of the saturation change"),
  hue_range: z.number().min(0).default(18).describe("delta drawn from U(-r, r), added to PIL's uint8 H"),
  hue_prob: prob().default(0.5).describe("probability of the hue change"),
  sharpness_range: z.number().min(0).default(0.5).describe("factor drawn from U(1-r, 1+r)"),
  sharpness_prob: prob().default(0).describe("probability of the sharpness change"),
}).describe("photometric distortion, the five ops in random order (PaddleSeg/PIL semantics)");

const normalize = z.strictObject({
  type: z.literal("Normalize"),
  mean: rgb().default((): [number, number, number] => [0.5, 0.5, 0.5]).describe("per-channel mean of x/255"),
  std: rgb().default((): [number, number, number] => [0.5, 0.5, 0.5]).describe(
    "per-channel std of x/255 (x' = (x/255 - mean)/std)",
  ),
}).refine((t) => t.std.every((s) => s !== 0), { message: "std must not contain 0", path: ["std"] })
  .describe("normalise RGB (PaddleSeg default: [-1, 1], not ImageNet statistics)");

const resize = z.strictObject({
  type: z.literal("Resize"),
  target_size: sizeWH().default((): [number, number] => [512, 512]).describe("output [width, height]"),
  interp: z.enum(["LINEAR", "NEAREST"]).default("LINEAR").describe("image interpolation (labels: nearest)"),
}).describe("resize image (bilinear) and label (nearest) to a fixed size");

export const transformSchema = z.discriminatedUnion("type", [
  resizeStepScaling,
  randomPaddingCrop,
  randomHorizontalFlip,
  randomDistort,
  normalize,
  resize,
]);

// ---------------------------------------------------------------------------------------------------
// datasets

const MODES = ["train", "val", "test"] as const;

function datasetSchema(defaultMode: (typeof MODES)[number]) {
  const common = {
    transforms: z.array(transformSchema).default(() => []).describe(
      "PaddleSeg transforms applied in order (list of {type, ...})",
    ),
    mode: z.enum(MODES).default(defaultMode).describe("which split this dataset reads"),
  };
  const cityscapes = z.strictObject({
    type: z.literal("Cityscapes"),
    dataset_root: z.string().min(1).describe(
      "folder with leftImg8bit/ and gtFine/ (*_gtFine_labelTrainIds.png); relative to the working dir",
    ),
    ...common,
  }).describe("Cityscapes in the official layout, 19 train-id classes, ignore 255");
  const generic = z.strictObject({
    type: z.literal("Dataset"),
    dataset_root: z.string().min(1).describe("root that the paths inside the list files are relative to"),
    train_path: z.string().min(1).optional().describe("list file of 'image label' lines for mode train"),
    val_path: z.string().min(1).optional().describe("list file for mode val"),
    test_path: z.string().min(1).optional().describe("list file for mode test"),
    num_classes: posInt().describe("number of classes"),
    ignore_index: int(0).default(255).describe("label value excluded from loss and metrics"),
    separator: z.string().min(1).default(" ").describe("separator between image and label path"),
    class_names: z.array(z.string().min(1)).optional().describe(
      "one name per class, in label order (printed and plotted instead of 'class N')",
    ),
    ...common,
  }).superRefine((d, ctx) => {
    const key = `${d.mode}_path` as const;
    if (d[key] === undefined) {
      ctx.addIssue({ code: "custom", path: [key], message: `required for mode '${d.mode}'` });
    }
    if (d.class_names && d.class_names.length !== d.num_classes) {
      ctx.addIssue({
        code: "custom",
        path: ["class_names"],
        message: `${d.class_names.length} names for num_classes ${d.num_classes}`,
      });
    }
  }).describe("PaddleSeg's generic dataset: list files of 'image_path label_path' lines");
  const synthetic = z.strictObject({
    type: z.literal("SyntheticCityscapes"),
    dataset_root: z.string().min(1).default("data/synthetic_cityscapes").describe(
      "where lib/data writes (and caches) the generated images",
    ),
    num_train: posInt().default(200).describe("number of generated training images"),
    num_val: posInt().default(50).describe("number of generated validation images"),
    size: sizeWH().default((): [number, number] => [256, 128]).describe("generated image [width, height]"),
    generator_seed: int(0).default(0).describe(
      "seed of the generator (fixed data, independent of the training seed)",
    ),
    ...common,
  }).describe("ours: Cityscapes-like street scenes generated by lib/data, 19 classes, ignore 255");
  return z.discriminatedUnion("type", [cityscapes, generic, synthetic]);
}

// ---------------------------------------------------------------------------------------------------
// model

const backbone = z.strictObject({
  type: z.enum(BACKBONE_TYPES).describe(
    "HRNet width as PaddleSeg (concat channels: W18_Small_V1 240, W18_Small_V2/W18 270, W30 450, " +
      "W32 480, W40 600, W44 660, W48 720, W60 900, W64 960). HRNet_Tiny (ours, tests only): 16-channel " +
      "stem, one module per stage and one block per branch, branches [4, 8, 16, 32] (60)",
  ),
  pretrained: localPath("model.backbone.pretrained").optional().describe(
    "ImageNet weights for the backbone (local file; the seed used PaddleClas SSLD hrnet_w48_ssld)",
  ),
  padding_mode: z.enum(["paddle", "torch"]).default("paddle").describe(
    "paddle: 'same' padding (stride-2 3x3 pads 0 before, 1 after); torch: symmetric padding 1 (ours)",
  ),
  align_corners: z.boolean().default(false).describe(
    "bilinear upsampling in fuse layers/concat: false = half-pixel (Paddle), true = TORCH mode (ours)",
  ),
}).describe("HRNet backbone (HRNetV2 representation: 4 branches upsampled and concatenated at stride 4)");

const modelCommon = {
  backbone,
  num_classes: posInt().optional().describe("number of classes; filled from the dataset when absent"),
  bb_channels: posInt().optional().describe(
    "backbone output channels (PaddleSeg `bb_channels`, REPRO `in_channels`); derived from the backbone",
  ),
  in_channels: posInt().optional().describe("REPRO's name for bb_channels (alias)"),
  drop_prob: z.number().min(0).lt(1).default(0.1).describe("Dropout2D probability in the segmentation head"),
  pretrained: localPath("model.pretrained").optional().describe(
    "whole-model weights (local file), loaded after the backbone's",
  ),
  pretrained_min_match: prob().default(0.9).describe(
    "ours: minimum share of the model's (or backbone's) parameters that pretrained weights must match " +
      "by name and shape, else loading fails",
  ),
};

const contrastModel = z.strictObject({
  type: z.enum(["HRNetW48Contrast", "HRNetW48ContrastHead"]).transform(() => "HRNetW48Contrast" as const)
    .describe(
      "HRNetW48Contrast (PaddleSeg; REPRO alias HRNetW48ContrastHead): HRNet + segmentation head + " +
        "projection head; any HRNet width despite the name",
    ),
  proj_dim: posInt().default(720).describe("embedding dimension D of the projection head (REPRO 720)"),
  ...modelCommon,
}).describe("contrast model: training outputs [logits_up, {seg, embed}]");

const ceModel = z.strictObject({
  type: z.enum(["HRNetW48", "HRNetCE"]).transform(() => "HRNetW48" as const).describe(
    "HRNetW48 (ours, like TORCH's HRNet_W48; alias HRNetCE): the contrast model without the projection " +
      "head — the CE-only twin; any HRNet width despite the name",
  ),
  ...modelCommon,
}).describe("CE-only twin: outputs [logits_up]");

const modelSchema = z.discriminatedUnion("type", [contrastModel, ceModel]);

// ---------------------------------------------------------------------------------------------------
// optimizer and schedule

const optimizerSchema = z.strictObject({
  type: z.enum(["sgd", "SGD", "Momentum"]).default("sgd").transform(() => "sgd" as const).describe(
    "momentum SGD (REPRO `sgd`, PaddleSeg `SGD`/`Momentum`)",
  ),
  momentum: z.number().min(0).lt(1).default(0.9).describe("momentum (PaddleSeg defaults sgd to 0.9)"),
  weight_decay: z.number().min(0).default(0).describe(
    "coupled L2 added to the gradient of every parameter (seed 2e-4)",
  ),
}).describe("optimizer");

const lrSchedulerSchema = z.strictObject({
  type: z.literal("PolynomialDecay").default("PolynomialDecay").describe(
    "lr_k = (lr - end_lr)(1 - k/iters)^power + end_lr",
  ),
  learning_rate: z.number().positive().default(0.01).describe("base learning rate"),
  end_lr: z.number().min(0).default(0).describe("final learning rate"),
  power: z.number().positive().default(0.9).describe("polynomial power"),
  warmup_iters: int(0).default(0).describe("linear warm-up steps (PaddleSeg LinearWarmup)"),
  warmup_start_lr: z.number().min(0).default(0).describe("learning rate at step 0 of the warm-up"),
}).describe("learning-rate schedule, stepped once per optimizer step");

// ---------------------------------------------------------------------------------------------------
// losses

const crossEntropy = z.strictObject({
  type: z.literal("CrossEntropyLoss"),
  ignore_index: int(0).optional().describe("ignored label; filled from the dataset (must agree if set)"),
  weight: z.union([z.array(z.number().min(0)).min(1), z.enum(WEIGHT_PRESETS)]).optional().describe(
    "class weights (list of num_classes numbers) or a preset name (torch_cityscapes); absent: unweighted",
  ),
}).describe("pixel cross-entropy on logits_up, mean over non-ignored pixels");

const memoryBank = z.strictObject({
  enabled: z.boolean().default(false).describe(
    "use the pixel/segment memory bank (TORCH only; REPRO does not)",
  ),
  pixel_size: posInt().default(5000).describe("pixel-queue length per class (TORCH memory_size)"),
  segment_size: posInt().default(5000).describe("segment-queue length per class (TORCH memory_size)"),
  pixel_update_freq: posInt().default(10).describe("pixels enqueued per class and image per step"),
  mining: z.enum(["none", "hardest", "semi_hard"]).default("none").describe(
    "negative mining over the memory (the paper's variants; not in the public code)",
  ),
  reproduce_public_code: z.boolean().default(false).describe(
    "reproduce the public code's defects (docs/method.md §5) instead of the intended semantics",
  ),
}).describe("ours: memory-bank options");

const pixelContrast = z.strictObject({
  type: z.enum(["PixelContrastCrossEntropyLoss", "PixelContrastLoss"]).transform(() =>
    "PixelContrastCrossEntropyLoss" as const
  ).describe("PaddleSeg name; PixelContrastLoss (REPRO's run-time name) is an alias"),
  temperature: z.number().positive().default(0.1).describe("tau, divides cosine similarities"),
  base_temperature: z.number().positive().default(0.07).describe("tau_b; the loss is scaled by tau/tau_b"),
  ignore_index: int(0).optional().describe("ignored label; filled from the dataset (must agree if set)"),
  max_samples: posInt().default(1024).describe("cap on anchors per contrast group"),
  max_views: posInt().default(100).describe(
    "cap on anchors per (image, class); classes need more than this many pixels at stride 4",
  ),
  contrast_group_size: posInt().default(2).describe(
    "ours: images whose pixels are contrasted together (the seed: 2 per GPU); must divide batch_size",
  ),
  warmup_iters: int(0).default(0).describe("ours: contrast term is 0 before this step (TORCH 5000)"),
  sampler: z.enum(["hard_easy"]).default("hard_easy").describe(
    "anchor sampler: hard_easy = half mis-classified, half correct pixels per (image, class)",
  ),
  memory: memoryBank.prefault({}),
}).describe("pixel-to-pixel supervised InfoNCE on the stride-4 embeddings");

const lossSchema = z.strictObject({
  types: z.array(z.discriminatedUnion("type", [crossEntropy, pixelContrast])).min(1).describe(
    "losses in model-output order: [CrossEntropyLoss] or [CrossEntropyLoss, PixelContrastCrossEntropyLoss]",
  ),
  coef: z.array(z.number().min(0)).min(1).describe(
    "weight of each loss; a single type is repeated to coef's length (PaddleSeg)",
  ),
}).describe("loss terms and their weights: total = sum coef_i * loss_i");

// ---------------------------------------------------------------------------------------------------
// evaluation and training run

const testConfigSchema = z.strictObject({
  is_slide: z.boolean().default(false).describe("sliding-window inference"),
  crop_size: sizeWH().optional().describe("sliding window [width, height] (required with is_slide)"),
  stride: sizeWH().optional().describe("sliding-window stride [width, height] (required with is_slide)"),
  aug_eval: z.boolean().default(false).describe("multi-scale and flip inference"),
  scales: z.union([z.number().positive(), z.array(z.number().positive()).min(1)]).default(1)
    .transform((s) => (typeof s === "number" ? [s] : s)).describe("scales for aug_eval (number or list)"),
  flip_horizontal: z.boolean().default(false).describe("add horizontally flipped inference (aug_eval)"),
  flip_vertical: z.boolean().default(false).describe("add vertically flipped inference (aug_eval)"),
}).superRefine((t, ctx) => {
  if (t.is_slide) {
    for (const k of ["crop_size", "stride"] as const) {
      if (!t[k]) ctx.addIssue({ code: "custom", path: [k], message: "required when is_slide is true" });
    }
  }
}).describe("PaddleSeg test_config: inference mode for validation and prediction");

const trainSchema = z.strictObject({
  grad_accum: posInt().default(1).describe("micro-batches of batch_size accumulated per optimizer step"),
  lr_scaling: z.enum(["none", "linear"]).default("none").describe(
    "learning-rate rule for an effective batch other than the reference's 8: none, or linear (lr x E/8)",
  ),
  recompute: z.boolean().default(false).describe(
    "gradient checkpointing of the backbone: about half the training memory for ~1.5x the time",
  ),
  precision: z.enum(PRECISIONS).default("fp32").describe(
    "convolutions and matmuls in fp32, or bf16 (native backend on a CPU with AVX512-BF16/AMX; weights, " +
      "BatchNorm, loss and optimizer stay fp32); auto = bf16 where supported, else fp32",
  ),
  graph: z.enum(GRAPH_MODES).default("auto").describe(
    "run the model's forward and backward as one recorded TensorFlow graph (native backend): on, off, or " +
      "auto = on with the tensorflow backend unless recompute is set",
  ),
  log_iters: posInt().default(10).describe("log every N iterations"),
  save_interval: posInt().default(1000).describe(
    "checkpoint (and evaluate, with do_eval) every N iterations",
  ),
  keep_checkpoint_max: posInt().default(5).describe("keep the last K iter_N checkpoints"),
  do_eval: z.boolean().default(false).describe("evaluate on val_dataset during training"),
  eval_interval: posInt().optional().describe("evaluate every N iterations; defaults to save_interval"),
  save_dir: z.string().min(1).default("output").describe("output folder"),
  resume_model: z.string().min(1).optional().describe("checkpoint folder to resume from (iter_N)"),
}).describe("ours (PaddleSeg's train.py flags): run settings, also set by CLI flags");

// ---------------------------------------------------------------------------------------------------
// the whole config

const baseConfigSchema = z.strictObject({
  batch_size: posInt().default(2).describe("images per micro-batch (the seed: 2 per GPU)"),
  iters: posInt().describe("optimizer steps of the run"),
  seed: int(0).default(0).describe(
    "ours: seed of the one generator (data order, augmentation, anchors, init)",
  ),
  backend: z.enum(BACKENDS).default("auto").describe("ours: TensorFlow.js backend"),
  train_dataset: datasetSchema("train").optional().describe("training data"),
  val_dataset: datasetSchema("val").optional().describe("validation data"),
  model: modelSchema.describe("network"),
  optimizer: optimizerSchema.prefault({}),
  lr_scheduler: lrSchedulerSchema.prefault({}),
  loss: lossSchema,
  test_config: testConfigSchema.prefault({}),
  train: trainSchema.prefault({}),
});

type BaseConfig = z.output<typeof baseConfigSchema>;
type Ctx = z.RefinementCtx<BaseConfig>;

function datasetClasses(d: BaseConfig["train_dataset"]): { numClasses: number; ignoreIndex: number } | null {
  if (!d) return null;
  if (d.type === "Dataset") return { numClasses: d.num_classes, ignoreIndex: d.ignore_index };
  return { numClasses: CITYSCAPES_NUM_CLASSES, ignoreIndex: CITYSCAPES_IGNORE_INDEX };
}

/** Cross-key rules (PaddleSeg's config checkers plus ours); each issue names the key at fault. */
function checkConfig(c: BaseConfig, ctx: Ctx): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: "custom", path, message });
  const train = datasetClasses(c.train_dataset);
  const val = datasetClasses(c.val_dataset);
  if (train && val && train.numClasses !== val.numClasses) {
    issue(["val_dataset"], `has ${val.numClasses} classes but train_dataset has ${train.numClasses}`);
  }
  if (train && val && train.ignoreIndex !== val.ignoreIndex) {
    issue(
      ["val_dataset"],
      `ignore_index ${val.ignoreIndex} differs from train_dataset's ${train.ignoreIndex}`,
    );
  }
  const data = train ?? val;
  const ds = train ? "train_dataset" : "val_dataset";
  const numClasses = c.model.num_classes ?? data?.numClasses;
  if (c.model.num_classes !== undefined && data && c.model.num_classes !== data.numClasses) {
    issue(
      ["model", "num_classes"],
      `${c.model.num_classes} does not match ${ds} (${data.numClasses} classes)`,
    );
  }
  if (numClasses === undefined) {
    issue(["model", "num_classes"], "required when no train_dataset or val_dataset gives the class count");
  }
  const expectBb = HRNET_CONCAT_CHANNELS[c.model.backbone.type];
  for (const k of ["bb_channels", "in_channels"] as const) {
    const v = c.model[k];
    if (v !== undefined && v !== expectBb) {
      issue(["model", k], `${v} does not match backbone ${c.model.backbone.type} (${expectBb} channels)`);
    }
  }

  // loss list against the model's outputs (PaddleSeg: one coef per output; one type may be repeated)
  const { types, coef } = c.loss;
  if (types.length !== coef.length && types.length !== 1) {
    issue(
      ["loss", "coef"],
      `has ${coef.length} entries but loss.types has ${types.length} (PaddleSeg: equal, or one type)`,
    );
    return;
  }
  const kinds = coef.map((_, i) => types[types.length === 1 ? 0 : i].type);
  const wanted = c.model.type === "HRNetW48Contrast"
    ? ["CrossEntropyLoss", "PixelContrastCrossEntropyLoss"]
    : ["CrossEntropyLoss"];
  if (kinds.join() !== wanted.join()) {
    issue(
      ["loss", "types"],
      `model ${c.model.type} needs losses [${
        wanted.join(", ")
      }] (one per model output, with as many coef), ` +
        `got [${kinds.join(", ")}]`,
    );
  }
  const ignore = data?.ignoreIndex;
  types.forEach((t, i) => {
    if (t.ignore_index !== undefined && ignore !== undefined && t.ignore_index !== ignore) {
      issue(
        ["loss", "types", i, "ignore_index"],
        `${t.ignore_index} differs from ${ds}'s ignore_index ${ignore}`,
      );
    }
    if (t.type === "CrossEntropyLoss" && t.weight !== undefined && numClasses !== undefined) {
      const n = typeof t.weight === "string" ? CE_WEIGHT_PRESET_SIZES[t.weight] : t.weight.length;
      if (n !== numClasses) {
        issue(
          ["loss", "types", i, "weight"],
          `has ${n} class weights but the model has ${numClasses} classes`,
        );
      }
    }
    if (t.type === "PixelContrastCrossEntropyLoss" && c.batch_size % t.contrast_group_size !== 0) {
      issue(
        ["loss", "types", i, "contrast_group_size"],
        `${t.contrast_group_size} does not divide batch_size ${c.batch_size}`,
      );
    }
  });
  if (c.lr_scheduler.warmup_iters > c.iters) {
    issue(["lr_scheduler", "warmup_iters"], `${c.lr_scheduler.warmup_iters} exceeds iters ${c.iters}`);
  }
  for (const [key, d] of [["train_dataset", c.train_dataset], ["val_dataset", c.val_dataset]] as const) {
    const dc = datasetClasses(d);
    d?.transforms.forEach((t, i) => {
      if (t.type === "ResizeStepScaling" && t.min_scale_factor > t.max_scale_factor) {
        issue([key, "transforms", i, "min_scale_factor"], "must not exceed max_scale_factor");
      }
      if (
        t.type === "RandomPaddingCrop" && dc && t.label_padding_value >= dc.numClasses &&
        t.label_padding_value !== dc.ignoreIndex
      ) {
        issue(
          [key, "transforms", i, "label_padding_value"],
          `${t.label_padding_value} is neither a class (0..${
            dc.numClasses - 1
          }) nor the dataset's ignore_index ` +
            `${dc.ignoreIndex}; padding is normally ignored: set it to ${dc.ignoreIndex}`,
        );
      }
    });
  }
  // both splits of the generated dataset come from one generation, cached in dataset_root
  const [tr, va] = [c.train_dataset, c.val_dataset];
  if (
    tr?.type === "SyntheticCityscapes" && va?.type === "SyntheticCityscapes" &&
    tr.dataset_root === va.dataset_root
  ) {
    for (const k of ["num_train", "num_val", "size", "generator_seed"] as const) {
      if (JSON.stringify(tr[k]) !== JSON.stringify(va[k])) {
        issue(
          ["val_dataset", k],
          `${JSON.stringify(va[k])} differs from train_dataset's ${JSON.stringify(tr[k])} for the same ` +
            `dataset_root (one generated dataset)`,
        );
      }
    }
  }
}

/** RandomPaddingCrop's ignore_index defaults to its dataset's. */
function withTransformIgnore<D extends BaseConfig["train_dataset"]>(d: D) {
  if (!d) return d;
  const ignore = datasetClasses(d)!.ignoreIndex;
  const transforms = d.transforms.map((t) =>
    t.type === "RandomPaddingCrop" ? { ...t, ignore_index: t.ignore_index ?? ignore } : t
  );
  return { ...d, transforms };
}

/** Fills the derived values (after `checkConfig` passed). */
function resolveConfig(c: BaseConfig) {
  const data = datasetClasses(c.train_dataset) ?? datasetClasses(c.val_dataset);
  const numClasses = c.model.num_classes ?? data!.numClasses;
  const ignoreIndex = data?.ignoreIndex ?? CITYSCAPES_IGNORE_INDEX;
  const { in_channels: _alias, ...model } = c.model;
  const { types, coef } = c.loss;
  const fullTypes = coef.map((_, i) => structuredClone(types[types.length === 1 ? 0 : i]));
  return {
    ...c,
    model: { ...model, num_classes: numClasses, bb_channels: HRNET_CONCAT_CHANNELS[model.backbone.type] },
    loss: {
      types: fullTypes.map((t) =>
        t.type === "CrossEntropyLoss"
          ? {
            type: t.type,
            ignore_index: t.ignore_index ?? ignoreIndex,
            ...(t.weight === undefined ? {} : { weight: t.weight }),
          }
          : { ...t, ignore_index: t.ignore_index ?? ignoreIndex }
      ),
      coef,
    },
    train_dataset: withTransformIgnore(c.train_dataset),
    val_dataset: withTransformIgnore(c.val_dataset),
    train: { ...c.train, eval_interval: c.train.eval_interval ?? c.train.save_interval },
  };
}

// The cross-key rules run only on input that passed the per-key checks (a pipe stops at the first
// failing stage), so they never see half-valid data or repeat a problem already reported.
export const configSchema = baseConfigSchema
  .pipe(z.custom<BaseConfig>().superRefine(checkConfig))
  .transform(resolveConfig);

/** The validated, fully defaulted configuration (plain data). */
export type Config = z.output<typeof configSchema>;
/** What a YAML file (after `_base_` merging) may contain. */
export type ConfigInput = z.input<typeof configSchema>;

export type DatasetConfig = NonNullable<Config["train_dataset"]>;
export type TransformConfig = DatasetConfig["transforms"][number];
export type ModelConfig = Config["model"];
export type BackboneConfig = ModelConfig["backbone"];
export type OptimizerConfig = Config["optimizer"];
export type LrSchedulerConfig = Config["lr_scheduler"];
export type LossConfig = Config["loss"];
export type LossTermConfig = LossConfig["types"][number];
export type CrossEntropyLossConfig = Extract<LossTermConfig, { type: "CrossEntropyLoss" }>;
export type PixelContrastLossConfig = Extract<LossTermConfig, { type: "PixelContrastCrossEntropyLoss" }>;
export type MemoryBankConfig = PixelContrastLossConfig["memory"];
export type TestConfig = Config["test_config"];
export type TrainConfig = Config["train"];
