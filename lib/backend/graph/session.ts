/**
 * Runs a recorded graph (./record.ts) in a TensorFlow session: whole, or as a partial run in phases (feed some
 * inputs, fetch some outputs, then feed more: the forward, a host computation in between, then the backward,
 * with the forward's activations kept inside the session).
 *
 * `bf16: true` turns on grappler's oneDNN bf16 auto mixed precision (`auto_mixed_precision_onednn_bfloat16`):
 * TensorFlow itself chooses which ops run in bfloat16 (convolutions, matmuls and the elementwise ops between
 * them) and inserts the casts; weights, fetched values and reductions it keeps in float32.
 *
 * Values cross as host copies: feeds are TF.js tensors or typed arrays (copied into TF_Tensors), fetches
 * come back as new TF.js tensors (the caller disposes them).
 */
import { tf } from "../tf.ts";
import { newTensor, outputArray, pointerArray, readTensor, Status, tfC, type TfOutput } from "./tf_c.ts";
import { jsDtype, tfDtype } from "./record.ts";

export interface SessionOptions {
  /** grappler's oneDNN bf16 auto mixed precision. */
  bf16?: boolean;
}

/**
 * A serialized ConfigProto (hand-encoded; field numbers from tensorflow/core/protobuf/rewriter_config.proto
 * of TensorFlow 2.21): graph_options (10) { rewrite_options (10) { ... } } with
 * - disable_tfg_optimizer (32) = true, always: grappler's MLIR pass runs no optimization by default, but its
 *   import calls into LLVM, and once WebGPU's software Vulkan (Mesa) has loaded its own libLLVM into the
 *   process those calls resolve there and crash (SIGBUS in llvm::APFloat::convert, seen in `deno test`);
 * - auto_mixed_precision_onednn_bfloat16 (31) = ON (1) with `bf16`.
 */
export function configProto(opts: SessionOptions): Uint8Array<ArrayBuffer> {
  const rewrite = [...(opts.bf16 ? [248, 1, 1] : []), 128, 2, 1]; // in field order, as protobuf writes it
  return new Uint8Array([82, rewrite.length + 2, 82, rewrite.length, ...rewrite]);
}

/** A value to feed: a TF.js tensor (read back) or host data with its dtype and shape. */
export type FeedValue = tf.Tensor | {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: tf.DataType;
};

function toTfTensor(v: FeedValue, what: string): Deno.PointerValue {
  if (v instanceof tf.Tensor) {
    return newTensor(tfDtype(v.dtype), v.shape, v.dataSync() as Float32Array);
  }
  const n = v.shape.reduce((a, b) => a * b, 1);
  if (v.data.length !== n) {
    throw new Error(`backend/graph: feed '${what}' has ${v.data.length} values, not ${n}`);
  }
  return newTensor(tfDtype(v.dtype), v.shape, v.data);
}

function toTfjs(t: Deno.PointerValue): tf.Tensor {
  const { dtype, shape, data } = readTensor(t);
  const js = jsDtype(dtype);
  const buf = data.buffer as ArrayBuffer;
  const values = js === "float32"
    ? new Float32Array(buf)
    : js === "int32"
    ? new Int32Array(buf)
    : new Uint8Array(buf);
  return tf.tensor(values, shape, js);
}

export class GraphSession {
  readonly #status = new Status();
  readonly #session: Deno.PointerValue;
  #closed = false;

  constructor(graph: Deno.PointerValue, opts: SessionOptions = {}) {
    const C = tfC();
    const o = C.TF_NewSessionOptions();
    try {
      const cfg = configProto(opts);
      C.TF_SetConfig(o, cfg, BigInt(cfg.length), this.#status.ptr);
      this.#status.check("backend/graph: session config");
      this.#session = C.TF_NewSession(graph, o, this.#status.ptr);
      this.#status.check("backend/graph: new session");
    } finally {
      C.TF_DeleteSessionOptions(o);
    }
  }

  /** One whole run: feeds in, fetches out as TF.js tensors. */
  run(feeds: [TfOutput, FeedValue, string][], fetches: TfOutput[]): tf.Tensor[] {
    this.#open();
    return exchange(feeds, fetches, (inputs, values, outputs, out) => {
      tfC().TF_SessionRun(
        this.#session,
        null,
        inputs,
        values,
        feeds.length,
        outputs,
        out,
        fetches.length,
        new Uint8Array(8),
        0,
        null,
        this.#status.ptr,
      );
      this.#status.check("backend/graph: run");
    });
  }

  /**
   * A partial run declaring every input it will be fed and every output it will fetch; call `step` in order,
   * each with some feeds and fetches, until all are used (TensorFlow requires it).
   */
  partial(inputs: TfOutput[], outputs: TfOutput[]): PartialRun {
    this.#open();
    const C = tfC();
    const handle = new BigUint64Array(1);
    C.TF_SessionPRunSetup(
      this.#session,
      outputArray(inputs),
      inputs.length,
      outputArray(outputs),
      outputs.length,
      new Uint8Array(8),
      0,
      handle,
      this.#status.ptr,
    );
    this.#status.check("backend/graph: partial run set-up");
    return new PartialRun(this.#session, Deno.UnsafePointer.create(handle[0]));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const C = tfC();
    C.TF_CloseSession(this.#session, this.#status.ptr);
    C.TF_DeleteSession(this.#session, this.#status.ptr);
  }

  #open(): void {
    if (this.#closed) throw new Error("backend/graph: session closed");
  }
}

export class PartialRun {
  readonly #status = new Status();
  #done = false;
  constructor(readonly session: Deno.PointerValue, readonly handle: Deno.PointerValue) {}

  step(feeds: [TfOutput, FeedValue, string][], fetches: TfOutput[]): tf.Tensor[] {
    if (this.#done) throw new Error("backend/graph: partial run already released");
    return exchange(feeds, fetches, (inputs, values, outputs, out) => {
      tfC().TF_SessionPRun(
        this.session,
        this.handle,
        inputs,
        values,
        feeds.length,
        outputs,
        out,
        fetches.length,
        new Uint8Array(8),
        0,
        this.#status.ptr,
      );
      this.#status.check("backend/graph: partial run");
    });
  }

  /**
   * Frees the handle. A run abandoned between its phases (an error in the host computation) stays inside the
   * session, holding what it computed, until the session is closed (which cancels it).
   */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    tfC().TF_DeletePRunHandle(this.handle);
  }
}

/** Copies the feeds into TF_Tensors, runs `call` on the C arrays, frees the feeds, collects the fetches. */
function exchange(
  feeds: [TfOutput, FeedValue, string][],
  fetches: TfOutput[],
  call: (
    inputs: Uint8Array<ArrayBuffer>,
    values: BigUint64Array<ArrayBuffer>,
    outputs: Uint8Array<ArrayBuffer>,
    out: BigUint64Array<ArrayBuffer>,
  ) => void,
): tf.Tensor[] {
  const values: Deno.PointerValue[] = [];
  const out = new BigUint64Array(Math.max(fetches.length, 1));
  try {
    for (const [, v, name] of feeds) values.push(toTfTensor(v, name));
    call(outputArray(feeds.map((f) => f[0])), pointerArray(values), outputArray(fetches), out);
  } finally {
    for (const v of values) tfC().TF_DeleteTensor(v);
  }
  return collect(out, fetches.length);
}

function collect(out: BigUint64Array, n: number): tf.Tensor[] {
  const C = tfC();
  const res: tf.Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const p = Deno.UnsafePointer.create(out[i]);
    try {
      res.push(toTfjs(p));
    } finally {
      C.TF_DeleteTensor(p);
    }
  }
  return res;
}
