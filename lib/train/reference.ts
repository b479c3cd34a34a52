/**
 * Single-device honesty: how a run relates to the reference (REPRO, docs/method.md §7), printed at start.
 *
 * The reference trained on 4 GPUs x 2 images: one optimizer step averages the gradients of 8 images,
 * BN statistics are synchronised over those 8, and the contrast term is computed per GPU over 2 images
 * (anchor cap 1024 per GPU). One device reproduces the step with batch_size 2 x grad_accum 4 and
 * contrast_group_size 2, except for BN, which then normalises over 2 images per forward.
 *
 * Scaling rule (documented, applied only when asked with `train.lr_scaling: linear`): the linear
 * scaling rule of Goyal et al. (2017), lr = 0.01 x E / 8 for an effective batch E, with the same number
 * of iterations (so E/8 as many epochs). The default applies no rule: the config's values are used as is.
 */
import type { Config } from "../config/mod.ts";

export const REFERENCE = {
  devices: 4,
  imagesPerDevice: 2,
  effectiveBatch: 8,
  bnBatch: 8,
  contrastGroup: 2,
  maxSamples: 1024,
  learningRate: 0.01,
  iters: 60000,
} as const;

export interface RunRelation {
  effectiveBatch: number;
  bnBatch: number;
  contrastGroup: number | null;
  lr: number;
  lrRule: string;
  lines: string[];
}

/** Learning rate after the configured scaling rule. */
export function scaledLearningRate(config: Config): { lr: number; rule: string } {
  const base = config.lr_scheduler.learning_rate;
  const e = config.batch_size * config.train.grad_accum;
  if (config.train.lr_scaling === "linear") {
    const lr = base * e / REFERENCE.effectiveBatch;
    return { lr, rule: `linear scaling: ${base} x ${e}/${REFERENCE.effectiveBatch} = ${lr.toPrecision(4)}` };
  }
  return { lr: base, rule: "as configured (no scaling rule applied)" };
}

export function describeRun(config: Config, backend: string): RunRelation {
  const e = config.batch_size * config.train.grad_accum;
  const contrast = config.loss.types.find((t) => t.type !== "CrossEntropyLoss") as
    | { contrast_group_size: number; max_samples: number }
    | undefined;
  const group = contrast
    ? (contrast.contrast_group_size > 0 ? contrast.contrast_group_size : config.batch_size)
    : null;
  const { lr, rule } = scaledLearningRate(config);
  const r = REFERENCE;
  const lines = [
    `reference (REPRO, 82.47 mIoU): ${r.devices} GPUs x ${r.imagesPerDevice} images = ${r.effectiveBatch} per step, ` +
    `SyncBN over ${r.bnBatch}, contrast per GPU over ${r.contrastGroup} images (<= ${r.maxSamples} anchors each), ` +
    `lr ${r.learningRate} poly 0.9, ${r.iters} iterations`,
    `this run (${backend}): 1 device x batch_size ${config.batch_size} x grad_accum ${config.train.grad_accum} = ` +
    `${e} images per step; BN over ${config.batch_size} images per forward` +
    (contrast
      ? `; contrast per group of ${group} images (<= ${contrast.max_samples} anchors each)`
      : "; CE only") +
    `; lr ${lr} (${rule}); ${config.iters} iterations`,
  ];
  const deviations: string[] = [];
  if (e !== r.effectiveBatch) deviations.push(`effective batch ${e} vs ${r.effectiveBatch}`);
  if (config.batch_size !== r.bnBatch) {
    deviations.push(`BN statistics over ${config.batch_size} vs ${r.bnBatch} images`);
  }
  if (group !== null && group !== r.contrastGroup) {
    deviations.push(`contrast groups of ${group} vs ${r.contrastGroup}`);
  }
  lines.push(
    deviations.length
      ? `deviations from the reference: ${deviations.join("; ")}`
      : "matches the reference step",
  );
  return { effectiveBatch: e, bnBatch: config.batch_size, contrastGroup: group, lr, lrRule: rule, lines };
}
