/**
 * lib/train/graph_step.ts: the step with the model's forward and backward run as a recorded TensorFlow graph
 * trains like the op-by-op step (same losses, same draws from the generator, same weights and BN running
 * statistics after several steps, within float rounding), feeds a fresh dropout mask on every run, records one
 * graph per input size, leaks no tensors; `train.graph` resolves as documented. The native tests skip, with a
 * message, where the binding is not built.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend, probeBackend } from "../../lib/backend/mod.ts";
import { buildModel } from "../../lib/models/mod.ts";
import { lossOptionsOf, modelOptionsOf } from "../../lib/run/options.ts";
import { MomentumSGD } from "../../lib/train/optimizer.ts";
import { trainStep } from "../../lib/train/step.ts";
import { GraphSteps, resolveGraph } from "../../lib/train/graph_step.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../_helpers/assert.ts";
import { toyBatch, toyLossOptions } from "./_toy.ts";

const native = (await probeBackend("tensorflow")).available;
if (native) await initBackend("tensorflow", { quiet: true });
else console.warn("SKIPPING native graph-step tests: the tensorflow backend is not available here");

const lossOptions = toyLossOptions;

const makeModel = (dropProb: number) =>
  buildModel(
    modelOptionsOf({ type: "HRNetW48Contrast", backbone: "HRNet_Tiny", numClasses: 3, projDim: 8, dropProb }),
    new Rng(5),
  );

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

Deno.test({
  name: "graph steps train like op-by-op steps: losses, generator draws, weights and BN statistics agree",
  ignore: !native,
  async fn() {
    const eager = makeModel(0.3), graphed = makeModel(0.3);
    const oe = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
    const og = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
    const re = new Rng(9), rg = new Rng(9);
    const steps = new GraphSteps(graphed, "fp32");
    // 3 steps: with the anchor sampler choosing hard pixels by argmax, float-rounding differences grow into
    // different anchors after a few steps (measured: relative loss differences 0, 3e-6, 2e-5, then 2e-3)
    const batches = [toyBatch(1), toyBatch(2), toyBatch(3)];
    let tensors = 0;
    for (let k = 0; k < batches.length; k++) {
      const ctx = { loss: lossOptions, iter: k, lr: 0.05, diagnostics: true };
      const a = await trainStep([batches[k]], { ...ctx, model: eager, optimizer: oe, rng: re });
      const b = await trainStep([batches[k]], {
        ...ctx,
        model: graphed,
        optimizer: og,
        rng: rg,
        graph: steps,
      });
      // the same kernels on the same values; grappler may fuse and reorder float sums
      if (k === 0) assertEquals(b.loss, a.loss, "first step (same weights)");
      assert(Math.abs(a.loss - b.loss) <= 1e-4 * Math.abs(a.loss), `step ${k}: loss ${b.loss} vs ${a.loss}`);
      assertEquals(rg.getState(), re.getState(), `step ${k}: the generator was drawn differently`);
      assertEquals(b.diagnostics.length, 1);
      if (k === 0) tensors = tf.memory().numTensors;
      if (k > 0) assertEquals(tf.memory().numTensors, tensors, `step ${k} leaked tensors`);
    }
    assertEquals(steps.recorded, 1);
    assert(steps.graphSize([2, 32, 64, 3]) > 500, `graph of ${steps.graphSize([2, 32, 64, 3])} ops`);
    // the updates (w - w0) compared in relative L2 norm, as tests/train/step_test.ts does: BN backward subtracts
    // nearly equal terms, so element-wise rounding noise is amplified for tiny weights
    const init = makeModel(0.3);
    const w0 = init.namedWeights(), we = eager.namedWeights(), wg = graphed.namedWeights();
    let compared = 0;
    for (const [name, v] of we) {
      if (/\._conv\.bias$/.test(name)) continue; // zero gradient before BN: its update is rounding noise
      const e = v.dataSync(), g = wg.get(name)!.dataSync(), z = w0.get(name)!.dataSync();
      const de = e.map((x, i) => x - z[i]), dg = g.map((x, i) => x - z[i]);
      assert(de.some((x) => x !== 0), `${name} did not move: the comparison would be vacuous`);
      const err = relL2(dg, de);
      assert(err < 1e-2, `${name}: graph vs eager updates differ by ${err} (relative L2)`);
      compared++;
    }
    assert(compared > 40, `only ${compared} tensors compared`);
    init.dispose();
    steps.dispose();
    for (const m of [eager, graphed]) m.dispose();
    for (const o of [oe, og]) o.dispose();
  },
});

Deno.test({
  name: "a graph step feeds a fresh dropout mask each run; each input size gets its own graph",
  ignore: !native,
  async fn() {
    // with dropout, the same batch twice gives different losses only if the masks differ between the runs
    const model = makeModel(0.5);
    const opt = new MomentumSGD({ momentum: 0, weightDecay: 0 });
    const steps = new GraphSteps(model, "fp32");
    const rng = new Rng(1);
    const batch = toyBatch(6);
    // CE only (no anchor draws) and lr 0 (same weights): only the dropout mask can change the loss
    const ceOnly = lossOptionsOf({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
    const ctx = { model, optimizer: opt, loss: ceOnly, rng, graph: steps, lr: 0 };
    const l1 = (await trainStep([batch], { ...ctx, iter: 0 })).loss;
    const l2 = (await trainStep([batch], { ...ctx, iter: 1 })).loss;
    assert(l1 !== l2, `the same loss ${l1} twice: a dropout mask was frozen into the graph`);
    // the op-by-op step with the generator in the state before the second step gives the second loss
    const eagerModel = makeModel(0.5);
    const r2 = new Rng(1);
    const eagerOpt = new MomentumSGD({ momentum: 0, weightDecay: 0 });
    const e1 = (await trainStep([batch], {
      ...ctx,
      model: eagerModel,
      optimizer: eagerOpt,
      rng: r2,
      graph: null,
      iter: 0,
    }))
      .loss;
    const e2 = (await trainStep([batch], {
      ...ctx,
      model: eagerModel,
      optimizer: eagerOpt,
      rng: r2,
      graph: null,
      iter: 1,
    }))
      .loss;
    assert(
      Math.abs(e1 - l1) <= 1e-4 * e1 && Math.abs(e2 - l2) <= 1e-4 * e2,
      `eager ${e1} ${e2}, graph ${l1} ${l2}`,
    );
    await trainStep([toyBatch(7, 1, 64, 32)], { ...ctx, iter: 2 });
    assertEquals(steps.recorded, 2);
    steps.dispose();
    for (const m of [model, eagerModel]) m.dispose();
    for (const o of [opt, eagerOpt]) o.dispose();
  },
});

Deno.test("train.graph resolves: auto is on for tensorflow without recompute; on refuses what it cannot do", () => {
  assert(resolveGraph("auto", "tensorflow", false).graph);
  assert(resolveGraph("on", "tensorflow", false).graph);
  assertEquals(resolveGraph("off", "tensorflow", false), { graph: false, line: "graph: off (op by op)" });
  const wasm = resolveGraph("auto", "wasm", false);
  assert(
    !wasm.graph && wasm.line.includes("needs the native tensorflow backend (this run: wasm)"),
    wasm.line,
  );
  const rc = resolveGraph("auto", "tensorflow", true);
  assert(!rc.graph && rc.line.includes("train.recompute: true"), rc.line);
  assertThrows(
    () => resolveGraph("on", "webgpu", false),
    "train.graph: on needs the native tensorflow backend",
  );
  assertThrows(() => resolveGraph("on", "tensorflow", true), "cannot checkpoint the backbone");
});

Deno.test({
  name: "a loss that throws between the phases cancels the run; the next step records afresh; nothing leaks",
  ignore: !native,
  async fn() {
    const model = makeModel(0);
    const opt = new MomentumSGD({ momentum: 0.9, weightDecay: 0 });
    const steps = new GraphSteps(model, "fp32");
    const batch = toyBatch(8);
    const rng = new Rng(2);
    const image = { data: batch.image, shape: [2, 32, 64, 3] as [number, number, number, number] };
    const before = tf.memory().numTensors;
    await assertRejects(
      () =>
        steps.gradients(image, rng, () => {
          throw new Error("the host loss failed");
        }),
      "the host loss failed",
    );
    model.discardBnUpdates(); // as after a failed op-by-op step: the forward's statistics are not committed
    assertEquals(steps.recorded, 0, "the graph of the abandoned run was kept");
    assertEquals(tf.memory().numTensors, before, "tensors leaked");
    const r = await trainStep([batch], {
      model,
      optimizer: opt,
      loss: lossOptions,
      rng,
      iter: 0,
      lr: 0.05,
      graph: steps,
    });
    assert(Number.isFinite(r.loss));
    assertEquals(steps.recorded, 1);
    steps.dispose();
    model.dispose();
    opt.dispose();
  },
});

Deno.test({
  name: "graph steps: a model without projection head, two micro-batches per step: the op-by-op losses",
  ignore: !native,
  async fn() {
    const ceOnly = lossOptionsOf({ types: [{ type: "CrossEntropyLoss" }], coef: [1] });
    const make = () =>
      buildModel(
        modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 3, dropProb: 0.2 }),
        new Rng(4),
      );
    const [a, b] = [make(), make()];
    const [oa, ob] = [0, 1].map(() => new MomentumSGD({ momentum: 0.9, weightDecay: 0 }));
    const steps = new GraphSteps(b, "fp32");
    const [ra, rb] = [new Rng(3), new Rng(3)];
    for (let k = 0; k < 2; k++) {
      const micro = [toyBatch(20 + k, 1), toyBatch(30 + k, 1)];
      const ctx = { loss: ceOnly, iter: k, lr: 0.05 };
      const la = (await trainStep(micro, { ...ctx, model: a, optimizer: oa, rng: ra })).loss;
      const lb = (await trainStep(micro, { ...ctx, model: b, optimizer: ob, rng: rb, graph: steps })).loss;
      assert(Math.abs(la - lb) <= 1e-5 * la, `step ${k}: graph ${lb} vs op by op ${la}`);
      assertEquals(rb.getState(), ra.getState());
    }
    assertEquals(steps.recorded, 1, "two micro-batches of one size share a graph");
    steps.dispose();
    for (const m of [a, b]) m.dispose();
    for (const o of [oa, ob]) o.dispose();
  },
});
