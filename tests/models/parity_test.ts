/**
 * Parity with PaddleSeg: the fixture in tests/fixtures/paddle_model (made by make_fixture.py with
 * paddlepaddle + paddleseg, see fixture.json for versions) holds a HRNetW48Contrast(HRNet_W18_Small_V2)
 * state_dict as `.pdparams` (gzipped), one input and Paddle's eval-mode logits and embeddings. We import
 * the .pdparams through our pickle reader and must reproduce both outputs to 1e-4.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { SegModel } from "../../lib/models/contrast.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { loadPretrainedBytes } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";

const DIR = new URL("../fixtures/paddle_model/", import.meta.url);

interface FixtureMeta {
  backbone: "HRNet_W18_Small_V2";
  num_classes: number;
  proj_dim: number;
  num_tensors: number;
  shapes: Record<"input" | "logits_up" | "logits4" | "embed", number[]>;
}

async function readF32(name: string): Promise<Float32Array> {
  const b = await Deno.readFile(new URL(name, DIR));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function nchwToNhwc(data: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(tf.tensor4d(data, shape as [number, number, number, number]), [0, 2, 3, 1])
  );
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

Deno.test("parity with PaddleSeg HRNetW48Contrast(HRNet_W18_Small_V2): eval logits and embeddings", async () => {
  const backend = await initBackend();
  const meta = JSON.parse(await Deno.readTextFile(new URL("fixture.json", DIR))) as FixtureMeta;
  const model = new SegModel(
    modelOptionsOf({ backbone: meta.backbone, numClasses: meta.num_classes, projDim: meta.proj_dim }),
    { rng: new Rng(1) },
  );
  const lines: string[] = [];
  const report = await loadPretrainedBytes(
    model,
    await Deno.readFile(new URL("model.pdparams.gz", DIR)),
    "model.pdparams.gz",
    { log: (l) => lines.push(l) },
  );
  assertEquals(report.naming, "paddle");
  assertEquals(report.matched.length, meta.num_tensors, "every tensor of the fixture is a model tensor");
  assertEquals(report.unexpected, []);
  assert(lines[0].startsWith(`matched ${meta.num_tensors}/${meta.num_tensors} tensors`), lines[0]);

  const x = nchwToNhwc(await readF32("input.f32"), meta.shapes.input);
  const t0 = performance.now();
  const out = model.forward(x, { training: false, embed: true });
  const ms = performance.now() - t0;
  const want = {
    logitsUp: nchwToNhwc(await readF32("logits_up.f32"), meta.shapes.logits_up),
    logits4: nchwToNhwc(await readF32("logits4.f32"), meta.shapes.logits4),
    embed: nchwToNhwc(await readF32("embed.f32"), meta.shapes.embed),
  };
  const diffs = {
    logitsUp: maxAbsDiff(out.logitsUp, want.logitsUp),
    logits4: maxAbsDiff(out.logits4, want.logits4),
    embed: maxAbsDiff(out.embed!, want.embed),
  };
  console.log(
    `parity on ${backend.name}: max abs diff ${JSON.stringify(diffs)} (forward ${ms.toFixed(0)} ms)`,
  );
  assertEquals(out.logitsUp.shape, want.logitsUp.shape);
  assertEquals(out.embed!.shape, want.embed.shape);
  assert(diffs.logitsUp <= 1e-4, `logitsUp differ by ${diffs.logitsUp}`);
  assert(diffs.logits4 <= 1e-4, `logits4 differ by ${diffs.logits4}`);
  assert(diffs.embed <= 1e-4, `embeddings differ by ${diffs.embed}`);

  // predict() is the same eval path without the projection head.
  const pred = model.predict(x);
  assert(maxAbsDiff(pred, out.logitsUp) === 0, "predict() equals forward().logitsUp in eval mode");
  tf.dispose([x, pred, out.logitsUp, out.logits4, out.embed!, ...Object.values(want)]);
  model.dispose();
});
