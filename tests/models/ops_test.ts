/**
 * Layer semantics against independently computed values: bilinear resizes (half-pixel centres and
 * align-corners, values and gradients), 'same' padding (G11), BatchNorm in both modes (Paddle momentum
 * convention, biased variance), Dropout2D and L2 normalisation.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { BatchNorm2d, BnUpdates, Conv2d } from "../../lib/models/layers.ts";
import { dropout2d, l2Normalize } from "../../lib/models/ops.ts";
import { resizeBilinear } from "../../lib/backend/resize.ts";
import { ParamStore } from "../../lib/models/params.ts";
import { HRNet, HRNET_CONFIGS } from "../../lib/models/hrnet.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";

await initBackend();

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.uniform(-1, 1));
}

// ------------------------------------------------------------------------------------------------
// Bilinear: reference = PyTorch's upsample_bilinear2d index/weight formula, written out per pixel.

function srcIndex(
  dst: number,
  inSize: number,
  outSize: number,
  alignCorners: boolean,
): [number, number, number] {
  let src: number;
  if (alignCorners) src = outSize > 1 ? dst * (inSize - 1) / (outSize - 1) : 0;
  else src = Math.max((dst + 0.5) * inSize / outSize - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
  return [i0, i1, src - i0];
}

/** x: NHWC flat; returns NHWC flat [n, oh, ow, c]. */
function refResize(x: Float32Array, shape: number[], oh: number, ow: number, ac: boolean): Float64Array {
  const [n, h, w, c] = shape;
  const out = new Float64Array(n * oh * ow * c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const [y0, y1, ly] = srcIndex(i, h, oh, ac);
      for (let j = 0; j < ow; j++) {
        const [x0, x1, lx] = srcIndex(j, w, ow, ac);
        for (let k = 0; k < c; k++) {
          const at = (y: number, xx: number) => x[((b * h + y) * w + xx) * c + k];
          out[((b * oh + i) * ow + j) * c + k] = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
            ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
        }
      }
    }
  }
  return out;
}

/** Gradient of sum(g * resize(x)) w.r.t. x by scattering the same weights. */
function refResizeGrad(g: Float32Array, shape: number[], oh: number, ow: number, ac: boolean): Float64Array {
  const [n, h, w, c] = shape;
  const dx = new Float64Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const [y0, y1, ly] = srcIndex(i, h, oh, ac);
      for (let j = 0; j < ow; j++) {
        const [x0, x1, lx] = srcIndex(j, w, ow, ac);
        for (let k = 0; k < c; k++) {
          const gv = g[((b * oh + i) * ow + j) * c + k];
          const add = (
            y: number,
            xx: number,
            wgt: number,
          ) => (dx[((b * h + y) * w + xx) * c + k] += gv * wgt);
          add(y0, x0, (1 - ly) * (1 - lx));
          add(y0, x1, (1 - ly) * lx);
          add(y1, x0, ly * (1 - lx));
          add(y1, x1, ly * lx);
        }
      }
    }
  }
  return dx;
}

Deno.test("bilinear x2 upsampling with half-pixel centres: hand-computed values", () => {
  // Paddle/PyTorch align_corners=False: [a, b] -> [a, .75a + .25b, .25a + .75b, b]
  const x = tf.tensor4d([2, 10], [1, 1, 2, 1]);
  const y = resizeBilinear(x, [1, 4], false);
  assertClose(y.dataSync(), [2, 4, 8, 10], 1e-6);
  // align_corners=True: [a, b] -> [a, a + (b-a)/3, a + 2(b-a)/3, b]
  assertClose(resizeBilinear(x, [1, 4], true).dataSync(), [2, 2 + 8 / 3, 2 + 16 / 3, 10], 1e-6);
  // TF.js' default (no half-pixel centres, no corner alignment) is a different grid: [a, (a+b)/2, b, b]
  assertClose(tf.image.resizeBilinear(x, [1, 4]).dataSync(), [2, 6, 10, 10], 1e-6);
  tf.dispose([x, y]);
});

for (const ac of [false, true]) {
  Deno.test(`bilinear resize (align_corners=${ac}): values and gradient vs reference, non-square up/down`, () => {
    for (
      const [shape, oh, ow] of [[[2, 3, 5, 2], 7, 4], [[1, 4, 6, 3], 16, 24], [[1, 9, 7, 1], 4, 3]] as const
    ) {
      const n = shape.reduce((a: number, b: number) => a * b, 1);
      const xv = values(n, 1), gv = values(shape[0] * oh * ow * shape[3], 2);
      const x = tf.tensor4d(xv, shape as unknown as [number, number, number, number]);
      const g = tf.tensor4d(gv, [shape[0], oh, ow, shape[3]]);
      const y = resizeBilinear(x, [oh, ow], ac);
      assertClose(
        y.dataSync(),
        refResize(xv, [...shape], oh, ow, ac),
        1e-5,
        1e-6,
        `values ${shape}->${oh}x${ow}`,
      );
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(resizeBilinear(t as tf.Tensor4D, [oh, ow], ac), g)))(
        x,
      );
      assertEquals(dx.shape, [...shape]);
      assertClose(
        dx.dataSync(),
        refResizeGrad(gv, [...shape], oh, ow, ac),
        1e-5,
        1e-5,
        `grad ${shape}->${oh}x${ow}`,
      );
      tf.dispose([x, g, y, dx]);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// G11: 'same' padding

/** Direct 3x3 conv, NHWC / HWIO, explicit pads, any stride. */
function refConv(
  x: Float32Array,
  [n, h, w, ci]: number[],
  wt: Float32Array,
  co: number,
  stride: number,
  [pt, pb, pl, pr]: number[],
): { out: Float64Array; oh: number; ow: number } {
  const oh = Math.floor((h + pt + pb - 3) / stride) + 1, ow = Math.floor((w + pl + pr - 3) / stride) + 1;
  const out = new Float64Array(n * oh * ow * co);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let o = 0; o < co; o++) {
          let s = 0;
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const yy = i * stride + ky - pt, xx = j * stride + kx - pl;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              for (let c = 0; c < ci; c++) {
                s += x[((b * h + yy) * w + xx) * ci + c] * wt[((ky * 3 + kx) * ci + c) * co + o];
              }
            }
          }
          out[((b * oh + i) * ow + j) * co + o] = s;
        }
      }
    }
  }
  return { out, oh, ow };
}

Deno.test("G11: 3x3 stride-2 'same' conv on 8x8 = VALID conv on input padded (0,1,0,1); symmetric differs", () => {
  const shape = [1, 8, 8, 2];
  const xv = values(128, 3);
  const x = tf.tensor4d(xv, shape as [number, number, number, number]);
  for (const mode of ["same", "symmetric"] as const) {
    const store = new ParamStore();
    const conv = new Conv2d(store, {
      name: "c",
      torchName: "c",
      inChannels: 2,
      outChannels: 3,
      kernelSize: 3,
      stride: 2,
      bias: false,
      padding: mode,
    });
    store.materialise(new Rng(4));
    const wv = conv.weight.value.dataSync() as Float32Array;
    const y = conv.forward(x);
    assertEquals(y.shape, [1, 4, 4, 3]);
    const paddle = refConv(xv, shape, wv, 3, 2, [0, 1, 0, 1]).out;
    const torch = refConv(xv, shape, wv, 3, 2, [1, 1, 1, 1]).out;
    const want = mode === "same" ? paddle : torch;
    assertClose(y.dataSync(), want, 1e-5, 1e-6, `${mode} padding`);
    const diff = Math.max(...paddle.map((v, i) => Math.abs(v - torch[i])));
    assert(diff > 1e-2, "the two conventions give different results");
    tf.dispose(y);
    store.dispose();
  }
  tf.dispose(x);
});

Deno.test("G11: the HRNet stem uses Paddle 'same' padding by default and symmetric padding in TORCH mode", () => {
  const xv = values(1 * 8 * 8 * 3, 5);
  const x = tf.tensor4d(xv, [1, 8, 8, 3]);
  for (const padding of ["same", "symmetric"] as const) {
    const store = new ParamStore();
    const net = new HRNet(store, HRNET_CONFIGS.HRNet_Tiny, { padding, alignCorners: false });
    store.materialise(new Rng(6));
    const conv = net.stem1.conv;
    const y = conv.forward(x);
    const pads = padding === "same" ? [0, 1, 0, 1] : [1, 1, 1, 1];
    const want = refConv(xv, [1, 8, 8, 3], conv.weight.value.dataSync() as Float32Array, 16, 2, pads).out;
    assertClose(y.dataSync(), want, 1e-5, 1e-7, padding);
    tf.dispose(y);
    store.dispose();
  }
  tf.dispose(x);
});

// ------------------------------------------------------------------------------------------------
// BatchNorm

function makeBn(c: number): { store: ParamStore; bn: BatchNorm2d } {
  const store = new ParamStore();
  const bn = new BatchNorm2d(store, { name: "bn", torchName: "bn", channels: c });
  store.materialise(new Rng(0));
  bn.gamma.value.assign(tf.tensor1d(values(c, 11).map((v) => 1 + v / 2)));
  bn.beta.value.assign(tf.tensor1d(values(c, 12)));
  bn.runningMean.value.assign(tf.tensor1d(values(c, 13)));
  bn.runningVar.value.assign(tf.tensor1d(values(c, 14).map((v) => 1.5 + v)));
  return { store, bn };
}

/** float64 BN over N,H,W with given statistics. */
function refBn(
  x: Float32Array,
  c: number,
  mean: number[],
  vr: number[],
  g: ArrayLike<number>,
  b: ArrayLike<number>,
) {
  return Float64Array.from(x, (v, i) => {
    const k = i % c;
    return (v - mean[k]) / Math.sqrt(vr[k] + 1e-5) * g[k] + b[k];
  });
}

function batchStats(x: Float32Array, c: number): { mean: number[]; biased: number[] } {
  const m = x.length / c;
  const mean = Array(c).fill(0), biased = Array(c).fill(0);
  x.forEach((v, i) => (mean[i % c] += v / m));
  x.forEach((v, i) => (biased[i % c] += (v - mean[i % c]) ** 2 / m));
  return { mean, biased };
}

Deno.test("BatchNorm training mode: batch statistics (biased variance), running update 0.9/0.1 on commit", () => {
  const c = 5, shape: [number, number, number, number] = [2, 3, 4, c];
  const xv = values(2 * 3 * 4 * c, 21).map((v, i) => 3 * v + (i % c)); // per-channel offsets
  const { store, bn } = makeBn(c);
  const g = bn.gamma.value.dataSync(), b = bn.beta.value.dataSync();
  const rm0 = Array.from(bn.runningMean.value.dataSync()), rv0 = Array.from(bn.runningVar.value.dataSync());
  const { mean, biased } = batchStats(xv, c);
  const x = tf.tensor4d(xv, shape);
  const updates = new BnUpdates();
  const y = bn.forward(x, { training: true, bnUpdates: updates });
  assertClose(y.dataSync(), refBn(xv, c, mean, biased, g, b), 1e-5, 1e-5, "normalised with batch statistics");
  assertEquals(updates.size, 1);
  assertClose(bn.runningMean.value.dataSync(), rm0, 0, 0, "running stats untouched before commit");
  const before = tf.memory().numTensors;
  assertEquals(updates.commit(), 1);
  assertEquals(tf.memory().numTensors, before - 2, "the queued statistics are freed by commit");
  assertClose(
    bn.runningMean.value.dataSync(),
    rm0.map((r, k) => 0.9 * r + 0.1 * mean[k]),
    1e-5,
    1e-6,
    "mean",
  );
  assertClose(
    bn.runningVar.value.dataSync(),
    rv0.map((r, k) => 0.9 * r + 0.1 * biased[k]),
    1e-5,
    1e-6,
    "variance",
  );

  // eval mode: running statistics, nothing queued
  const rm = Array.from(bn.runningMean.value.dataSync()), rv = Array.from(bn.runningVar.value.dataSync());
  const ye = bn.forward(x, { training: false, bnUpdates: updates });
  assertClose(ye.dataSync(), refBn(xv, c, rm, rv, g, b), 1e-5, 1e-5, "eval mode uses running statistics");
  assertEquals(updates.size, 0);
  tf.dispose([x, y, ye]);
  store.dispose();
});

Deno.test("BnUpdates.commit over many layers (two momenta, one batched update each) equals the per-layer update", () => {
  const store = new ParamStore();
  const chans = [3, 5, 1, 4];
  const bns = chans.map((c, i) =>
    new BatchNorm2d(store, {
      name: `bn${i}`,
      torchName: `bn${i}`,
      channels: c,
      momentum: i === 2 ? 0.99 : 0.9,
    })
  );
  store.materialise(new Rng(0));
  bns.forEach((bn, i) => {
    bn.runningMean.value.assign(tf.tensor1d(values(chans[i], 40 + i)));
    bn.runningVar.value.assign(tf.tensor1d(values(chans[i], 50 + i).map((v) => 1.5 + v)));
  });
  const updates = new BnUpdates();
  const expected = bns.map((bn, i) => {
    const mean = tf.tensor1d(values(chans[i], 60 + i)),
      variance = tf.tensor1d(values(chans[i], 70 + i).map(Math.abs));
    const m = bn.momentum;
    const want = tf.tidy(() =>
      [[bn.runningMean.value, mean], [bn.runningVar.value, variance]].map(([r, b]) =>
        Array.from(tf.add(tf.mul(r, m), tf.mul(b, 1 - m)).dataSync())
      )
    );
    updates.push(bn, mean, variance);
    return want;
  });
  const before = tf.memory().numTensors;
  assertEquals(updates.commit(), bns.length);
  assertEquals(
    tf.memory().numTensors,
    before - 2 * bns.length,
    "the queued statistics are freed, nothing leaks",
  );
  bns.forEach((bn, i) => {
    assertEquals(Array.from(bn.runningMean.value.dataSync()), expected[i][0], `bn${i} running mean`);
    assertEquals(Array.from(bn.runningVar.value.dataSync()), expected[i][1], `bn${i} running variance`);
  });
  store.dispose();
});

Deno.test("BatchNorm training-mode gradients match central finite differences (float64 reference)", () => {
  const c = 3, shape: [number, number, number, number] = [2, 2, 3, c];
  const n = 2 * 2 * 3 * c;
  const xv = values(n, 31), wv = values(n, 32);
  const { store, bn } = makeBn(c);
  const g0 = Array.from(bn.gamma.value.dataSync()), b0 = Array.from(bn.beta.value.dataSync());
  const lossRef = (x: Float32Array | Float64Array, g: number[], b: number[]) => {
    const { mean, biased } = batchStats(Float32Array.from(x), c);
    // recompute in float64 (batchStats is float64 internally; x is float32-representable here)
    return refBn(Float32Array.from(x), c, mean, biased, g, b).reduce((a, v, i) => a + v * wv[i], 0);
  };
  const x = tf.tensor4d(xv, shape), w = tf.tensor4d(wv, shape);
  /** sum(w * BN(x)) in training mode; the queued statistics are dropped (gradients only). */
  const loss = (xi: tf.Tensor4D) =>
    tf.tidy(() => {
      const updates = new BnUpdates();
      const out = tf.sum(tf.mul(bn.forward(xi, { training: true, bnUpdates: updates }), w));
      updates.discard();
      return out as tf.Scalar;
    });
  const dx = tf.grad((xi: tf.Tensor) => loss(xi as tf.Tensor4D))(x);
  const h = 1e-2;
  const numDx = Array.from(xv, (_v, i) => {
    const p = Float64Array.from(xv), m = Float64Array.from(xv);
    p[i] += h;
    m[i] -= h;
    return (lossRef(p, g0, b0) - lossRef(m, g0, b0)) / (2 * h);
  });
  assertClose(dx.dataSync(), numDx, 2e-3, 2e-3, "dL/dx");
  // gamma / beta gradients through the model's variables
  const { value, grads } = tf.variableGrads(() => loss(x), [bn.gamma.value, bn.beta.value]);
  const numG = g0.map((_v, k) => {
    const p = g0.slice(), m = g0.slice();
    p[k] += h;
    m[k] -= h;
    return (lossRef(xv, p, b0) - lossRef(xv, m, b0)) / (2 * h);
  });
  const numB = b0.map((_v, k) => {
    const p = b0.slice(), m = b0.slice();
    p[k] += h;
    m[k] -= h;
    return (lossRef(xv, g0, p) - lossRef(xv, g0, m)) / (2 * h);
  });
  assertClose(grads[bn.gamma.value.name].dataSync(), numG, 2e-3, 2e-3, "dL/dgamma");
  assertClose(grads[bn.beta.value.name].dataSync(), numB, 2e-3, 2e-3, "dL/dbeta");
  tf.dispose([x, w, dx, value, ...Object.values(grads)]);
  store.dispose();
});

// ------------------------------------------------------------------------------------------------
// Dropout2D and L2 normalisation

Deno.test("Dropout2D: whole channels, survivors scaled by 1/(1-p), mask reproducible from the Rng", () => {
  const [n, h, w, c] = [3, 2, 2, 8], p = 0.25;
  const x = tf.ones([n, h, w, c]) as tf.Tensor4D;
  const y1 = dropout2d(x, p, new Rng(7)).arraySync() as number[][][][];
  const y2 = dropout2d(x, p, new Rng(7)).arraySync() as number[][][][];
  assertEquals(y1, y2, "same seed, same mask");
  const expected = new Rng(7);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      const keep = expected.next() >= p;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) assertClose([y1[b][i][j][k]], [keep ? 1 / (1 - p) : 0], 1e-6);
      }
    }
  }
  // over many channels the dropped share is close to p
  const big = tf.ones([4, 1, 1, 2500]) as tf.Tensor4D;
  const dropped = (dropout2d(big, 0.1, new Rng(9)).dataSync() as Float32Array).filter((v) => v === 0).length;
  assert(Math.abs(dropped / 10000 - 0.1) < 0.015, `dropped share ${dropped / 10000}`);
  assertEquals(dropout2d(x, 0, new Rng(1)), x, "p = 0 is the identity");
  tf.dispose([x, big]);
});

Deno.test("L2 normalisation along channels: unit norms, zero vectors stay zero", () => {
  const v = values(2 * 3 * 4 * 6, 41);
  v.fill(0, 0, 6); // first pixel is a zero vector
  const x = tf.tensor4d(v, [2, 3, 4, 6]);
  const y = l2Normalize(x).dataSync();
  for (let p = 0; p < 24; p++) {
    const s = Math.hypot(...y.subarray(p * 6, p * 6 + 6));
    if (p === 0) assertEquals(s, 0);
    else assertClose([s], [1], 1e-6);
    if (p > 0) {
      const norm = Math.hypot(...v.subarray(p * 6, p * 6 + 6));
      assertClose(
        y.subarray(p * 6, p * 6 + 6),
        Array.from(v.subarray(p * 6, p * 6 + 6), (e) => e / norm),
        1e-5,
      );
    }
  }
  tf.dispose(x);
});
