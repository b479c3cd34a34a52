/**
 * lib/models: HRNet backbones, the contrast segmentation model, weight import/export.
 * Knows nothing about losses, data files or training loops.
 *
 *   const model = buildModel(modelOptions(config.model), rng.fork("init"));  // complete options: lib/run/options.ts
 *   await loadPretrained(model, "hrnet_w48_ssld.pdparams", { scope: "backbone" });
 *   const { value, grads } = model.variableGrads(() => {                              // x: [N,H,W,3]
 *     const { logitsUp, logits4, embed } = model.forward(x, { training: true, rng, recompute: true });
 *     return loss(logitsUp, logits4, embed);
 *   });                                                      // grads keyed by PaddleSeg parameter name
 *   optimizer.step(model.trainableWeights(), grads, lr);
 *   model.commitBnUpdates();                                 // BN running stats (momentum 0.9, Paddle)
 *   const logits = model.predict(x);                         // eval mode, no projection head
 */
export {
  buildModel,
  countParams,
  type ForwardOptions,
  type ModelOptions,
  type ModelType,
  type ParamCounts,
  type ParamGroup,
  paramGroup,
  SegModel,
  type SegOutputs,
} from "./contrast.ts";
export { BACKBONE_NAMES, type BackboneName, HRNET_CONFIGS, type HRNetConfig } from "./hrnet.ts";
export { BnUpdates, type PaddingMode, type PendingBn } from "./layers.ts";
export { dropout2d, l2Normalize, recomputeInBackward } from "./ops.ts";
export { type ParamSpec, ParamStore } from "./params.ts";
export { formatCounts, summarize } from "./summary.ts";
export {
  applyWeights,
  exportWeights,
  formatLoadReport,
  type LoadOptions,
  loadPretrained,
  loadPretrainedBytes,
  type LoadReport,
  loadWeights,
  paddleStateDict,
  savePdparams,
  saveWeights,
  WEIGHTS_FORMAT,
} from "./weights.ts";
export { encodePdparams } from "./io/pdparams.ts";
export { parseWeightFile, readWeightBytes, readWeightFile, type WeightFile } from "./io/read.ts";
export { PickleError, UnsafePickleError } from "./io/pickle.ts";
export { encodeSafetensors, readSafetensors, writeSafetensors } from "./io/safetensors.ts";
export type { DType, RawTensor } from "./io/tensor.ts";
export { WeightFileError } from "./io/tensor.ts";
