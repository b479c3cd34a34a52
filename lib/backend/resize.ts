/**
 * Bilinear resizing with the one gradient every part of the project uses.
 *
 * TensorFlow.js 4.22's own `ResizeBilinearGrad` kernels are wrong for the way this project resizes (PaddleSeg's
 * `align_corners=False`, i.e. `halfPixelCenters: true`): the cpu, wasm and webgpu kernels and tfjs-node's call
 * into libtensorflow all ignore `halfPixelCenters` (they compute the gradient of the legacy, corner-shifted
 * resize), and the cpu kernel also returns a [N, W, H, C] tensor for a [N, H, W, C] image. This module replaces
 * the kernel on every backend ({@link registerResizeBilinearGrad}, called by `initBackend`) by the adjoint of
 * the separable interpolation, dx = M_hᵀ · dy · M_w, as two matmuls; so `tf.image.resizeBilinear` is
 * differentiable everywhere, and the model (HRNet's fuse layers, the logits upsample) and the losses resize
 * through {@link resizeBilinear} with PaddleSeg's conventions.
 */
import { tf } from "./tf.ts";

/**
 * 1-D interpolation matrix M `[outSize, inSize]` of a bilinear resize, so that y = M x, with TensorFlow's
 * coefficients (equal to Paddle `align_mode=0` / PyTorch for align_corners=False, and the align_corners=True
 * convention otherwise): source = (i + 0.5) * in/out - 0.5 (half-pixel centres), i * (in-1)/(out-1) (align
 * corners) or i * in/out (neither: TF.js' default grid); lower = max(floor(src), 0), upper = min(ceil(src),
 * in-1), weights (1 - frac, frac) with frac = src - floor(src).
 */
export function interpolationMatrix(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters = !alignCorners,
): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = !alignCorners && halfPixelCenters ? (i + 0.5) * scale - 0.5 : i * scale;
    const f = Math.floor(src);
    const lower = Math.max(f, 0);
    const upper = Math.min(Math.ceil(src), inSize - 1);
    const frac = src - f;
    m[i * inSize + lower] += 1 - frac;
    m[i * inSize + upper] += frac;
  }
  return m;
}

/**
 * dImages for `y = tf.image.resizeBilinear(images, [oH, oW], alignCorners, halfPixelCenters)`:
 * dy [N, oH, oW, C] -> [N, iH, iW, C], dx = M_hᵀ · dy · M_w per image and channel, as two 2-D matmuls.
 */
export function resizeBilinearGrad(
  dy: tf.Tensor4D,
  inSize: [number, number],
  alignCorners: boolean,
  halfPixelCenters = !alignCorners,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, ho, wo, c] = dy.shape;
    const [h, w] = inSize;
    const my = tf.tensor2d(interpolationMatrix(h, ho, alignCorners, halfPixelCenters), [ho, h]);
    const mx = tf.tensor2d(interpolationMatrix(w, wo, alignCorners, halfPixelCenters), [wo, w]);
    let t = tf.reshape(tf.transpose(dy, [1, 0, 2, 3]), [ho, n * wo * c]);
    t = tf.matMul(my, t, true, false); // [h, n*wo*c]
    t = tf.reshape(tf.transpose(tf.reshape(t, [h, n, wo, c]), [2, 0, 1, 3]), [wo, h * n * c]);
    t = tf.matMul(mx, t, true, false); // [w, h*n*c]
    return tf.transpose(tf.reshape(t, [w, h, n, c]), [2, 1, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * Bilinear resize of `x: [N,H,W,C]` to `size = [outH, outW]`, differentiable on every backend once
 * `initBackend` ran. alignCorners=false: half-pixel centres (Paddle/PyTorch align_corners=False, the REPRO
 * default); alignCorners=true: corner pixels aligned (TORCH mode). Same size: returns `x` itself.
 */
export function resizeBilinear(x: tf.Tensor4D, size: [number, number], alignCorners: boolean): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (h === size[0] && w === size[1]) return x;
  return tf.image.resizeBilinear(x, size, alignCorners, !alignCorners);
}

/**
 * Registers {@link resizeBilinearGrad} as the `ResizeBilinearGrad` kernel of `backendName` (call after that
 * backend's package registered its kernels, since a later registration replaces an earlier one).
 */
export function registerResizeBilinearGrad(backendName: string): void {
  if (tf.getKernel("ResizeBilinearGrad", backendName)) tf.unregisterKernel("ResizeBilinearGrad", backendName);
  tf.registerKernel({
    kernelName: "ResizeBilinearGrad",
    backendName,
    kernelFunc: ({ inputs, attrs }) => {
      const a = attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
      const images = inputs.images as tf.TensorInfo;
      return resizeBilinearGrad(
        asTensor(inputs.dy as tf.TensorInfo) as tf.Tensor4D,
        [images.shape[1], images.shape[2]],
        a.alignCorners,
        a.halfPixelCenters ?? false,
      );
    },
  });
}

function asTensor(info: tf.TensorInfo): tf.Tensor {
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}
