/**
 * Makes the `wasm` backend able to train: registers the kernels that TensorFlow.js gradients need and
 * `@tensorflow/tfjs-backend-wasm@4.22.0` lacks (or implements too slowly), built from kernels it has.
 *
 * - `Conv2DBackpropFilter` (missing): per filter tap, one XNNPACK matMul `xᵀ[Ci, P] · dyShifted[P, Co]`.
 *   Strides are handled by a phase (space-to-batch) split of the padded input done with one reshape +
 *   transpose, and the tap shift is a zero `pad` of `dy` on the phase grid; both run in C, so no slow
 *   JS-side slicing touches the big tensors.
 * - `Conv2DBackpropInput` (replaced: the wasm one is a scalar C loop, ~0.7 GFLOP/s): stride 1 is one XNNPACK
 *   conv2d of `dy` with the flipped, transposed filter; stride s > 1 is s² small convs, one per output phase,
 *   interleaved with stack + reshape.
 * - `UnsortedSegmentSum` (missing; the gradient of gather): ScatterNd, which sums duplicate indices.
 * - `Conv2D`, `FusedConv2D` and the depthwise pair: 'same' padding is turned into explicit pads first (wasm's
 *   XNNPACK 'same' flag gives wrong results when the stride exceeds the kernel size, e.g. 1x1 stride 2).
 * - Kernels no model here uses (`Einsum`, depthwise-conv backprops, ragged ops) are borrowed from the `cpu`
 *   backend: inputs are copied there, the cpu kernel runs, outputs are copied back. Correct, not fast.
 *
 * Dilations are always 1 in these kernels: TF.js refuses gradients of dilated convolutions.
 * Checked against `cpu` in tests/backend/wasm_grads_test.ts.
 */
import { tf } from "./tf.ts";

type TensorInfo = tf.TensorInfo;
type KernelFunc = tf.KernelFunc;
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];
type PadAttr = "same" | "valid" | number | ExplicitPadding;
type Rounding = "floor" | "round" | "ceil" | undefined;

/** Kernels this module registers for `wasm`, with how; filled by {@link registerWasmGradients}. */
export interface WasmKernelPatch {
  kernel: string;
  how: "ops" | "replaced-with-ops" | "borrowed-from-cpu" | "same-padding-fix";
}

/** Kernels that cannot be borrowed: complex or string dtypes (the wasm backend has neither), or canvas. */
const NOT_BORROWABLE = new Set([
  "Complex",
  "ComplexAbs",
  "Real",
  "Imag",
  "FFT",
  "IFFT",
  "Draw",
  "StaticRegexReplace",
]);

let patched: WasmKernelPatch[] | undefined;

/** Wraps a kernel input (a Tensor in practice, a bare TensorInfo in principle) as a Tensor for ops. */
function asTensor(info: TensorInfo): tf.Tensor {
  return info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info);
}

function checkNhwc(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC" && dataFormat !== "channelsLast") {
    throw new Error(`${kernel} on wasm: only NHWC data format is supported (got ${String(dataFormat)})`);
  }
}

function pair(v: number | [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : v;
}

/**
 * dW for `y = conv2d(x, w, strides, pad)`, dilation 1.
 * x: [N,H,W,Ci], dy: [N,Ho,Wo,Co] -> [KH,KW,Ci,Co].
 *
 * Let xp be x zero-padded and split into its stride phases xp[a::s, b::s] (each [N,Hq,Wq,Ci], taken by a
 * one-hot depthwise conv so it runs in XNNPACK), flattened to rows q = (n,u,v). Tap (kh,kw) reads phase
 * (kh%s, kw%s) at row q + off with off = (kh//s)*Wq + kw//s, so
 *   dW[kh,kw]ᵀ = dyTᵀ-shifted · phase:  [Co, Lq] x [Lq, Ci],
 * where dyT is dy on the Hq x Wq grid (zeros outside Ho x Wo), transposed, and moved right by `off` columns with
 * a zero pad. The phase matrix is the same for all its taps, so XNNPACK packs it once (it caches the packed
 * right operand per tensor), and the per-tap work is one pad and one matMul.
 */
export function conv2dBackpropFilterOps(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: PadAttr,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
    const [N, H, W, Ci] = x.shape;
    const [KH, KW, , Co] = filterShape;
    const { strideHeight: sH, strideWidth: sW, outHeight: Ho, outWidth: Wo } = info;
    const { top, left } = info.padInfo;
    if (dy.shape[1] !== Ho || dy.shape[2] !== Wo || dy.shape[3] !== Co || dy.shape[0] !== N) {
      throw new Error(
        `Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the convolution output [${N},${Ho},${Wo},${Co}]`,
      );
    }
    // phase grid: large enough for every tap offset ((KH-1)//s) beyond the Ho output rows
    const Hq = Ho + Math.floor((KH - 1) / sH), Wq = Wo + Math.floor((KW - 1) / sW);
    const Lq = N * Hq * Wq;
    const offMax = Math.floor((KH - 1) / sH) * Wq + Math.floor((KW - 1) / sW);
    const xp = padOrCrop(x, top, sH * Hq - top - H, left, sW * Wq - left - W);
    const phases = new Map<number, tf.Tensor2D>();
    const phase = (a: number, b: number): tf.Tensor2D => {
      let t = phases.get(a * sW + b);
      if (!t) {
        const p = sH === 1 && sW === 1 ? xp : tf.depthwiseConv2d(xp, oneHot(a, b, Ci), [sH, sW], "valid");
        t = tf.pad(tf.reshape(p, [Lq, Ci]), [[0, offMax], [0, 0]]) as tf.Tensor2D;
        phases.set(a * sW + b, t);
      }
      return t;
    };
    const dyq = Hq === Ho && Wq === Wo ? dy : tf.pad(dy, [[0, 0], [0, Hq - Ho], [0, Wq - Wo], [0, 0]]);
    const dyT = tf.transpose(tf.reshape(dyq, [Lq, Co])) as tf.Tensor2D;
    const taps: tf.Tensor2D[] = [];
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const off = Math.floor(kh / sH) * Wq + Math.floor(kw / sW);
        const a = offMax === 0 ? dyT : tf.pad(dyT, [[0, 0], [off, offMax - off]]) as tf.Tensor2D;
        taps.push(tf.matMul(a, phase(kh % sH, kw % sW)));
      }
    }
    const all = taps.length === 1 ? tf.expandDims(taps[0]) : tf.stack(taps); // [KH*KW, Co, Ci]
    return tf.reshape(tf.transpose(all, [0, 2, 1]), [KH, KW, Ci, Co]) as tf.Tensor4D;
  });
}

/** Depthwise filter [a+1, b+1, C, 1] that picks element (a, b) of each window: a strided phase extractor. */
function oneHot(a: number, b: number, C: number): tf.Tensor4D {
  return tf.pad(tf.ones([1, 1, C, 1]), [[a, 0], [b, 0], [0, 0], [0, 0]]) as tf.Tensor4D;
}

/**
 * dx for `y = conv2d(x, w, strides, pad)`, dilation 1.
 * dy: [N,Ho,Wo,Co], filter: [KH,KW,Ci,Co] -> [N,H,W,Ci] (inputShape).
 */
export function conv2dBackpropInputOps(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number | [number, number],
  pad: PadAttr,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      filter.shape,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const [N, H, W, Ci] = inputShape;
    const [KH, KW, , Co] = filter.shape;
    const { strideHeight: sH, strideWidth: sW, outHeight: Ho, outWidth: Wo } = info;
    const { top, left } = info.padInfo;
    if (dy.shape[1] !== Ho || dy.shape[2] !== Wo || dy.shape[3] !== Co || dy.shape[0] !== N) {
      throw new Error(
        `Conv2DBackpropInput: dy shape [${dy.shape}] does not match the convolution output [${N},${Ho},${Wo},${Co}]`,
      );
    }
    // x is split into stride phases x[c::s, d::s] on a Hx x Wx grid. Phase (c, d) sits at padded position
    // s*u + c + top = s*(u + δ) + a with a = (c+top) % s, δ = (c+top) // s, and receives the taps kh = a + s*m:
    //   dxPhase[u] = Σ_m dy[u + δ - m] · w[a + s*m]ᵀ,
    // one stride-1 conv of dy with the flipped taps, its padding chosen so output row 0 is u = 0.
    const Hx = Math.ceil(H / sH), Wx = Math.ceil(W / sW);
    const rowPlan = phasePlan(sH, KH, top, Hx, Ho), colPlan = phasePlan(sW, KW, left, Wx, Wo);
    if (!rowPlan || !colPlan) return conv2dBackpropInputCropping(dy, filter, info, inputShape);
    const rows = filterRowsSwapped(filter);
    const parts: tf.Tensor4D[] = [];
    for (const r of rowPlan) {
      for (const c of colPlan) {
        if (r.taps === 0 || c.taps === 0) {
          parts.push(tf.zeros([N, Hx, Wx, Ci]));
          continue;
        }
        const k = flippedTaps(rows, KH, KW, r.a, c.a, sH, sW);
        parts.push(
          tf.conv2d(dy, k, 1, [[0, 0], [r.padBefore, r.padAfter], [c.padBefore, c.padAfter], [0, 0]]),
        );
      }
    }
    const dx = interleave(parts, sH, sW, N, Hx, Wx, Ci);
    return Hx * sH === H && Wx * sW === W ? dx : tf.slice(dx, [0, 0, 0, 0], [N, H, W, Ci]);
  });
}

interface PhasePlan {
  a: number;
  taps: number;
  padBefore: number;
  padAfter: number;
}

/** Per x-phase c = 0..s-1 along one axis: padded phase, tap count and conv padding; undefined if a pad < 0. */
function phasePlan(s: number, K: number, padStart: number, nx: number, no: number): PhasePlan[] | undefined {
  const plan: PhasePlan[] = [];
  for (let c = 0; c < s; c++) {
    const a = (c + padStart) % s, delta = Math.floor((c + padStart) / s);
    const taps = a < K ? Math.ceil((K - a) / s) : 0;
    const padBefore = taps - 1 - delta, padAfter = nx - no + delta;
    if (taps > 0 && (padBefore < 0 || padAfter < 0)) return undefined;
    plan.push({ a, taps, padBefore, padAfter });
  }
  return plan;
}

/**
 * The filter with in/out channels swapped, taps as rows: [KH*KW, Co, Ci]. (wasm's Reverse and StridedSlice run in
 * JavaScript and are slow on big filters; a rank-3 Transpose and a Gather of rows run in C.)
 */
function filterRowsSwapped(filter: tf.Tensor4D): tf.Tensor3D {
  const [KH, KW, Ci, Co] = filter.shape;
  return tf.transpose(tf.reshape(filter, [KH * KW, Ci, Co]), [0, 2, 1]) as tf.Tensor3D;
}

/** Taps w[a::sH, b::sW] spatially flipped, channels swapped: [Mh, Mw, Co, Ci], from {@link filterRowsSwapped}. */
function flippedTaps(
  rows: tf.Tensor3D,
  KH: number,
  KW: number,
  a: number,
  b: number,
  sH: number,
  sW: number,
) {
  const kh: number[] = [], kw: number[] = [];
  for (let i = a; i < KH; i += sH) kh.push(i);
  for (let j = b; j < KW; j += sW) kw.push(j);
  const idx: number[] = [];
  for (const i of kh.reverse()) for (const j of [...kw].reverse()) idx.push(i * KW + j);
  const [, Co, Ci] = rows.shape;
  return tf.reshape(tf.gather(rows, tf.tensor1d(idx, "int32")), [
    kh.length,
    kw.length,
    Co,
    Ci,
  ]) as tf.Tensor4D;
}

/** parts[c*sW + d]: [N,Hx,Wx,C] phase (c, d) -> [N, Hx*sH, Wx*sW, C] with out[s*u+c, s*v+d] = part[u, v]. */
function interleave(
  parts: tf.Tensor4D[],
  sH: number,
  sW: number,
  N: number,
  Hx: number,
  Wx: number,
  C: number,
) {
  // (wasm's DepthToSpace runs in JavaScript and is much slower than these stacks)
  if (parts.length === 1) return parts[0];
  const rows: tf.Tensor[] = [];
  for (let c = 0; c < sH; c++) {
    const cols = parts.slice(c * sW, (c + 1) * sW);
    rows.push(sW === 1 ? cols[0] : tf.reshape(tf.stack(cols, 3), [N, Hx, Wx * sW, C]));
  }
  return (sH === 1 ? rows[0] : tf.reshape(tf.stack(rows, 2), [N, Hx * sH, Wx * sW, C])) as tf.Tensor4D;
}

/**
 * General dx (any padding): one conv per padded phase on a grid covering the padded input, interleaved, then
 * cropped to x's window. Used only when {@link phasePlan} would need a negative pad.
 */
function conv2dBackpropInputCropping(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  inputShape: [number, number, number, number],
): tf.Tensor4D {
  const [N, H, W, Ci] = inputShape;
  const [KH, KW] = filter.shape;
  const { strideHeight: sH, strideWidth: sW, outHeight: Ho, outWidth: Wo } = info;
  const { top, left } = info.padInfo;
  const Hq = Math.max(Ho + Math.floor((KH - 1) / sH), Math.ceil((top + H) / sH));
  const Wq = Math.max(Wo + Math.floor((KW - 1) / sW), Math.ceil((left + W) / sW));
  const rows = filterRowsSwapped(filter);
  const parts: tf.Tensor4D[] = [];
  for (let a = 0; a < sH; a++) {
    const Mh = a < KH ? Math.ceil((KH - a) / sH) : 0;
    for (let b = 0; b < sW; b++) {
      const Mw = b < KW ? Math.ceil((KW - b) / sW) : 0;
      if (Mh === 0 || Mw === 0) {
        parts.push(tf.zeros([N, Hq, Wq, Ci]));
        continue;
      }
      const k = flippedTaps(rows, KH, KW, a, b, sH, sW);
      parts.push(tf.conv2d(dy, k, 1, [[0, 0], [Mh - 1, Hq - Ho], [Mw - 1, Wq - Wo], [0, 0]]));
    }
  }
  const dxp = interleave(parts, sH, sW, N, Hq, Wq, Ci);
  return tf.slice(dxp, [0, top, left, 0], [N, H, W, Ci]);
}

/** Zero-pads (positive amounts) or crops (negative amounts) the spatial dims of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let t = x;
  if (bottom < 0 || right < 0) {
    const [N, H, W, C] = t.shape;
    t = tf.slice(t, [0, 0, 0, 0], [N, H + Math.min(bottom, 0), W + Math.min(right, 0), C]);
  }
  const b = Math.max(bottom, 0), r = Math.max(right, 0);
  if (top === 0 && b === 0 && left === 0 && r === 0) return t;
  return tf.pad(t, [[0, 0], [top, b], [left, r], [0, 0]]);
}

/**
 * out[s, ...] = Σ_{i: ids[i] = s} x[i, ...] for s in [0, numSegments); ids outside that range are dropped
 * (as in TensorFlow). x: [n, ...rest], segmentIds: [n] int32 -> [numSegments, ...rest].
 */
export function unsortedSegmentSumOps(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  return tf.tidy(() => {
    if (segmentIds.rank !== 1 || segmentIds.shape[0] !== x.shape[0]) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds must be 1-D with x.shape[0] = ${
          x.shape[0]
        } entries (got [${segmentIds.shape}])`,
      );
    }
    const ids = tf.cast(segmentIds, "int32");
    const valid = tf.logicalAnd(tf.greaterEqual(ids, 0), tf.less(ids, numSegments));
    const safeIds = tf.where(valid, ids, tf.zerosLike(ids));
    const mask = tf.reshape(valid, [x.shape[0], ...x.shape.slice(1).map(() => 1)]);
    const updates = tf.where(tf.broadcastTo(mask, x.shape), x, tf.zerosLike(x));
    return tf.scatterND(tf.reshape(safeIds, [-1, 1]), updates, [numSegments, ...x.shape.slice(1)]);
  });
}

/** Runs a cpu kernel on copies of the inputs and copies the outputs back into `backend`. */
function borrowFromCpu(kernelName: string): KernelFunc {
  const cpuKernel = tf.getKernel(kernelName, "cpu");
  return ({ inputs, attrs, backend: b }) => {
    const backend = b as tf.KernelBackend;
    const cpu = tf.findBackend("cpu");
    if (!cpu || !cpuKernel) {
      throw new Error(`${kernelName} on wasm: needs the cpu backend, which is not registered`);
    }
    const moved: Record<string, TensorInfo> = {};
    const temps: TensorInfo[] = [];
    for (const [k, v] of Object.entries(inputs)) {
      if (!v) continue;
      const vals = backend.readSync(v.dataId) as tf.backend_util.BackendValues;
      const info = { dataId: cpu.write(vals, v.shape, v.dtype), shape: v.shape, dtype: v.dtype };
      moved[k] = info;
      temps.push(info);
    }
    const out = cpuKernel.kernelFunc({ inputs: moved, attrs, backend: cpu });
    const outs = Array.isArray(out) ? out : [out];
    const back = outs.map((o) => {
      const vals = cpu.readSync(o.dataId) as tf.backend_util.BackendValues;
      return { dataId: backend.write(vals, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
    });
    for (const t of [...temps, ...outs]) cpu.disposeData(t.dataId, true);
    return Array.isArray(out) ? back : back[0];
  };
}

function reregister(kernelName: string, kernelFunc: KernelFunc, keep?: tf.KernelConfig): void {
  if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
  // wasm kernels bind their C function in setupFunc, which the engine calls when the backend initialises
  tf.registerKernel({
    kernelName,
    backendName: "wasm",
    kernelFunc,
    setupFunc: keep?.setupFunc,
    disposeFunc: keep?.disposeFunc,
  });
}

/**
 * Registers the kernels above for `wasm` (idempotent). Call after `@tensorflow/tfjs-backend-wasm` is imported;
 * returns what was patched, for `deno task info` and the tests.
 */
export function registerWasmGradients(): WasmKernelPatch[] {
  if (patched) return patched;
  const list: WasmKernelPatch[] = [];
  const has = (k: string) => tf.getKernel(k, "wasm") !== undefined;

  const filterHad = has("Conv2DBackpropFilter");
  reregister("Conv2DBackpropFilter", ({ inputs, attrs }) => {
    const a = attrs as unknown as {
      strides: number | [number, number];
      pad: PadAttr;
      dataFormat?: string;
      dimRoundingMode?: Rounding;
      filterShape: [number, number, number, number];
    };
    checkNhwc("Conv2DBackpropFilter", a.dataFormat);
    return conv2dBackpropFilterOps(
      asTensor(inputs.x as TensorInfo) as tf.Tensor4D,
      asTensor(inputs.dy as TensorInfo) as tf.Tensor4D,
      a.filterShape,
      a.strides,
      a.pad,
      a.dimRoundingMode,
    );
  });
  list.push({ kernel: "Conv2DBackpropFilter", how: filterHad ? "replaced-with-ops" : "ops" });

  const inputHad = has("Conv2DBackpropInput");
  reregister("Conv2DBackpropInput", ({ inputs, attrs }) => {
    const a = attrs as unknown as {
      strides: number | [number, number];
      pad: PadAttr;
      dataFormat?: string;
      dimRoundingMode?: Rounding;
      inputShape: [number, number, number, number];
    };
    checkNhwc("Conv2DBackpropInput", a.dataFormat);
    return conv2dBackpropInputOps(
      asTensor(inputs.dy as TensorInfo) as tf.Tensor4D,
      asTensor(inputs.filter as TensorInfo) as tf.Tensor4D,
      a.inputShape,
      pair(a.strides),
      a.pad,
      a.dimRoundingMode,
    );
  });
  list.push({ kernel: "Conv2DBackpropInput", how: inputHad ? "replaced-with-ops" : "ops" });

  if (!has("UnsortedSegmentSum")) {
    reregister("UnsortedSegmentSum", ({ inputs, attrs }) =>
      unsortedSegmentSumOps(
        asTensor(inputs.x as TensorInfo),
        asTensor(inputs.segmentIds as TensorInfo),
        (attrs as unknown as { numSegments: number }).numSegments,
      ));
    list.push({ kernel: "UnsortedSegmentSum", how: "ops" });
  }

  // wasm's convolutions pass TF 'same' padding to XNNPACK as a flag, which is wrong when stride > kernel size
  // (e.g. 1x1 stride 2): hand them the explicit padding TF.js computes instead.
  for (const k of ["Conv2D", "FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2D"]) {
    const orig = tf.getKernel(k, "wasm");
    if (!orig) continue;
    const depthwise = k.includes("Depthwise");
    reregister(k, (args) => {
      const a = args.attrs as unknown as {
        pad: PadAttr;
        strides: number | [number, number];
        dilations?: number | [number, number];
        dimRoundingMode?: Rounding;
      };
      if (a.pad !== "same") return orig.kernelFunc(args);
      const x = args.inputs.x as TensorInfo, f = args.inputs.filter as TensorInfo;
      const { top, bottom, left, right } = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        f.shape as [number, number, number, number],
        a.strides,
        a.dilations ?? 1,
        "same",
        a.dimRoundingMode,
        depthwise,
      ).padInfo;
      const pad: ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
      return orig.kernelFunc({ ...args, attrs: { ...args.attrs, pad } as unknown as tf.NamedAttrMap });
    }, orig);
    list.push({ kernel: k, how: "same-padding-fix" });
  }

  // Everything else the cpu backend has and wasm lacks: borrowed (slow, but correct and complete).
  for (const k of tf.getKernelsForBackend("cpu")) {
    if (has(k.kernelName) || NOT_BORROWABLE.has(k.kernelName)) continue;
    reregister(k.kernelName, borrowFromCpu(k.kernelName));
    list.push({ kernel: k.kernelName, how: "borrowed-from-cpu" });
  }
  patched = list;
  return list;
}
