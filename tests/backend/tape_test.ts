/** lib/backend/tape.ts: gradients over pieces recorded around awaits equal tf.variableGrads of the whole. */
import { assert, assertClose, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { Tape } from "../../lib/backend/tape.ts";

await initBackend();

function vars() {
  const w1 = tf.variable(tf.tensor2d([[0.5, -1.2, 0.3], [0.8, 0.1, -0.4]]), true);
  const w2 = tf.variable(tf.tensor2d([[1.1], [-0.7], [0.2]]), true);
  return { w1, w2 };
}

const x = tf.tensor2d([[1, 2], [-1, 0.5], [0.3, -2]]);

Deno.test("Tape: pieces around an await give the gradients of the whole; intermediates and saved tensors freed", async () => {
  const { w1, w2 } = vars();
  // reference: one synchronous closure, with the data-dependent constant m known beforehand
  const forward = () => tf.matMul(tf.relu(tf.matMul(x, w1)), w2);
  const mRef = tf.tidy(() => tf.max(forward()).dataSync()[0]);
  const ref = tf.variableGrads(() => tf.sum(tf.square(tf.sub(forward(), mRef))) as tf.Scalar, [w1, w2]);
  const before = tf.memory().numTensors;
  const tape = new Tape();
  const y = tape.record(forward);
  assert(tape.size > 0, "the forward piece was recorded");
  const mT = tf.max(y); // between pieces: off the tape, read asynchronously
  const m = (await mT.data())[0];
  mT.dispose();
  assertEquals(m, mRef);
  const loss = tape.record(() => tf.sum(tf.square(tf.sub(y, m))) as tf.Scalar);
  const got = tf.variableGrads(() => tape.replay(loss), [w1, w2]);
  y.dispose();
  assertClose(await got.value.data(), await ref.value.data(), 1e-6, 0, "value");
  for (const k of Object.keys(ref.grads)) {
    assertClose(await got.grads[k].data(), await ref.grads[k].data(), 1e-6, 0, `gradient ${k}`);
  }
  tf.dispose([got.value, ...Object.values(got.grads)]);
  assertEquals(tf.memory().numTensors, before, "no tensor left behind (saved tensors freed by the backward)");
  tf.dispose([ref.value, ...Object.values(ref.grads), w1, w2]);
});

Deno.test("Tape: ops between pieces are not differentiated; discard frees the saved tensors; misuse fails", () => {
  const { w1, w2 } = vars();
  const before = tf.memory().numTensors;
  const tape = new Tape();
  const h = tape.record(() => tf.matMul(x, w1));
  const detached = tf.mul(h, 2); // not on the tape
  const loss = tape.record(() => tf.sum(tf.matMul(detached, w2)) as tf.Scalar);
  // the loss reaches w1 only through the untaped op: no gradient for w1
  const g = tf.variableGrads(() => tape.replay(loss), [w1, w2]);
  assertEquals(Object.keys(g.grads), [w2.name]);
  assertThrows(() => tape.record(() => tf.scalar(1)), "after replay");
  tf.dispose([h, detached, g.value, ...Object.values(g.grads)]);
  assertEquals(tf.memory().numTensors, before);

  const unused = new Tape();
  const z = unused.record(() => tf.sum(tf.exp(tf.matMul(x, w1))));
  z.dispose();
  assert(tf.memory().numTensors > before, "saved tensors held until discarded");
  unused.discard();
  assertEquals(tf.memory().numTensors, before, "discard frees them");
  assertThrows(() => new Tape().replay(tf.scalar(0)), "inside tf.variableGrads");
  tf.dispose([w1, w2]);
});
