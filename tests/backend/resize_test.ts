/**
 * ResizeBilinearGrad (replaced on every backend by lib/backend/resize.ts) is the exact transpose of the
 * forward resize, for halfPixelCenters (PaddleSeg's align_corners=False) and alignCorners, up and down.
 * Reference: the forward resize written as dense interpolation matrices y = Ry · x · Rxᵀ (checked against
 * tf.image.resizeBilinear itself), whose gradient is Ryᵀ · dy · Rx.
 */
import { tf } from "../../lib/backend/tf.ts";
import { type BackendName, initBackend, probeBackend } from "../../lib/backend/mod.ts";
import { assertSameOutputs, pattern, runOn } from "./_compare.ts";

const prev = tf.getBackend();
const backends: BackendName[] = [];
for (const b of ["tensorflow", "wasm", "cpu"] as const) {
  if (!(await probeBackend(b)).available) {
    console.log(`resize_test: backend ${b} not available here, not tested`);
    continue;
  }
  try {
    await initBackend(b);
    backends.push(b);
  } catch (e) {
    console.log(`resize_test: backend ${b} skipped: ${(e as Error).message}`);
  }
}
if (prev) await tf.setBackend(prev);

/** Source rows (lower, upper) and the weight of `upper`, as TF.js's forward ResizeBilinear computes them. */
function interpolationTaps(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
) {
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

/** [out, in] matrix of 1-D bilinear interpolation, built from the same taps TF.js's forward uses */
function interpMatrix(inSize: number, outSize: number, align: boolean, half: boolean): tf.Tensor2D {
  const { lower, upper, frac } = interpolationTaps(inSize, outSize, align, half);
  const m = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    m[o * inSize + lower[o]] += 1 - frac[o];
    m[o * inSize + upper[o]] += frac[o];
  }
  return tf.tensor2d(m, [outSize, inSize]);
}

/** y[n,:,:,c] = Ry · x[n,:,:,c] · Rxᵀ, via matMuls over a channels-first layout */
function denseResize(x: tf.Tensor4D, Ry: tf.Tensor2D, Rx: tf.Tensor2D): tf.Tensor4D {
  const [N, H, W, C] = x.shape;
  const xc = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [N * C, H, W]);
  const a = tf.matMul(tf.broadcastTo(Ry, [N * C, ...Ry.shape]) as tf.Tensor3D, xc as tf.Tensor3D);
  const b = tf.matMul(a, tf.broadcastTo(Rx, [N * C, ...Rx.shape]) as tf.Tensor3D, false, true);
  return tf.transpose(tf.reshape(b, [N, C, Ry.shape[0], Rx.shape[0]]), [0, 2, 3, 1]) as tf.Tensor4D;
}

const modes = [
  { align: false, half: true },
  { align: true, half: false },
  { align: false, half: false },
];
const sizes: [[number, number], [number, number]][] = [
  [[5, 7], [11, 16]], // up, non-square (tfjs' cpu kernel returned [N,W,H,C] here)
  [[12, 10], [5, 4]], // down
  [[4, 6], [16, 24]], // x4, as the logits upsample
  [[6, 6], [6, 6]], // identity size
  [[1, 5], [3, 9]], // single row
];

for (const backend of backends) {
  for (const m of modes) {
    Deno.test(`${backend}: resizeBilinear forward and gradient (alignCorners ${m.align}, halfPixelCenters ${m.half})`, async () => {
      for (const [from, to] of sizes) {
        const x = pattern([2, from[0], from[1], 3], 3), dy = pattern([2, to[0], to[1], 3], 4);
        const got = await runOn(backend, [x, dy], (xt, dyt) => {
          const g = tf.grads((a: tf.Tensor) =>
            tf.image.resizeBilinear(a as tf.Tensor4D, to, m.align, m.half)
          );
          return [tf.image.resizeBilinear(xt as tf.Tensor4D, to, m.align, m.half), ...g([xt], dyt)];
        });
        const ref = await runOn("cpu", [x, dy], (xt, dyt) => {
          const Ry = interpMatrix(from[0], to[0], m.align, m.half),
            Rx = interpMatrix(from[1], to[1], m.align, m.half);
          const y = denseResize(xt as tf.Tensor4D, Ry, Rx);
          const dx = denseResize(dyt as tf.Tensor4D, tf.transpose(Ry), tf.transpose(Rx));
          return [y, dx];
        });
        assertSameOutputs(got, ref, 2e-6, `${backend} ${from} -> ${to}`);
      }
    });
  }
}
