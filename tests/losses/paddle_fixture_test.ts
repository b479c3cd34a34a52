/**
 * Against PaddleSeg (tests/fixtures/paddle_loss, made by make_fixture.py with paddlepaddle 2.6.2 and
 * paddleseg 2.8.0): our sampler in identity mode picks exactly PaddleSeg's anchors (its randperm replaced
 * by the identity), and the contrast loss, CE (unweighted and TORCH-weighted) and their gradients agree.
 */
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";
import { type Tensor3D, type Tensor4D, tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { labelsAndPredictions } from "../../lib/losses/labels.ts";
import { sampleHardAnchors } from "../../lib/losses/sampler.ts";
import { pixelContrastLoss } from "../../lib/losses/pixel_contrast.ts";
import { Tape } from "../../lib/backend/tape.ts";
import { crossEntropyLoss } from "../../lib/losses/cross_entropy.ts";
import { contrastOptionsOf, crossEntropyOptionsOf } from "../../lib/run/options.ts";

await initBackend();

const dir = new URL("../fixtures/paddle_loss/", import.meta.url);
interface ArrayMeta {
  offset: number;
  dtype: string;
  shape: number[];
}
interface Group {
  image: number;
  class: number;
  n_hard: number;
  n_easy: number;
  keep_hard: number;
  keep_easy: number;
  indices: number[];
}
const meta = JSON.parse(Deno.readTextFileSync(new URL("fixture.json", dir))) as {
  n_view: number;
  groups: Group[];
  contrast_loss: number;
  ce_unweighted: number;
  ce_torch_weighted: number;
  ce_unweighted_f64: number;
  ce_torch_weighted_f64: number;
  torch_weights: number[];
  arrays: Record<string, ArrayMeta>;
};
const bin = Deno.readFileSync(new URL("arrays.bin", dir));

function arr(name: string): { data: Float32Array | Uint8Array; shape: number[] } {
  const m = meta.arrays[name];
  const n = m.shape.reduce((a, b) => a * b, 1);
  if (m.dtype === "uint8") return { data: bin.slice(m.offset, m.offset + n), shape: m.shape };
  const buf = bin.slice(m.offset, m.offset + 4 * n).buffer;
  return { data: new Float32Array(buf), shape: m.shape };
}

function inputs() {
  const l = arr("labels");
  return {
    labels: tf.tensor3d(Int32Array.from(l.data), l.shape as [number, number, number], "int32"),
    logits4: tf.tensor4d(
      arr("logits4").data as Float32Array,
      arr("logits4").shape as [number, number, number, number],
    ),
    embed: tf.tensor4d(
      arr("embed").data as Float32Array,
      arr("embed").shape as [number, number, number, number],
    ),
  };
}

Deno.test("PaddleSeg fixture: identity-mode sampler picks the same anchors", async () => {
  const { labels, logits4, embed } = inputs();
  const host = await labelsAndPredictions(labels, logits4);
  tf.dispose([labels, logits4, embed]);
  const [n, , h, w] = [2, 0, 32, 64];
  const P = h * w;
  const s = sampleHardAnchors(host.labels, host.preds, n, P, {
    maxSamples: 1024,
    maxViews: 100,
    ignoreIndex: 255,
    draw: "identity",
  });
  assertEquals(s.nView, meta.n_view, "n_view");
  assertEquals(s.totalClasses, meta.groups.length, "pairs");
  meta.groups.forEach((g, a) => {
    const k = s.keeps[a];
    assertEquals(
      [k.image, k.classId, k.nHard, k.nEasy, k.keepHard, k.keepEasy],
      [g.image, g.class, g.n_hard, g.n_easy, g.keep_hard, g.keep_easy],
      `pair ${a}`,
    );
    const ours = Array.from(s.indices.subarray(a * s.nView, (a + 1) * s.nView)).map((p) => p - g.image * P);
    assertEquals(ours, g.indices, `indices of pair ${a} (image ${g.image}, class ${g.class})`);
  });
  // the fixture exercises all three reachable keep rules
  assertEquals(new Set(s.keeps.map((k) => k.rule)).size, 3, "rules a, b and c present");
});

Deno.test("PaddleSeg fixture: contrast loss and its gradient w.r.t. the embeddings", async () => {
  const { labels, logits4, embed } = inputs();
  const before = tf.memory().numTensors;
  const opts = contrastOptionsOf({ draw: "identity", contrastGroupSize: 2 });
  const tape = new Tape();
  const r = await pixelContrastLoss({ logits4, embed, labels }, opts, { tape });
  r.stats?.dispose();
  const g = tf.valueAndGrad(() => tape.replay(r.loss))(embed);
  const value = (await g.value.data())[0], grad = (await g.grad.data()) as Float32Array;
  tf.dispose([g.value, g.grad]);
  assert(tf.memory().numTensors === before, `leaked ${tf.memory().numTensors - before} tensors`);
  tf.dispose([labels, logits4, embed]);
  assert(
    Math.abs(value - meta.contrast_loss) <= 1e-5 * meta.contrast_loss,
    `loss ${value} vs PaddleSeg ${meta.contrast_loss}`,
  );
  const want = arr("grad_embed").data as Float32Array;
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assertClose(grad, want, 1e-5, 1e-5 * scale, "d contrast / d embed");
  // gradient flows only into the sampled pixels (1022 rows of 32)
  let nonzeroRows = 0;
  for (let r = 0; r < want.length / 32; r++) {
    if (grad.subarray(r * 32, r * 32 + 32).some((v) => v !== 0)) nonzeroRows++;
  }
  assertEquals(nonzeroRows, meta.n_view * meta.groups.length, "rows with a gradient");
});

Deno.test("PaddleSeg fixture: CrossEntropyLoss (unweighted and TORCH weights) on upsampled logits", () => {
  const { labels, logits4, embed } = inputs();
  // Paddle reduces in float32: its weighted denominator mean(w_y·mask) over 65536 pixels is off by ~3e-5
  // relative, so the weighted value is checked against the float64 evaluation of the same formula on
  // Paddle's upsampled logits (1e-5) and against Paddle itself at 1e-4, as is the weighted gradient.
  for (
    const [weight, paddle, f64, gname, rtolPaddle] of [
      [null, meta.ce_unweighted, meta.ce_unweighted_f64, "grad_logits4_unweighted", 1e-5],
      ["torch", meta.ce_torch_weighted, meta.ce_torch_weighted_f64, "grad_logits4_torch_weighted", 1e-4],
    ] as const
  ) {
    const { value, grad } = tf.tidy(() => {
      const f = (x: tf.Tensor) =>
        crossEntropyLoss(x as Tensor4D, labels as Tensor3D, crossEntropyOptionsOf({ weight }));
      const { value, grad } = tf.valueAndGrad(f)(logits4);
      return { value: value.dataSync()[0], grad: grad.dataSync() };
    });
    assert(Math.abs(value - f64) <= 1e-5 * f64, `CE (${weight}) ${value} vs float64 ${f64}`);
    assert(Math.abs(value - paddle) <= rtolPaddle * paddle, `CE (${weight}) ${value} vs PaddleSeg ${paddle}`);
    const g = arr(gname).data as Float32Array;
    const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assertClose(grad, g, rtolPaddle, rtolPaddle * scale, `d CE (${weight}) / d logits4`);
  }
  tf.dispose([labels, logits4, embed]);
});
