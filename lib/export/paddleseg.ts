/**
 * Our validated config -> a config PaddleSeg 2.8 reads unchanged (`paddleseg.cvlibs.Config` +
 * `SegBuilder`, as tools/train.py and tools/val.py use them), plus the train.py flags our `train.*` keys
 * become. Every key is translated, refused (`ExportRefusedError`, each refusal naming the key and why), or
 * listed as having no meaning for PaddleSeg's run (`dropped`, with the reason). Pure: the caller reads
 * files, loads weights and prepares datasets (lib/export/mod.ts).
 *
 * Semantics kept, key by key (PaddleSeg 2.8 sources in brackets):
 * - model: HRNetW48Contrast with the same backbone factory (`HRNet_W18_Small_V1` ... `HRNet_W64`),
 *   `padding_same` (ours: padding_mode paddle) and `align_corners` on backbone and head. Our CE-only twin
 *   `HRNetW48` has no PaddleSeg model (its head is HRNetW48Contrast's seg head; PaddleSeg's FCN head is a
 *   1x1 conv): it becomes HRNetW48Contrast with a projection head that the loss weights by 0.
 * - data: `Cityscapes` (labelTrainIds files are required; the caller writes them for our generated
 *   dataset) and `Dataset` (list files, resolved as PaddleSeg resolves them: from the working directory).
 * - transforms: the same classes and arguments [transforms.py]; PaddleSeg 2.8.0's RandomPaddingCrop with
 *   category_max_ratio < 1 replaces the image by the label crop (a bug), and takes one padding number.
 * - optimizer `SGD` + momentum (PaddleSeg builds Momentum; weight_decay is coupled L2 on every
 *   parameter, as ours); `PolynomialDecay` with PaddleSeg's `warmup_iters` / `warmup_start_lr`.
 * - losses: CrossEntropyLoss (avg_non_ignore, as ours) and PixelContrastCrossEntropyLoss, which contrasts
 *   all images of one GPU's batch: our contrast_group_size must equal batch_size.
 */
import type { Config, TransformConfig } from "../config/mod.ts";
import { CE_WEIGHT_PRESETS } from "../losses/options.ts";
import { PyFloat, type PyValue } from "./pyyaml.ts";

/** A key PaddleSeg cannot express, and why. */
export interface Refusal {
  key: string;
  why: string;
}

export class ExportRefusedError extends Error {
  constructor(readonly source: string, readonly refusals: Refusal[]) {
    super(
      `${source}: cannot be expressed in PaddleSeg 2.8 (${refusals.length} key${
        refusals.length > 1 ? "s" : ""
      }):\n` + refusals.map((r) => `  ${r.key}: ${r.why}`).join("\n"),
    );
    this.name = "ExportRefusedError";
  }
}

/** How model weights reach PaddleSeg. */
export type WeightsPlan =
  /** `model.pretrained` = the exported .pdparams (our checkpoint, or the init our trainer would use). */
  | { kind: "exported"; pdparams: string }
  /** Nothing exported; `backbone.pretrained` / `model.pretrained` kept as paths PaddleSeg loads itself. */
  | { kind: "paths" };

export interface TranslateOptions {
  /** Where the exported weights are (when exported). */
  weights: WeightsPlan;
  /** PaddleSeg run folder written into the printed command (`--save_dir`). */
  saveDir: string;
  /** Whether a path exists (list files are checked where PaddleSeg looks for them). */
  exists: (path: string) => boolean;
}

export interface DatasetNeed {
  key: "train_dataset" | "val_dataset";
  /** Cityscapes layout (ours: Cityscapes or SyntheticCityscapes): labelTrainIds must exist. */
  layout: "cityscapes" | "list";
  synthetic: boolean;
  root: string;
  mode: string;
}

export interface Translation {
  /** The PaddleSeg config (PyYAML-safe: floats wrapped). */
  config: { [key: string]: PyValue };
  /** Flags of tools/train.py (and of scripts/paddleseg/train.py) our train.* keys and seed become. */
  trainFlags: string[];
  /** Flags of tools/val.py for our test_config. */
  valFlags: string[];
  /** Keys with no meaning for PaddleSeg's run, and why. */
  dropped: Refusal[];
  /** Translations that change the form (the CE twin, the synthetic dataset, save_dir). */
  notes: string[];
  datasets: DatasetNeed[];
  /** The CE-only twin was exported as HRNetW48Contrast (its weights need a projection head). */
  ceTwin: boolean;
  /** proj_dim of the exported model. */
  projDim: number;
}

/** PaddleSeg's ProjectionHead default, used for the CE twin's unused head. */
export const CE_TWIN_PROJ_DIM = 256;

const f = (v: number) => new PyFloat(v);
const floats = (vs: readonly number[]) => vs.map(f);

export function translateConfig(config: Config, source: string, o: TranslateOptions): Translation {
  const refusals: Refusal[] = [];
  const dropped: Refusal[] = [];
  const notes: string[] = [];
  const refuse = (key: string, why: string) => refusals.push({ key, why });
  const drop = (key: string, why: string) => dropped.push({ key, why });
  const out: { [key: string]: PyValue } = { batch_size: config.batch_size, iters: config.iters };

  drop("backend", "the TensorFlow.js backend; PaddleSeg's device is train.py's --device");

  // ---- datasets
  const datasets: DatasetNeed[] = [];
  for (const key of ["train_dataset", "val_dataset"] as const) {
    const d = config[key];
    if (!d) continue;
    const transforms = d.transforms.map((t, i) => translateTransform(t, `${key}.transforms[${i}]`, refuse));
    if (d.type === "Dataset") {
      const ds: { [k: string]: PyValue } = { type: "Dataset", dataset_root: d.dataset_root };
      for (const p of ["train_path", "val_path", "test_path"] as const) {
        const v = d[p];
        if (v === undefined) continue;
        // ours falls back to dataset_root/<path>; PaddleSeg opens the path as given
        const rooted = `${d.dataset_root.replace(/\/+$/, "")}/${v}`;
        ds[p] = !o.exists(v) && o.exists(rooted) ? rooted : v;
      }
      Object.assign(ds, {
        num_classes: d.num_classes,
        ignore_index: d.ignore_index,
        separator: d.separator,
        mode: d.mode,
        transforms,
      });
      if (d.class_names) drop(`${key}.class_names`, "display names only; PaddleSeg prints class indices");
      out[key] = ds;
      datasets.push({ key, layout: "list", synthetic: false, root: d.dataset_root, mode: d.mode });
    } else {
      out[key] = { type: "Cityscapes", dataset_root: d.dataset_root, transforms, mode: d.mode };
      datasets.push({
        key,
        layout: "cityscapes",
        synthetic: d.type === "SyntheticCityscapes",
        root: d.dataset_root,
        mode: d.mode,
      });
      if (d.type === "SyntheticCityscapes") {
        notes.push(
          `${key}: SyntheticCityscapes -> PaddleSeg's Cityscapes over the generated folder ${d.dataset_root} ` +
            "(generated and unpacked by the export, *_gtFine_labelTrainIds.png written beside the labelIds)",
        );
      }
    }
  }
  if (!config.train_dataset) refuse("train_dataset", "required by PaddleSeg's trainer (the config has none)");

  // ---- model
  const m = config.model;
  const bb = m.backbone;
  if (bb.type === "HRNet_Tiny") {
    refuse(
      "model.backbone.type",
      "HRNet_Tiny is ours (a 16-channel stem, for tests); PaddleSeg's HRNet has a 64-channel stem: use " +
        "HRNet_W18_Small_V1 or a larger width",
    );
  }
  const backbone: { [k: string]: PyValue } = {
    type: bb.type,
    align_corners: bb.align_corners,
    padding_same: bb.padding_mode === "paddle",
  };
  const ceTwin = m.type === "HRNetW48";
  const projDim = m.type === "HRNetW48Contrast" ? m.proj_dim : CE_TWIN_PROJ_DIM;
  const model: { [k: string]: PyValue } = {
    type: "HRNetW48Contrast",
    backbone,
    bb_channels: m.bb_channels,
    num_classes: m.num_classes,
    drop_prob: f(m.drop_prob),
    proj_dim: projDim,
    align_corners: bb.align_corners,
  };
  if (o.weights.kind === "exported") {
    model.pretrained = o.weights.pdparams;
    if (bb.pretrained) {
      drop("model.backbone.pretrained", `loaded into the exported weights ${o.weights.pdparams}`);
    }
    if (m.pretrained) drop("model.pretrained", `loaded into the exported weights ${o.weights.pdparams}`);
  } else {
    for (
      const [key, p, holder] of [
        ["model.backbone.pretrained", bb.pretrained, backbone],
        ["model.pretrained", m.pretrained, model],
      ] as const
    ) {
      if (!p) continue;
      if (/\.pdparams$/i.test(p)) {
        holder.pretrained = p;
        notes.push(`${key}: ${p} is not here; kept as a path that PaddleSeg opens itself`);
      } else {
        refuse(
          key,
          `${p} is not a .pdparams and is not here to convert (PaddleSeg reads only .pdparams); export ` +
            "where the file is, or give --model_path",
        );
      }
    }
  }
  drop(
    "model.pretrained_min_match",
    "used by the export when it loads weights; PaddleSeg's loader prints 'There are N/M variables loaded'",
  );
  if (ceTwin) {
    notes.push(
      "model HRNetW48 (CE only) -> HRNetW48Contrast with a projection head (proj_dim " +
        `${CE_TWIN_PROJ_DIM}) weighted 0 in the loss: PaddleSeg has no model with this head and no ` +
        "projection (its FCN head is a 1x1 conv). Its logits and CE are ours; PaddleSeg still computes the " +
        "contrast term (and stops on a batch where no class covers more than max_views stride-4 pixels)",
    );
  }
  out.model = model;

  // ---- optimizer and schedule
  const opt: { [k: string]: PyValue } = { type: "SGD", momentum: f(config.optimizer.momentum) };
  if (config.optimizer.weight_decay > 0) opt.weight_decay = f(config.optimizer.weight_decay);
  out.optimizer = opt;
  const s = config.lr_scheduler;
  const lr: { [k: string]: PyValue } = {
    type: "PolynomialDecay",
    learning_rate: f(s.learning_rate),
    end_lr: f(s.end_lr),
    power: f(s.power),
  };
  if (s.warmup_iters > 0) {
    Object.assign(lr, { warmup_iters: s.warmup_iters, warmup_start_lr: f(s.warmup_start_lr) });
  }
  out.lr_scheduler = lr;

  // ---- losses
  const types: PyValue[] = [];
  const coef = [...config.loss.coef];
  config.loss.types.forEach((t, i) => {
    const key = `loss.types[${i}]`;
    if (t.type === "CrossEntropyLoss") {
      const ce: { [k: string]: PyValue } = { type: "CrossEntropyLoss", ignore_index: t.ignore_index };
      if (t.weight !== undefined) {
        ce.weight = floats(typeof t.weight === "string" ? CE_WEIGHT_PRESETS[t.weight] : t.weight);
      }
      types.push(ce);
      return;
    }
    if (t.contrast_group_size !== config.batch_size) {
      refuse(
        `${key}.contrast_group_size`,
        `${t.contrast_group_size} differs from batch_size ${config.batch_size}: PaddleSeg contrasts all the ` +
          "images of one GPU's batch together; set contrast_group_size to batch_size (the seed: 2 and 2)",
      );
    }
    if (t.warmup_iters > 0) {
      refuse(`${key}.warmup_iters`, "PaddleSeg has no contrast warm-up (the term counts from iteration 1)");
    }
    if (t.memory.enabled) {
      refuse(
        `${key}.memory.enabled`,
        "the pixel/segment memory bank is ours (TORCH); PaddleSeg's PixelContrastCrossEntropyLoss contrasts " +
          "the pixels of the batch only",
      );
    }
    types.push({
      type: "PixelContrastCrossEntropyLoss",
      temperature: f(t.temperature),
      base_temperature: f(t.base_temperature),
      ignore_index: t.ignore_index,
      max_samples: t.max_samples,
      max_views: t.max_views,
    });
  });
  if (ceTwin) {
    const ignore = config.loss.types[0].ignore_index;
    types.push({
      type: "PixelContrastCrossEntropyLoss",
      temperature: f(0.1),
      base_temperature: f(0.07),
      ignore_index: ignore,
      max_samples: 1024,
      max_views: 100,
    });
    coef.push(0);
  }
  out.loss = { types, coef: floats(coef) };

  // ---- evaluation mode
  const tc = config.test_config;
  const test: { [k: string]: PyValue } = {};
  const valFlags: string[] = [];
  if (tc.aug_eval) {
    Object.assign(test, {
      aug_eval: true,
      scales: floats(tc.scales),
      flip_horizontal: tc.flip_horizontal,
      flip_vertical: tc.flip_vertical,
    });
    valFlags.push("--aug_eval", "--scales", ...tc.scales.map(String));
    if (tc.flip_horizontal) valFlags.push("--flip_horizontal");
    if (tc.flip_vertical) valFlags.push("--flip_vertical");
  }
  if (tc.is_slide) {
    Object.assign(test, { is_slide: true, crop_size: tc.crop_size!, stride: tc.stride! });
    valFlags.push(
      "--is_slide",
      "--crop_size",
      ...tc.crop_size!.map(String),
      "--stride",
      ...tc.stride!.map(String),
    );
  }
  if (Object.keys(test).length) out.test_config = test;

  // ---- run settings -> train.py flags
  const tr = config.train;
  const trainFlags: string[] = [];
  if (tr.grad_accum > 1) {
    refuse(
      "train.grad_accum",
      `${tr.grad_accum}: PaddleSeg's trainer has no gradient accumulation; train on ${tr.grad_accum}x the ` +
        "GPUs (the effective batch is batch_size x GPUs) and set grad_accum to 1",
    );
  }
  if (tr.lr_scaling !== "none") {
    refuse(
      "train.lr_scaling",
      `'${tr.lr_scaling}' depends on the number of GPUs, which the config does not know; set ` +
        "lr_scheduler.learning_rate to the scaled value and lr_scaling to none",
    );
  }
  if (tr.recompute) {
    refuse("train.recompute", "PaddleSeg's HRNet has no activation recomputation (set it to false)");
  }
  if (tr.resume_model) {
    refuse(
      "train.resume_model",
      "our checkpoints hold no PaddleSeg optimizer state (model.pdopt); export the checkpoint with " +
        "--model_path (PaddleSeg then starts at iteration 0 from its weights) and unset resume_model",
    );
  }
  if (tr.eval_interval !== tr.save_interval) {
    refuse(
      "train.eval_interval",
      `${tr.eval_interval} differs from save_interval ${tr.save_interval}: PaddleSeg evaluates when it saves`,
    );
  }
  if (tr.do_eval && !config.val_dataset) {
    drop("train.do_eval", "the config has no val_dataset to evaluate on");
  } else if (tr.do_eval) trainFlags.push("--do_eval");
  trainFlags.push(
    "--save_interval",
    String(tr.save_interval),
    "--log_iters",
    String(tr.log_iters),
    "--keep_checkpoint_max",
    String(tr.keep_checkpoint_max),
    "--seed",
    String(config.seed),
    "--save_dir",
    o.saveDir,
  );
  notes.push(
    `train.save_dir ${tr.save_dir} -> --save_dir ${o.saveDir}: a folder of its own, so PaddleSeg's iter_N/ ` +
      "folders never mix with (or rotate away) ours",
  );
  notes.push(
    `seed ${config.seed} -> --seed ${config.seed} (seeds Paddle's generators; draws differ from ours)`,
  );
  if (refusals.length) throw new ExportRefusedError(source, refusals);
  return {
    config: out,
    trainFlags,
    valFlags,
    dropped,
    notes,
    datasets,
    ceTwin,
    projDim,
  };
}

function translateTransform(
  t: TransformConfig,
  key: string,
  refuse: (key: string, why: string) => void,
): PyValue {
  switch (t.type) {
    case "ResizeStepScaling":
      return {
        type: t.type,
        min_scale_factor: f(t.min_scale_factor),
        max_scale_factor: f(t.max_scale_factor),
        scale_step_size: f(t.scale_step_size),
      };
    case "RandomPaddingCrop": {
      const [r, g, b] = t.im_padding_value;
      if (r !== g || g !== b) {
        refuse(
          `${key}.im_padding_value`,
          `[${t.im_padding_value}]: PaddleSeg 2.8's RandomPaddingCrop pads every channel with one number`,
        );
      }
      if (t.category_max_ratio < 1) {
        refuse(
          `${key}.category_max_ratio`,
          `${t.category_max_ratio}: PaddleSeg 2.8.0's RandomPaddingCrop replaces the image by the label crop ` +
            "when category_max_ratio < 1 (a bug in transforms.py); use 1",
        );
      }
      return {
        type: t.type,
        crop_size: [...t.crop_size],
        im_padding_value: f(r),
        label_padding_value: t.label_padding_value,
        category_max_ratio: f(t.category_max_ratio),
        ignore_index: t.ignore_index ?? 255,
        loop_times: t.loop_times,
      };
    }
    case "RandomHorizontalFlip":
      return { type: t.type, prob: f(t.prob) };
    case "RandomDistort":
      return {
        type: t.type,
        brightness_range: f(t.brightness_range),
        brightness_prob: f(t.brightness_prob),
        contrast_range: f(t.contrast_range),
        contrast_prob: f(t.contrast_prob),
        saturation_range: f(t.saturation_range),
        saturation_prob: f(t.saturation_prob),
        hue_range: f(t.hue_range),
        hue_prob: f(t.hue_prob),
        sharpness_range: f(t.sharpness_range),
        sharpness_prob: f(t.sharpness_prob),
      };
    case "Normalize":
      return { type: t.type, mean: floats(t.mean), std: floats(t.std) };
    case "Resize":
      return { type: t.type, target_size: [...t.target_size], interp: t.interp };
  }
}
