/**
 * Evaluation: confusion matrix → metrics (docs/method.md §8), PaddleSeg's inference modes, exports, and the
 * `evaluate` loop and `validate` (a config's `test_config`) shared by in-training validation and `deno task val`.
 */
export { confusionCounts, ConfusionMatrix } from "./confusion.ts";
export { computeMetrics, formatMetrics, type SegMetrics } from "./metrics.ts";
export {
  augInference,
  describeEvalMode,
  type EvalMode,
  type EvalModeOptions,
  flipCombinations,
  forwardLogits,
  inferScores,
  predictClasses,
  resizeBilinear,
  resolveEvalMode,
  scaledSize,
  type SegPredictor,
  slideInference,
  slideWindows,
  WHOLE_MODE,
  type Window,
} from "./inference.ts";
export {
  blend,
  cityscapesStem,
  colorize,
  colorMapList,
  defaultPalette,
  denormalize,
  type ExportItem,
  type ExportOptions,
  exportPrediction,
  exportStem,
  type Rgb,
  trainIdsToLabelIds,
} from "./export.ts";
export { type EvalResult, type EvalSample, evaluate, type EvaluateOptions } from "./evaluate.ts";
export { valSamples, type ValSamplesOptions } from "./samples.ts";
export { evalModeFromConfig, validate } from "./validate.ts";
