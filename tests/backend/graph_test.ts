/**
 * lib/backend/graph: what TF.js computes on the native backend, recorded into a TensorFlow graph and run in a
 * session, gives the eager values (fp32: bit for bit, the same kernels), list inputs (ConcatV2, AddN) included;
 * a partial run in two phases gives the whole run's values; grappler's bf16 auto mixed precision stays within a
 * bf16-sized distance; and the recorder refuses what a graph cannot hold (a read-back, a tensor from outside
 * that was not declared), restoring the backend. Skipped, with a message, without the binding.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend, probeBackend } from "../../lib/backend/mod.ts";
import { GraphRecorder } from "../../lib/backend/graph/record.ts";
import { configProto, GraphSession } from "../../lib/backend/graph/session.ts";
import type { TfOutput } from "../../lib/backend/graph/tf_c.ts";
import { parseOpDef } from "../../lib/backend/graph/opdef.ts";
import { cpuBf16Flags } from "../../lib/backend/native_bf16.ts";
import { batchNormTrain } from "../../lib/models/ops.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";

const native = (await probeBackend("tensorflow")).available;
if (native) await initBackend("tensorflow", { quiet: true });
else console.warn("SKIPPING native graph tests: the tensorflow backend is not available here");

function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => r.normal() * scale), shape);
}

const maxAbs = (t: tf.Tensor) => Math.max(...Array.from(t.dataSync(), Math.abs));
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** conv -> BN (batch statistics) -> ReLU, a resize, a concat of 3 and an addN: a small model's ops. */
function setUp() {
  const x = randn([2, 8, 12, 3], 1);
  const w = tf.variable(randn([3, 3, 3, 6], 2, 0.3));
  const gamma = tf.variable(tf.add(randn([6], 3, 0.1), 1));
  const beta = tf.variable(randn([6], 4, 0.1));
  const f = () =>
    tf.variableGrads(() => {
      const y = tf.relu(
        batchNormTrain(
          tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"),
          gamma as tf.Tensor1D,
          beta as tf.Tensor1D,
          1e-5,
        ),
      );
      const up = tf.image.resizeBilinear(y, [16, 24]);
      const z = tf.concat([y, tf.slice(up, [0, 0, 0, 0], [2, 8, 12, 6]), tf.mul(y, 2)], -1);
      return tf.addN([tf.mean(tf.square(z)), tf.mean(z), tf.sum(tf.mul(w, w))]) as tf.Scalar;
    }, [w, gamma, beta]);
  return { x, w, gamma, beta, f, vars: [w, gamma, beta] };
}

/** setUp's function run eagerly, then recorded with x and the variables as placeholders. */
function recorded() {
  const { x, f, vars } = setUp();
  const eager = f();
  const rec = new GraphRecorder();
  const feeds = [rec.placeholder(x, "x"), ...vars.map((v) => rec.placeholder(v, v.name))];
  const r = rec.record(f);
  const values = [x, ...vars];
  const feedAll = (): [TfOutput, tf.Tensor, string][] => feeds.map((p, i) => [p.output, values[i], p.name]);
  const dispose = () => {
    tf.dispose([x, eager.value, ...Object.values(eager.grads), r.value, ...Object.values(r.grads), ...vars]);
    rec.dispose();
  };
  return { x, vars, eager, rec, feeds, r, values, feedAll, dispose };
}

Deno.test({
  name: "a recorded graph gives the eager loss and gradients: fp32 bit for bit, partial runs too",
  ignore: !native,
  fn() {
    const { vars, eager, rec, feeds, r, values, feedAll, dispose } = recorded();
    assert(rec.size > 20, `only ${rec.size} ops recorded`);
    const fetches = [
      rec.outputOf(r.value, "loss"),
      ...vars.map((v) => rec.outputOf(r.grads[v.name], v.name)),
    ];
    const s = new GraphSession(rec.graph);
    const whole = s.run(feedAll(), fetches);
    assertEquals(whole[0].dataSync()[0], eager.value.dataSync()[0], "loss");
    vars.forEach((v, i) => {
      assertEquals(
        Array.from(whole[i + 1].dataSync()),
        Array.from(eager.grads[v.name].dataSync()),
        `gradient of ${v.name}`,
      );
    });
    // two phases: feed everything and fetch the loss; then fetch the gradients, computed in the same run
    const p = s.partial(feeds.map((q) => q.output), fetches);
    const a = p.step(feedAll(), [fetches[0]]);
    const b = p.step([], fetches.slice(1));
    p.release();
    assertEquals(a[0].dataSync()[0], eager.value.dataSync()[0]);
    b.forEach((g, i) => assertEquals(maxDiff(g, whole[i + 1]), 0));
    // feeds are read on every run: a changed weight changes the result
    const w2 = tf.mul(vars[0], 1.5);
    const again = s.run(feeds.map((q, i) => [q.output, i === 1 ? w2 : values[i], q.name]), [fetches[0]]);
    assert(again[0].dataSync()[0] !== whole[0].dataSync()[0], "the new weight was not fed");
    s.close();
    dispose();
    tf.dispose([...whole, ...a, ...b, ...again, w2]);
  },
});

Deno.test({
  name: "grappler's bf16 auto mixed precision stays within bf16 distance of fp32",
  ignore: !native || cpuBf16Flags().length === 0,
  fn() {
    const { vars, eager, rec, r, feedAll, dispose } = recorded();
    const fetches = [rec.outputOf(r.value, "loss"), rec.outputOf(r.grads[vars[0].name], "dw")];
    const s = new GraphSession(rec.graph, { bf16: true });
    const [loss, dw] = s.run(feedAll(), fetches);
    const l32 = eager.value.dataSync()[0];
    // bf16 keeps 8 significant bits (relative step 2^-8 = 3.9e-3); a few roundings accumulate
    assert(
      Math.abs(loss.dataSync()[0] - l32) <= 2e-2 * Math.abs(l32),
      `loss ${loss.dataSync()[0]} vs ${l32}`,
    );
    const rel = maxDiff(dw, eager.grads[vars[0].name]) / maxAbs(eager.grads[vars[0].name]);
    assert(rel <= 3e-2, `conv weight gradient off by ${rel} relative`);
    s.close();
    dispose();
    tf.dispose([loss, dw]);
  },
});

Deno.test({
  name: "the recorder refuses a read-back and an undeclared outside tensor, and restores the backend",
  ignore: !native,
  fn() {
    const x = randn([4], 5);
    GraphRecorder.idOf(x); // in the backend before the recording (one first uploaded inside becomes a Const)
    const rec = new GraphRecorder();
    assertThrows(
      () => rec.record(() => tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1).dataSync())),
      "read-back (dataSync/data) inside a recorded function",
    );
    assertThrows(() => rec.record(() => tf.tidy(() => tf.mul(x, 2))), "declare it with placeholder()");
    // the backend works as before
    assertEquals(Array.from(tf.tidy(() => tf.mul(x, 0)).dataSync()), [0, 0, 0, 0]);

    x.dispose();
  },
});

Deno.test({
  name: "a feed of the wrong size is refused by name; a closed session refuses to run",
  ignore: !native,
  fn() {
    const x = randn([2, 3], 6);
    const rec = new GraphRecorder();
    const p = rec.placeholder(x, "x");
    const y = rec.record(() => tf.sum(tf.square(x)));
    const s = new GraphSession(rec.graph);
    assertThrows(
      () => s.run([[p.output, { data: new Float32Array(5), shape: [2, 3], dtype: "float32" }, "x"]], []),
      "feed 'x' has 5 values, not 6",
    );
    const [v] = s.run([[p.output, x, "x"]], [rec.outputOf(y, "y")]);
    assertEquals(v.dataSync()[0], y.dataSync()[0]);
    s.close();
    assertThrows(() => s.run([], []), "session closed");
    tf.dispose([x, y, v]);
  },
});

Deno.test("parseOpDef reads list arguments (number_attr, type_list_attr) and refuses truncated bytes", () => {
  // OpDef{name:"ConcatV2", input_arg:[{name:"values", number_attr:"N"}, {name:"axis"}], input_arg:{name:"x",
  // type_list_attr:"T"}}, hand-encoded
  const enc = new TextEncoder();
  const field = (n: number, b: Uint8Array) => [n * 8 + 2, b.length, ...b];
  const arg = (name: string, extra: number[] = []) =>
    new Uint8Array(field(2, new Uint8Array([...field(1, enc.encode(name)), ...extra])));
  const bytes = new Uint8Array([
    ...field(1, enc.encode("ConcatV2")),
    ...arg("values", field(5, enc.encode("N"))),
    ...arg("axis", [3 * 8, 3]), // type: DT_INT32 (a varint field)
    ...arg("xs", field(6, enc.encode("T"))),
  ]);
  const d = parseOpDef(bytes);
  assertEquals(d.name, "ConcatV2");
  assertEquals(d.inputs, [
    { name: "values", kind: "number", attr: "N" },
    { name: "axis", kind: "single" },
    { name: "xs", kind: "typeList", attr: "T" },
  ]);
  assertThrows(() => parseOpDef(bytes.subarray(0, bytes.length - 2)), "OpDef: truncated");
});

Deno.test("the session's ConfigProto bytes are what TensorFlow 2.21's own protobuf classes write", () => {
  // python: c = config_pb2.ConfigProto(); r = c.graph_options.rewrite_options; r.disable_tfg_optimizer = True;
  // [r.auto_mixed_precision_onednn_bfloat16 = 1;] list(c.SerializeToString())   (tensorflow-cpu 2.21.0)
  assertEquals(Array.from(configProto({})), [82, 5, 82, 3, 128, 2, 1]);
  assertEquals(Array.from(configProto({ bf16: true })), [82, 8, 82, 6, 248, 1, 1, 128, 2, 1]);
});
