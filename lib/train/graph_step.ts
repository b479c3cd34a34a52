/**
 * The model's forward and backward pass as one TensorFlow graph (`train.graph`: auto or on; native backend only),
 * recorded once per input shape from the same TF.js code (lib/backend/graph/record.ts) and run as a partial
 * run in two phases around the host-side loss:
 *
 *   phase A  feed image [n,H,W,3], weights, dropout masks -> fetch the SegOutputs and BN batch statistics
 *   host     loss on those outputs as TF.js tensors (the anchor sampler reads back, as in eager), and its
 *            gradient d loss / d output for each output
 *   phase B  feed those output gradients -> fetch the weight gradients (the forward's activations stayed
 *            in the session between the phases)
 *
 * Why: run op by op, libtensorflow cannot fuse, overlap independent ops (HRNet's branches) or keep bf16
 * activations between ops; as one graph, grappler does all three, and with `bf16` its oneDNN auto mixed
 * precision picks the bf16 ops itself (bench/ceiling.ts measured the gap).
 *
 * What changes against eager: nothing in the arithmetic of fp32 (the same TensorFlow kernels, in the same
 * order per value; grappler's fusions may change float rounding). Gradient checkpointing does not apply: the
 * session keeps the forward's activations (`resolveGraph` turns the graph off where `train.recompute` is set).
 */
import { tf } from "../backend/tf.ts";
import { type GraphPlaceholder, GraphRecorder } from "../backend/graph/record.ts";
import { type FeedValue, GraphSession } from "../backend/graph/session.ts";
import type { TfOutput } from "../backend/graph/tf_c.ts";
import { collectStepInputs, type DrawStepInput } from "../backend/graph/step_inputs.ts";
import { withComputePrecision } from "../backend/native_bf16.ts";
import type { Precision } from "../backend/native_bf16.ts";
import type { PendingBn, SegModel, SegOutputs } from "../models/mod.ts";
import { Rng } from "../util/rng.ts";

/** `train.graph` resolved for a run: whether steps run as graphs, and the line the trainer logs. */
export function resolveGraph(
  request: "auto" | "on" | "off",
  backendName: string,
  recompute: boolean,
): { graph: boolean; line: string } {
  if (request === "off") return { graph: false, line: "graph: off (op by op)" };
  const why = backendName !== "tensorflow"
    ? `needs the native tensorflow backend (this run: ${backendName})`
    : recompute
    ? "keeps every activation, so it cannot checkpoint the backbone (train.recompute: true)"
    : null;
  if (why) {
    if (request === "on") throw new Error(`train.graph: on ${why}; set train.graph to auto or off`);
    return { graph: false, line: `graph: off (train.graph auto: the graph step ${why})` };
  }
  return {
    graph: true,
    line: "graph: the model's forward and backward run as one TensorFlow graph, recorded in the first step " +
      "of each input size (train.graph: off runs op by op)",
  };
}

type OutputKey = keyof SegOutputs;
export const OUTPUT_KEYS: OutputKey[] = ["logitsUp", "logits4", "embed"];

interface Recorded {
  graph: GraphRecorder;
  session: GraphSession;
  image: GraphPlaceholder;
  weights: { name: string; feed: GraphPlaceholder }[];
  stepInputs: { feed: GraphPlaceholder; draw: DrawStepInput }[];
  outputs: { key: OutputKey; out: TfOutput; dy: GraphPlaceholder }[];
  /** The BN layers in the order the recorded forward queued their statistics, with the graph outputs. */
  bnStats: { bn: PendingBn["bn"]; mean: TfOutput; variance: TfOutput }[];
  grads: { name: string; out: TfOutput }[];
  /** Number of graph operations (diagnostics). */
  size: number;
}

/** The host side of one micro-batch: the loss and its gradient with respect to each model output. */
export type LossOfOutputs = (out: SegOutputs) => Promise<{
  /** d loss / d output for each output the loss used (the rest count as zero). */
  dOutputs: Partial<Record<OutputKey, tf.Tensor>>;
}>;

/** Graphs by input shape for one model; `dispose` closes their sessions. */
export class GraphSteps {
  readonly #graphs = new Map<string, Recorded>();
  constructor(
    readonly model: SegModel,
    readonly precision: Precision,
    readonly opts: { onRecord?: (r: { shape: number[]; ops: number; seconds: number }) => void } = {},
  ) {}

  /** Number of distinct input shapes recorded so far. */
  get recorded(): number {
    return this.#graphs.size;
  }

  /** Graph operations of the graph recorded for `shape` (0 if none). */
  graphSize(shape: readonly number[]): number {
    return this.#graphs.get(shape.join("x"))?.size ?? 0;
  }

  /**
   * Forward, host loss and backward of one micro-batch. `image` is [n,H,W,3]; BN batch statistics are queued on
   * the model as in eager (`commitBnUpdates`). Returns the weight gradients by parameter name (the caller
   * disposes them).
   */
  async gradients(
    image: { data: Float32Array; shape: [number, number, number, number] },
    rng: Rng,
    lossOf: LossOfOutputs,
  ): Promise<Record<string, tf.Tensor>> {
    const key = image.shape.join("x");
    let g = this.#graphs.get(key);
    if (!g) {
      const t0 = performance.now();
      // the recording runs the step once eagerly, on a copy of the generator: the run's draws are unchanged
      g = this.#record(image.shape, new Rng(rng.getState()));
      this.#graphs.set(key, g);
      this.opts.onRecord?.({
        shape: [...image.shape],
        ops: g.size,
        seconds: (performance.now() - t0) / 1000,
      });
    }
    const weights = this.model.trainableWeights();
    const run = g.session.partial(
      [
        g.image.output,
        ...g.weights.map((w) => w.feed.output),
        ...g.stepInputs.map((s) => s.feed.output),
        ...g.outputs.map((o) => o.dy.output),
      ],
      [
        ...g.outputs.map((o) => o.out),
        ...g.bnStats.flatMap((b) => [b.mean, b.variance]),
        ...g.grads.map((x) => x.out),
      ],
    );
    let fetchedA: tf.Tensor[] = [];
    const dys: tf.Tensor[] = [];
    let completed = false;
    try {
      const feedsA: [TfOutput, FeedValue, string][] = [
        [g.image.output, { data: image.data, shape: [...image.shape], dtype: "float32" }, "image"],
        ...g.weights.map(({ name, feed }): [TfOutput, FeedValue, string] => {
          const w = weights.get(name);
          if (!w) throw new Error(`graph step: the model has no weight '${name}' any more`);
          return [feed.output, w, name];
        }),
        ...g.stepInputs.map(({ feed, draw }): [TfOutput, FeedValue, string] => [
          feed.output,
          { data: draw(rng), shape: feed.shape, dtype: "float32" },
          feed.name,
        ]),
      ];
      fetchedA = run.step(feedsA, [
        ...g.outputs.map((o) => o.out),
        ...g.bnStats.flatMap((b) => [b.mean, b.variance]),
      ]);
      const out = {} as SegOutputs;
      g.outputs.forEach((o, i) => ((out as unknown as Record<string, tf.Tensor>)[o.key] = fetchedA[i]));
      g.bnStats.forEach((b, i) => {
        const k = g!.outputs.length + 2 * i;
        this.model.bnUpdates.push(b.bn, fetchedA[k] as tf.Tensor1D, fetchedA[k + 1] as tf.Tensor1D);
      });
      fetchedA = fetchedA.slice(0, g.outputs.length); // the BN statistics now belong to the model's queue
      const { dOutputs } = await lossOf(out);
      for (const o of g.outputs) {
        const d = dOutputs[o.key];
        dys.push(d ?? tf.zeros(o.dy.shape));
      }
      const grads = run.step(
        g.outputs.map((o, i) => [o.dy.output, dys[i], `d ${o.key}`]),
        g.grads.map((x) => x.out),
      );
      const named: Record<string, tf.Tensor> = {};
      g.grads.forEach((x, i) => (named[x.name] = grads[i]));
      completed = true;
      return named;
    } finally {
      run.release();
      tf.dispose(fetchedA);
      tf.dispose(dys);
      if (!completed) {
        // a partial run left between its phases (the loss threw) would hold its activations inside the
        // session for good: close the session, which cancels it, and record afresh next time
        this.#graphs.delete(key);
        g.session.close();
        g.graph.dispose();
      }
    }
  }

  #record(shape: [number, number, number, number], rng: Rng): Recorded {
    const model = this.model;
    if (model.bnUpdates.size !== 0) throw new Error("graph step: BN statistics are pending before recording");
    const rec = new GraphRecorder();
    const x = tf.zeros(shape) as tf.Tensor4D;
    const toDispose: tf.TensorContainer[] = [x];
    try {
      const image = rec.placeholder(x, "image");
      const weights = [...model.trainableWeights()].map(([name, v]) => ({
        name,
        feed: rec.placeholder(v, name),
      }));
      const stepInputs: Recorded["stepInputs"] = [];
      const outputs: Recorded["outputs"] = [];
      // recorded in fp32: the session's bf16 auto mixed precision chooses the bf16 ops (not our eager casts)
      const { value, grads } = withComputePrecision("fp32", () =>
        rec.record(() =>
          model.variableGrads(() => {
            const out = collectStepInputs(
              (t, draw) =>
                stepInputs.push({ feed: rec.placeholder(t, `step input ${stepInputs.length}`), draw }),
              () => model.forward(x, { training: true, rng }),
            );
            // a surrogate loss sum(output * dy): its gradient with respect to the weights is the backward
            // pass of the forward for output gradients dy, fed in phase B
            const terms: tf.Scalar[] = [];
            for (const key of OUTPUT_KEYS) {
              const t = out[key];
              if (!t) continue;
              const dyT = tf.tensor(new Float32Array(t.size), t.shape) as tf.Tensor;
              const dy = rec.placeholder(dyT, `d ${key}`);
              toDispose.push(dyT);
              // mapped now: the outputs are intermediates of variableGrads, gone after it
              outputs.push({ key, out: rec.outputOf(t, `output ${key}`), dy });
              terms.push(tf.sum(tf.mul(t, dyT)));
            }
            return tf.addN(terms) as tf.Scalar;
          })
        ));
      toDispose.push(value, grads);
      const bnStats = model.bnUpdates.pending().map((p) => ({
        bn: p.bn,
        mean: rec.outputOf(p.mean, "a BN batch mean"),
        variance: rec.outputOf(p.variance, "a BN batch variance"),
      }));
      const gradOuts = Object.entries(grads).map(([name, t]) => ({
        name,
        out: rec.outputOf(t, `gradient ${name}`),
      }));
      const session = new GraphSession(rec.graph, { bf16: this.precision === "bf16" });
      return {
        graph: rec,
        session,
        image,
        weights,
        stepInputs,
        outputs,
        bnStats,
        grads: gradOuts,
        size: rec.size,
      };
    } catch (e) {
      rec.dispose();
      throw e;
    } finally {
      model.discardBnUpdates();
      tf.dispose(toDispose);
    }
  }

  dispose(): void {
    for (const g of this.#graphs.values()) {
      g.session.close();
      g.graph.dispose();
    }
    this.#graphs.clear();
  }
}
