/**
 * Losses of the pixel-contrast segmentation model (docs/method.md §3-5): pure functions of tensors plus an
 * injected Rng; no I/O, no synchronous read-back. Entry point for the trainer: `segmentationLoss` with complete
 * options (lib/run/options.ts maps the config's `loss` section onto them) and, when memory.enabled, a
 * `MemoryBank` from `memoryBankFromOptions`.
 */
export * from "./options.ts";
export { CE_EPS, crossEntropyGradNorm, crossEntropyLoss } from "./cross_entropy.ts";
export { downsampleLabels, labelsAndPredictions, nearestSourceIndices, predictFromLogits } from "./labels.ts";
export {
  type AnchorSample,
  anchorsPerClass,
  type ClassKeep,
  sampleHardAnchors,
  type SamplerOptions,
} from "./sampler.ts";
export {
  contrastiveFromRows,
  type ContrastiveOptions,
  contrastivePerRow,
  type ContrastiveResult,
  contrastiveTerm,
  gatherRows,
  NEG_BIG,
} from "./contrastive.ts";
export {
  type ContrastPlan,
  inBatchPlan,
  memoryPlan,
  type MemoryPlanOptions,
  planLoss,
} from "./contrast_plan.ts";
export {
  MemoryBank,
  type MemoryBankConfig,
  memoryBankFromOptions,
  type MemoryBankState,
  type MemoryUpdateInfo,
} from "./memory_bank.ts";
export {
  type ContrastDiagnostics,
  type ContrastGroupInfo,
  contrastGroups,
  type ContrastSample,
  type PixelContrastContext,
  type PixelContrastInputs,
  pixelContrastLoss,
  type PixelContrastResult,
  readContrastDiagnostics,
  sampleAnchors,
} from "./pixel_contrast.ts";
export {
  type LossDiagnostics,
  readLossDiagnostics,
  type SegLossContext,
  type SegLossInputs,
  type SegLossResult,
  segmentationLoss,
} from "./seg_loss.ts";
