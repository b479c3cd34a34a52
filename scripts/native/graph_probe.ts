/**
 * Feasibility probe for a graph route (issue 16's "what would reach 1.2x"): a stack of conv3x3 → BatchNorm (batch
 * statistics) → ReLU layers, forward and weight gradients, built as ONE TensorFlow graph through libtensorflow's C
 * API from Deno's FFI — `TF_NewOperation`, `TF_AddGradients` (the C++ gradient registry is in libtensorflow_cc),
 * `TF_SessionRun` with a ConfigProto that turns on grappler's oneDNN bf16 auto mixed precision — beside the same
 * stack run op by op through TF.js as our trainer does (fp32 and `train.precision: bf16`). No binding change: the
 * library the binding already loaded is opened a second time by path.
 *
 *   deno run -A scripts/native/graph_probe.ts [channels=18] [layers=8]     (batch 2, 64x128, as HRNet-W18-Small's
 *                                                                          first branch at 512x256)
 *
 * Prints each mode's loss (graph fp32 equals eager fp32), the first layer's weight gradient compared with the
 * eager one, and ms per forward + gradient (median of 3 rounds of 5). Findings: scripts/native/README.md.
 */
import { join } from "node:path";
import { initBackend } from "../../lib/backend/mod.ts";
import { nativePackageDir } from "../../lib/backend/native.ts";
import { tf } from "../../lib/backend/tf.ts";
import { withComputePrecision } from "../../lib/backend/native_bf16.ts";
import { batchNormTrain } from "../../lib/models/ops.ts";
import { tfC } from "../../lib/backend/graph/tf_c.ts";
await initBackend("tensorflow", { quiet: true });
// the C API lib/backend/graph uses, plus TF_AddGradients (the graph step records TF.js' own backward instead)
const extra = Deno.dlopen(join(nativePackageDir(), "deps", "lib", "libtensorflow_cc.so.2"), {
  TF_AddGradients: {
    parameters: ["pointer", "buffer", "i32", "buffer", "i32", "pointer", "pointer", "buffer"],
    result: "void",
  },
});
const S = { ...tfC(), ...extra.symbols };
const libc = Deno.dlopen("libc.so.6", {
  memcpy: { parameters: ["pointer", "buffer", "usize"], result: "pointer" },
});
const st = S.TF_NewStatus();
const cstr = (s: string) => new TextEncoder().encode(s + "\0");
function check(what: string) {
  if (S.TF_GetCode(st) !== 0) {
    throw new Error(`${what}: ${Deno.UnsafePointerView.getCString(S.TF_Message(st)!)}`);
  }
}
const out = (op: Deno.PointerValue, i = 0) => {
  const b = new Uint8Array(16);
  new BigUint64Array(b.buffer, 0, 1)[0] = BigInt(Deno.UnsafePointer.value(op));
  new Int32Array(b.buffer, 8, 1)[0] = i;
  return b;
};
const outs = (xs: Uint8Array[]) => {
  const b = new Uint8Array(16 * xs.length);
  xs.forEach((x, i) => b.set(x, 16 * i));
  return b;
};
function tensor(dtype: number, dims: number[], data: ArrayBufferView) {
  const t = S.TF_AllocateTensor(
    dtype,
    new BigInt64Array(dims.map(BigInt)),
    dims.length,
    BigInt(data.byteLength),
  );
  libc.symbols.memcpy(
    S.TF_TensorData(t),
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    BigInt(data.byteLength),
  );
  return t;
}
const g = S.TF_NewGraph();
let nOps = 0;
function op(type: string, inputs: Uint8Array[], attrs: (d: Deno.PointerValue) => void = () => {}) {
  const d = S.TF_NewOperation(g, cstr(type), cstr(`${type}_${nOps++}`));
  for (const i of inputs) S.TF_AddInput(d, i);
  attrs(d);
  const o = S.TF_FinishOperation(d, st);
  check(type);
  return o;
}
const T = (d: Deno.PointerValue, t = 1) => S.TF_SetAttrType(d, cstr("T"), t);
const [N, H, W, C, L] = [2, 64, 128, Number(Deno.args[0] ?? 18), Number(Deno.args[1] ?? 8)];
const ph = (dims: number[]) =>
  op("Placeholder", [], (d) => {
    S.TF_SetAttrType(d, cstr("dtype"), 1);
    S.TF_SetAttrShape(d, cstr("shape"), new BigInt64Array(dims.map(BigInt)), dims.length);
  });
const x = ph([N, H, W, C]);
const ws = Array.from({ length: L }, () => ph([3, 3, C, C]));
const scale = ph([C]), offset = ph([C]);
const empty = op("Const", [], (d) => {
  const t = tensor(1, [0], new Float32Array(0));
  S.TF_SetAttrTensor(d, cstr("value"), t, st);
  S.TF_SetAttrType(d, cstr("dtype"), 1);
});
let h = out(x);
for (const w of ws) {
  const c = op("Conv2D", [h, out(w)], (d) => {
    T(d);
    S.TF_SetAttrIntList(d, cstr("strides"), new BigInt64Array([1n, 1n, 1n, 1n]), 4);
    const p = new TextEncoder().encode("SAME");
    S.TF_SetAttrString(d, cstr("padding"), p, BigInt(p.length));
  });
  const bn = op("FusedBatchNormV3", [out(c), out(scale), out(offset), out(empty), out(empty)], (d) => {
    T(d);
    S.TF_SetAttrType(d, cstr("U"), 1);
    S.TF_SetAttrBool(d, cstr("is_training"), 1);
    S.TF_SetAttrFloat(d, cstr("epsilon"), 1e-5);
  });
  h = out(op("Relu", [out(bn)], (d) => T(d)));
}
const axes = op("Const", [], (d) => {
  const t = tensor(3, [4], new Int32Array([0, 1, 2, 3]));
  S.TF_SetAttrTensor(d, cstr("value"), t, st);
  S.TF_SetAttrType(d, cstr("dtype"), 3);
});
const loss = op("Sum", [out(op("Square", [h], (d) => T(d))), out(axes)], (d) => T(d));
const dy = new Uint8Array(16 * L);
S.TF_AddGradients(g, out(loss), 1, outs(ws.map((w) => out(w))), L, null, st, dy);
check("TF_AddGradients");
console.log(`graph built: ${nOps} ops + gradients`);
function session(bf16: boolean) {
  const o = S.TF_NewSessionOptions();
  // ConfigProto{intra_op_parallelism_threads: 2, graph_options{rewrite_options{auto_mixed_precision_onednn_bfloat16: ON}}}
  const cfg = new Uint8Array(bf16 ? [16, 2, 82, 5, 82, 3, 248, 1, 1] : [16, 2]);
  S.TF_SetConfig(o, cfg, BigInt(cfg.length), st);
  check("TF_SetConfig");
  const s = S.TF_NewSession(g, o, st);
  check("TF_NewSession");
  return s;
}
const rnd = (n: number, sd: number) => Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * sd);
const xv = rnd(N * H * W * C, 1), wv = ws.map(() => rnd(9 * C * C, Math.sqrt(3 / (9 * C))));
const feeds = () => [
  tensor(1, [N, H, W, C], xv),
  ...wv.map((v) => tensor(1, [3, 3, C, C], v)),
  tensor(1, [C], new Float32Array(C).fill(1)),
  tensor(1, [C], new Float32Array(C)),
];
const feedOuts = outs([out(x), ...ws.map((w) => out(w)), out(scale), out(offset)]);
const lastGrad: { graph?: Float32Array; eager?: Float32Array } = {};
function run(s: Deno.PointerValue) {
  const f = feeds();
  const fin = new BigUint64Array(f.map((t) => BigInt(Deno.UnsafePointer.value(t))));
  const res = new BigUint64Array(1 + L);
  S.TF_SessionRun(
    s,
    null,
    feedOuts,
    fin,
    f.length,
    outs([out(loss), ...Array.from({ length: L }, (_, i) => dy.subarray(16 * i, 16 * i + 16))]),
    res,
    1 + L,
    null,
    0,
    null,
    st,
  );
  check("TF_SessionRun");
  for (const t of f) S.TF_DeleteTensor(t);
  const lv = new Deno.UnsafePointerView(S.TF_TensorData(Deno.UnsafePointer.create(res[0]))!).getFloat32();
  const g0 = new Float32Array(9 * C * C);
  new Deno.UnsafePointerView(S.TF_TensorData(Deno.UnsafePointer.create(res[1]))!).copyInto(g0);
  lastGrad.graph = g0;
  for (const p of res) S.TF_DeleteTensor(Deno.UnsafePointer.create(p));
  return lv;
}
// eager, as our trainer runs it
const xe = tf.tensor4d(xv, [N, H, W, C]), we = wv.map((v) => tf.variable(tf.tensor4d(v, [3, 3, C, C])));
const ge = tf.ones([C]) as tf.Tensor1D, be = tf.zeros([C]) as tf.Tensor1D;
function eager(p: "fp32" | "bf16") {
  const r = withComputePrecision(p, () =>
    tf.variableGrads(() => {
      let y = xe;
      for (const w of we) {
        y = tf.relu(batchNormTrain(tf.conv2d(y, w as tf.Tensor4D, 1, "same"), ge, be, 1e-5));
      }
      return tf.sum(tf.square(y)) as tf.Scalar;
    }, we));
  const lv = r.value.dataSync()[0];
  lastGrad.eager = r.grads[we[0].name].dataSync() as Float32Array;
  tf.dispose([r.value, ...Object.values(r.grads)]);
  return lv;
}
const s32 = session(false), s16 = session(true);
const modes: Record<string, () => number> = {
  "eager fp32": () => eager("fp32"),
  "eager bf16": () => eager("bf16"),
  "graph fp32": () => run(s32),
  "graph bf16 AMP": () => run(s16),
};
const best: Record<string, number[]> = {};
for (let r = 0; r < 4; r++) {
  for (const [k, f] of Object.entries(modes)) {
    const t0 = performance.now();
    let lv = 0;
    for (let i = 0; i < 5; i++) lv = f();
    if (r > 0) (best[k] ??= []).push((performance.now() - t0) / 5);
    if (r === 3) console.log(k, "loss", lv.toPrecision(6));
  }
}
eager("fp32");
run(s32);
const scaleG = Math.max(...lastGrad.eager!.map(Math.abs));
const diff = Math.max(...lastGrad.eager!.map((v, i) => Math.abs(v - lastGrad.graph![i])));
console.log(
  `first conv's weight gradient, graph fp32 vs eager fp32: max |grad| ${
    scaleG.toPrecision(4)
  }, max |diff| / max |grad| = ${(diff / scaleG).toExponential(2)}`,
);
for (const [k, v] of Object.entries(best)) {
  console.log(`${k.padEnd(16)} ${v.sort((a, b) => a - b)[1].toFixed(1)} ms (median of ${v.length})`);
}
