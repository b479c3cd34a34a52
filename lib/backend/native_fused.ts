/**
 * Fused training kernels for the native `tensorflow` backend, chosen by the train-step profile (bench/train.ts):
 *
 * - `PcFusedBatchNormTrain` / `PcFusedBatchNormGrad`: libtensorflow's FusedBatchNormV3 (is_training) and
 *   FusedBatchNormGradV3. Batch-statistics BatchNorm in one kernel each way, instead of ~8 element-wise ops
 *   forward and ~10 backward; the backward keeps the BN input (as PyTorch does) rather than a normalised copy.
 *   Used by `batchNormTrain` (lib/models/ops.ts) when the active backend has the kernel.
 * - `PcReluGrad`: libtensorflow's ReluGrad. TF.js' Relu gradient is dy * step(x), and tfjs-node builds Step
 *   from six full-size ops (isNaN, greater, ones, fill, where, select).
 *
 * Also, for every backend, the Relu gradient is re-registered to save the Relu OUTPUT rather than its input
 * (y > 0 exactly where x > 0, so the gradient is the same): the output is usually kept anyway as the next
 * conv's input, so the BN output no longer has to stay alive until the backward pass.
 */
import { tf } from "./tf.ts";

export const FUSED_BN_TRAIN = "PcFusedBatchNormTrain";
export const FUSED_BN_GRAD = "PcFusedBatchNormGrad";
export const RELU_GRAD = "PcReluGrad";

interface NodeBackendLike {
  binding: {
    TF_ATTR_FLOAT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_TYPE: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: tf.TensorInfo[], n: number): tf.Tensor[];
}

function bnAttrs(b: NodeBackendLike, epsilon: number): unknown[] {
  return [
    { name: "T", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: "U", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: "epsilon", type: b.binding.TF_ATTR_FLOAT, value: epsilon },
    { name: "data_format", type: b.binding.TF_ATTR_STRING, value: "NHWC" },
    { name: "is_training", type: b.binding.TF_ATTR_BOOL, value: true },
  ];
}

let kernelsDone = false;
let gradientsDone = false;

/** Registers the fused kernels for `tensorflow` (call once tfjs-node's backend is registered). */
export function registerNativeFusedKernels(): void {
  if (kernelsDone || !tf.getKernel("Conv2D", "tensorflow")) return;
  tf.registerKernel({
    kernelName: FUSED_BN_TRAIN,
    backendName: "tensorflow",
    // inputs x [N,H,W,C], scale [C], offset [C]; outputs y, batch mean, batch variance (Bessel-corrected, as
    // TensorFlow reports it), and the three reserve spaces the gradient needs
    kernelFunc: (args) => {
      const b = args.backend as unknown as NodeBackendLike;
      const { x, scale, offset } = args.inputs as Record<string, tf.TensorInfo>;
      const epsilon = (args.attrs as { epsilon: number }).epsilon;
      const empty = tf.tensor1d([], "float32");
      try {
        return b.executeMultipleOutputs(
          "FusedBatchNormV3",
          [...bnAttrs(b, epsilon), {
            name: "exponential_avg_factor",
            type: b.binding.TF_ATTR_FLOAT,
            value: 1,
          }],
          [x, scale, offset, empty, empty],
          6,
        );
      } finally {
        empty.dispose();
      }
    },
  });
  tf.registerKernel({
    kernelName: FUSED_BN_GRAD,
    backendName: "tensorflow",
    // inputs dy, x, scale and the forward's reserve spaces r1..r3; outputs dx, dscale, doffset
    kernelFunc: (args) => {
      const b = args.backend as unknown as NodeBackendLike;
      const { dy, x, scale, r1, r2, r3 } = args.inputs as Record<string, tf.TensorInfo>;
      const epsilon = (args.attrs as { epsilon: number }).epsilon;
      const outs = b.executeMultipleOutputs("FusedBatchNormGradV3", bnAttrs(b, epsilon), [
        dy,
        x,
        scale,
        r1,
        r2,
        r3,
      ], 5);
      tf.dispose(outs.slice(3));
      return outs.slice(0, 3);
    },
  });
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: "tensorflow",
    kernelFunc: (args) => {
      const b = args.backend as unknown as NodeBackendLike;
      const { dy, y } = args.inputs as Record<string, tf.TensorInfo>;
      return b.executeSingleOutput(
        "ReluGrad",
        [{ name: "T", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }],
        [dy, y],
      );
    },
  });
  kernelsDone = true;
}

/** Whether the active backend runs `batchNormTrain` as one fused kernel. */
export function hasFusedBatchNorm(): boolean {
  return tf.getKernel(FUSED_BN_TRAIN, tf.getBackend()) !== undefined;
}

/** Registers the gradients of the fused kernels and the output-saving Relu gradient (idempotent). */
export function registerFusedGradients(): void {
  if (gradientsDone) return;
  tf.registerGradient({
    kernelName: FUSED_BN_TRAIN,
    inputsToSave: ["x", "scale"],
    outputsToSave: [false, false, false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, scale, r1, r2, r3] = saved;
      const [dx, dscale, doffset] = tf.engine().runKernel(
        FUSED_BN_GRAD,
        { dy, x, scale, r1, r2, r3 },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      return { x: () => dx, scale: () => dscale, offset: () => doffset };
    },
  });
  tf.registerGradient({
    kernelName: "Relu",
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [y] = saved;
      const g = dy as tf.Tensor;
      if (tf.getKernel(RELU_GRAD, tf.getBackend())) {
        return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: g, y }) as tf.Tensor };
      }
      return { x: () => tf.mul(g, tf.cast(tf.step(y), "float32")) };
    },
  });
  gradientsDone = true;
}
