/**
 * A correct `ResizeBilinearGrad` for every backend.
 *
 * TensorFlow.js 4.22's own kernels are wrong for the way this project resizes (PaddleSeg's
 * `align_corners=False`, i.e. `halfPixelCenters: true`): the cpu, wasm and webgpu kernels and tfjs-node's call
 * into libtensorflow all ignore `halfPixelCenters` (they compute the gradient of the legacy, corner-shifted
 * resize), and the cpu kernel also returns a [N, W, H, C] tensor for a [N, H, W, C] image. This module replaces
 * the kernel: on `tensorflow` by libtensorflow's own ResizeBilinearGrad with `half_pixel_centers` passed, on the
 * other backends by two segment sums (one per axis), which mirror the forward interpolation exactly.
 */
import { tf } from "./tf.ts";
import { unsortedSegmentSumOps } from "./wasm_grads.ts";

/** Source rows (lower, upper) and the weight of `upper`, exactly as TF.js's forward ResizeBilinear computes them. */
export function interpolationTaps(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): { lower: Int32Array; upper: Int32Array; frac: Float32Array } {
  const scale = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  const lower = new Int32Array(outSize), upper = new Int32Array(outSize), frac = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = halfPixelCenters ? scale * (o + 0.5) - 0.5 : scale * o;
    const lo = Math.max(0, Math.floor(src));
    lower[o] = lo;
    upper[o] = Math.min(inSize - 1, Math.ceil(src));
    frac[o] = src - lo;
  }
  return { lower, upper, frac };
}

/**
 * dImages for `y = tf.image.resizeBilinear(images, [oH, oW], alignCorners, halfPixelCenters)`.
 * dy: [N, oH, oW, C] -> [N, iH, iW, C] (imagesShape). Separable: rows first, then columns; each axis is
 * Σ over output positions of (1 - frac)·dy into `lower` and frac·dy into `upper`, a segment sum whose ids carry
 * the batch (and row) index so no transpose is needed.
 */
export function resizeBilinearGradOps(
  dy: tf.Tensor4D,
  imagesShape: [number, number, number, number],
  alignCorners: boolean,
  halfPixelCenters: boolean,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [N, iH, iW, C] = imagesShape;
    const [, oH, oW] = dy.shape;
    const g = tf.cast(dy, "float32");
    // rows: [N*oH, oW*C] -> [N*iH, oW*C]
    const rows = axisGrad(tf.reshape(g, [N * oH, oW * C]), N, oH, iH, alignCorners, halfPixelCenters);
    // columns: [N*iH*oW, C] -> [N*iH*iW, C]
    const cols = axisGrad(tf.reshape(rows, [N * iH * oW, C]), N * iH, oW, iW, alignCorners, halfPixelCenters);
    return tf.reshape(cols, [N, iH, iW, C]) as tf.Tensor4D;
  });
}

/** x: [outer*outSize, inner] -> [outer*inSize, inner], the transpose of 1-D linear interpolation per block. */
function axisGrad(
  x: tf.Tensor2D,
  outer: number,
  outSize: number,
  inSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): tf.Tensor {
  if (inSize === outSize && !alignCorners) return x; // identity resize along this axis
  const { lower, upper, frac } = interpolationTaps(inSize, outSize, alignCorners, halfPixelCenters);
  const lo = new Int32Array(outer * outSize), hi = new Int32Array(outer * outSize);
  const wLo = new Float32Array(outer * outSize), wHi = new Float32Array(outer * outSize);
  for (let b = 0; b < outer; b++) {
    for (let o = 0; o < outSize; o++) {
      const k = b * outSize + o;
      lo[k] = b * inSize + lower[o];
      hi[k] = b * inSize + upper[o];
      wLo[k] = 1 - frac[o];
      wHi[k] = frac[o];
    }
  }
  const n = outer * outSize;
  const a = unsortedSegmentSumOps(
    tf.mul(x, tf.tensor2d(wLo, [n, 1])),
    tf.tensor1d(lo, "int32"),
    outer * inSize,
  );
  const b = unsortedSegmentSumOps(
    tf.mul(x, tf.tensor2d(wHi, [n, 1])),
    tf.tensor1d(hi, "int32"),
    outer * inSize,
  );
  return tf.add(a, b);
}

interface NodeBackendLike {
  binding: { TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
}

/**
 * Registers the corrected kernel for `backendName` (call after that backend's package registered its kernels,
 * since a later registration replaces an earlier one).
 */
export function registerResizeBilinearGrad(backendName: string): void {
  if (tf.getKernel("ResizeBilinearGrad", backendName)) tf.unregisterKernel("ResizeBilinearGrad", backendName);
  const kernelFunc: tf.KernelFunc = backendName === "tensorflow"
    ? ({ inputs, attrs, backend }) => {
      const b = backend as unknown as NodeBackendLike;
      const a = attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
      const dy = inputs.dy as tf.TensorInfo, images = inputs.images as tf.TensorInfo;
      return b.executeSingleOutput("ResizeBilinearGrad", [
        { name: "T", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
        { name: "align_corners", type: b.binding.TF_ATTR_BOOL, value: a.alignCorners },
        { name: "half_pixel_centers", type: b.binding.TF_ATTR_BOOL, value: a.halfPixelCenters ?? false },
      ], [dy, images]); // dy is float32: it is the gradient of a float resize
    }
    : ({ inputs, attrs }) => {
      const a = attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
      const images = inputs.images as tf.TensorInfo;
      return resizeBilinearGradOps(
        asTensor(inputs.dy as tf.TensorInfo) as tf.Tensor4D,
        images.shape as [number, number, number, number],
        a.alignCorners,
        a.halfPixelCenters ?? false,
      );
    };
  tf.registerKernel({ kernelName: "ResizeBilinearGrad", backendName, kernelFunc });
}

function asTensor(info: tf.TensorInfo): tf.Tensor {
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}
