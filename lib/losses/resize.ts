/**
 * Bilinear upsampling of logits with a correct gradient on every backend.
 *
 * TF.js' ResizeBilinearGrad kernels ignore `halfPixelCenters` (cpu, tfjs-node), and the cpu one returns
 * a transposed shape for non-square inputs, so the backward pass here is the adjoint of the separable
 * interpolation, dx = M_hᵀ · dy · M_w, as two matmuls. (lib/models/ops.ts solves the same problem for
 * the model; lib/losses may not import models, hence this small local copy of the idea.)
 */
import { tf } from "../backend/tf.ts";

/**
 * 1-D interpolation matrix [out, in] with TensorFlow's coefficients: src = (i + 0.5)·in/out − 0.5
 * (half-pixel centres, Paddle/PyTorch align_corners=False) or i·(in−1)/(out−1) (align corners); taps
 * max(floor(src), 0) and min(ceil(src), in−1) with weights 1 − frac, frac.
 */
export function bilinearMatrix(inSize: number, outSize: number, alignCorners: boolean): Float32Array {
  const m = new Float32Array(outSize * inSize);
  const scale = alignCorners && outSize > 1 ? (inSize - 1) / (outSize - 1) : inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    const src = alignCorners ? i * scale : (i + 0.5) * scale - 0.5;
    const f = Math.floor(src);
    const frac = src - f;
    m[i * inSize + Math.max(f, 0)] += 1 - frac;
    m[i * inSize + Math.min(Math.ceil(src), inSize - 1)] += frac;
  }
  return m;
}

/** x: [N,h,w,C] → [N,H,W,C]; forward by TF.js' kernel, backward by the matrix adjoint. */
export function resizeBilinearLogits(
  x: tf.Tensor4D,
  size: [number, number],
  alignCorners: boolean,
): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [H, W] = size;
  if (h === H && w === W) return x;
  const f = tf.customGrad((xi) => ({
    value: tf.image.resizeBilinear(xi as tf.Tensor4D, size, alignCorners, !alignCorners),
    gradFunc: (dy) =>
      tf.tidy(() => {
        // transposed matrices built on the host (matMul with transposeA is slow on wasm)
        const mhT = tf.transpose(tf.tensor2d(bilinearMatrix(h, H, alignCorners), [H, h]));
        const mwT = tf.transpose(tf.tensor2d(bilinearMatrix(w, W, alignCorners), [W, w]));
        // rows: [H, N·W·C] → M_hᵀ → [h, N·W·C]
        let t = tf.matMul(mhT, tf.reshape(tf.transpose(dy as tf.Tensor4D, [1, 0, 2, 3]), [H, n * W * c]));
        // columns: [W, h·N·C] → M_wᵀ → [w, h·N·C]
        t = tf.reshape(tf.transpose(tf.reshape(t, [h, n, W, c]), [2, 0, 1, 3]), [W, h * n * c]);
        t = tf.matMul(mwT, t);
        return tf.transpose(tf.reshape(t, [w, h, n, c]), [2, 1, 0, 3]);
      }),
  }));
  return f(x) as tf.Tensor4D;
}
