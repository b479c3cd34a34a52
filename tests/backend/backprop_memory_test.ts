/**
 * lib/backend/backprop_memory.ts: freeing activation gradients and saved tensors during the backward pass
 * changes no gradient, leaks nothing, lowers the peak, and survives gradient functions that pass `dy` through
 * to several inputs and nested gradient computations (gradient checkpointing).
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { setBackpropMemoryRelease } from "../../lib/backend/backprop_memory.ts";
import { batchNormTrain, recomputeInBackward } from "../../lib/models/ops.ts";
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";

await initBackend();

const LAYERS = 8;

/** A small conv-BN-ReLU stack with a residual add and a bilinear upsample: the shapes of an HRNet block. */
function net(x: tf.Tensor4D, ws: tf.Variable[]): tf.Scalar {
  let y = x;
  for (let i = 0; i < LAYERS; i++) {
    const c = tf.conv2d(y, ws[i] as tf.Tensor4D, 1, "same");
    const b = batchNormTrain(c, tf.onesLike(ws[LAYERS]).reshape([-1]) as tf.Tensor1D, tf.zeros([8]), 1e-5);
    y = tf.relu(i % 3 === 2 ? tf.add(b, y) : b);
  }
  const up = tf.image.resizeBilinear(y, [64, 64]);
  return tf.mean(tf.square(up));
}

function setup() {
  const x = tf.randomNormal([2, 32, 32, 8], 0, 1, "float32", 1) as tf.Tensor4D;
  const ws = [...Array(LAYERS).keys()].map((i) =>
    tf.variable(tf.randomNormal([3, 3, 8, 8], 0, 0.3, "float32", 10 + i))
  );
  ws.push(tf.variable(tf.ones([8, 1])));
  return { x, ws };
}

function grads(on: boolean, x: tf.Tensor4D, ws: tf.Variable[]) {
  const was = setBackpropMemoryRelease(on);
  try {
    const { value, grads } = tf.variableGrads(() => net(x, ws), ws.slice(0, LAYERS));
    return {
      value: value.dataSync()[0],
      grads: Object.values(grads).map((g) => g.dataSync().slice()),
      all: [value, ...Object.values(grads)],
    };
  } finally {
    setBackpropMemoryRelease(was);
  }
}

Deno.test("backprop memory release: same values and gradients, no leaked tensors", () => {
  const { x, ws } = setup();
  const before = tf.memory().numTensors;
  const a = grads(false, x, ws);
  tf.dispose(a.all);
  const mid = tf.memory().numTensors;
  const b = grads(true, x, ws);
  tf.dispose(b.all);
  assertEquals(tf.memory().numTensors, mid, "tensors after a released backward");
  assertEquals(mid, before, "tensors after a plain backward");
  assertEquals(b.value, a.value);
  for (let i = 0; i < a.grads.length; i++) assertClose(b.grads[i], a.grads[i], 0, 0, `grad ${i}`);
  tf.dispose([x, ...ws]);
});

Deno.test("backprop memory release: the gradients of intermediate tensors do not pile up", () => {
  const { x, ws } = setup();
  // a pass-through op after the first layer: its gradient runs last, when the retained bytes are the most
  let lateBytes = 0;
  const probe = tf.customGrad((a: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.clone(a as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => {
      lateBytes = tf.memory().numBytes;
      return dy.clone();
    },
  }));
  const late = (on: boolean) => {
    const was = setBackpropMemoryRelease(on);
    try {
      const { value, grads } = tf.variableGrads(() => {
        let y = probe(tf.conv2d(x, ws[0] as tf.Tensor4D, 1, "same")) as tf.Tensor4D;
        for (let i = 1; i < LAYERS; i++) {
          const b = batchNormTrain(
            tf.conv2d(y, ws[i] as tf.Tensor4D, 1, "same"),
            tf.ones([8]),
            tf.zeros([8]),
            1e-5,
          );
          y = tf.relu(b);
        }
        return tf.sum(y) as tf.Scalar;
      }, ws.slice(0, LAYERS));
      tf.dispose([value, ...Object.values(grads)]);
      return lateBytes;
    } finally {
      setBackpropMemoryRelease(was);
    }
  };
  const plain = late(false), released = late(true);
  assert(
    released < 0.6 * plain,
    `${released} bytes live late in the backward with release vs ${plain} without`,
  );
  tf.dispose([x, ...ws]);
});

Deno.test("backprop memory release: dy passed through to two inputs, and nested checkpointed blocks", () => {
  const x = tf.variable(tf.randomNormal([1, 6, 6, 4], 0, 1, "float32", 3));
  const passTwice = tf.customGrad((a: tf.Tensor | tf.GradSaveFunc, b: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.add(a as tf.Tensor, b as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => [dy, dy], // the same tensor object for both inputs
  }));
  const f = () => {
    const [h] = recomputeInBackward(([t]) => [tf.relu(tf.mul(t, 2))], [x as unknown as tf.Tensor4D], []);
    const s = passTwice(tf.square(h), tf.sin(h)) as tf.Tensor;
    return tf.sum(tf.mul(s, s)) as tf.Scalar;
  };
  const run = (on: boolean) => {
    const was = setBackpropMemoryRelease(on);
    try {
      const { value, grads } = tf.variableGrads(f, [x]);
      const g = Object.values(grads)[0].dataSync().slice();
      tf.dispose([value, ...Object.values(grads)]);
      return g;
    } finally {
      setBackpropMemoryRelease(was);
    }
  };
  const n0 = tf.memory().numTensors;
  const plain = run(false);
  const released = run(true);
  assertClose(released, plain, 1e-6, 0);
  assertEquals(tf.memory().numTensors, n0);
  x.dispose();
});
