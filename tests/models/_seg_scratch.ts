import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { SegModel } from "../../lib/models/contrast.ts";
import { Rng } from "../../lib/util/rng.ts";
const info = await initBackend();
const hwm = () => {
  const s = Deno.readTextFileSync("/proc/self/status");
  return s.match(/VmHWM:\s+(\d+)/)![1] + " kB";
};
const rss = () => {
  const s = Deno.readTextFileSync("/proc/self/status");
  return s.match(/VmRSS:\s+(\d+)/)![1] + " kB";
};
console.log(info.name, info.detail);
let t0 = performance.now();
const m = new SegModel({ backbone: "HRNet_W48", numClasses: 19, projDim: 720 }, { rng: new Rng(0) });
console.log("build", (performance.now() - t0).toFixed(0), "ms; rss", rss(), "hwm", hwm());
const x = tf.randomNormal([1, 512, 1024, 3]) as tf.Tensor4D;
const mode = Deno.args[0] ?? "eval";
for (let i = 0; i < 3; i++) {
  t0 = performance.now();
  if (mode === "eval") {
    const y = m.predict(x);
    y.dataSync();
    y.dispose();
  } else if (mode === "train") {
    const out = m.forward(x, { training: true, rng: new Rng(i) });
    out.logitsUp.dataSync();
    tf.dispose([out.logitsUp, out.logits4, out.embed!]);
    m.commitBnUpdates();
  } else {
    const { value, grads } = m.variableGrads(() => {
      const out = m.forward(x, { training: true, rng: new Rng(i) });
      return tf.add(tf.mean(out.logitsUp), tf.mean(out.embed!)) as tf.Scalar;
    });
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
    m.commitBnUpdates();
  }
  console.log(
    mode,
    i,
    (performance.now() - t0).toFixed(0),
    "ms; rss",
    rss(),
    "hwm",
    hwm(),
    "tensors",
    tf.memory().numTensors,
  );
}
