/**
 * Records what TF.js computes on the native backend into a TensorFlow graph, so that it can be run again as one
 * graph (./session.ts): grappler's fusions and oneDNN bf16 auto mixed precision, the executor running
 * independent ops side by side, no per-op dispatch through TF.js.
 *
 * How: while `record(f)` runs `f`, the backend's binding is wrapped. Every `executeOp(name, attrs, inputs)` runs
 * as usual (so `f` sees real tensors, shapes and values) and is also added to the graph as an operation of the
 * same name and attributes; every tensor TF.js uploads from JS values (`createTensor`: shape vectors, scalars,
 * index tables) becomes a `Const`. Tensors that exist before `f` and change between runs (weights, the batch,
 * dropout masks) must be declared with `placeholder(t)` first: each becomes a `Placeholder` fed on every run.
 * A read-back (`dataSync`) inside `f` is refused: a graph cannot stop for the host. A tensor in the backend
 * before `f` that is neither computed in `f` nor declared is refused too; but TF.js uploads tensors made from JS
 * values lazily, at their first use, so one made before `f` and first used inside becomes a Const (declare it
 * if it changes between runs).
 *
 * What a recorded graph assumes: the same op sequence on every run, i.e. shapes fixed and no branch on values
 * (true of a model's forward and backward at a fixed input size).
 */
import { tf } from "../tf.ts";
import { cstr, newTensor, outputArray, outputStruct, Status, type TfC, tfC, type TfOutput } from "./tf_c.ts";
import { type InputArg, parseOpDef } from "./opdef.ts";

interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}

interface Meta {
  id: number;
  shape: number[];
  dtype: number;
}

interface Binding {
  TF_ATTR_STRING: number;
  TF_ATTR_INT: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_SHAPE: number;
  executeOp(name: string, attrs: OpAttr[], ids: number[], outputs: number): Meta[];
  createTensor(shape: number[], dtype: number, values: ArrayBufferView): number;
  tensorDataSync(id: number): ArrayBufferView;
}

interface NodeBackend {
  binding: Binding;
  getInputTensorIds(ts: tf.TensorInfo[]): number[];
}

/** The native backend, or a clear error. */
export function nodeBackend(): NodeBackend {
  const b = tf.backend() as unknown as Partial<NodeBackend>;
  if (tf.getBackend() !== "tensorflow" || !b.binding || typeof b.getInputTensorIds !== "function") {
    throw new Error(`backend/graph: needs the native tensorflow backend (current: ${tf.getBackend()})`);
  }
  return b as NodeBackend;
}

/** TF_DataType of a TF.js dtype. */
export function tfDtype(dtype: tf.DataType): number {
  switch (dtype) {
    case "float32":
      return 1;
    case "int32":
      return 3;
    case "bool":
      return 10;
    default:
      throw new Error(`backend/graph: no graph tensors of dtype ${dtype}`);
  }
}

/** TF.js dtype of a TF_DataType. */
export function jsDtype(dtype: number): tf.DataType {
  switch (dtype) {
    case 1:
      return "float32";
    case 3:
      return "int32";
    case 10:
      return "bool";
    default:
      throw new Error(`backend/graph: no TF.js dtype for TF_DataType ${dtype}`);
  }
}

export interface GraphPlaceholder {
  name: string;
  output: TfOutput;
  dtype: tf.DataType;
  shape: number[];
}

export class GraphRecorder {
  readonly graph: Deno.PointerValue;
  readonly #status = new Status();
  readonly #C: TfC = tfC();
  /** binding tensor id -> the graph output holding the same value */
  readonly #map = new Map<number, TfOutput>();
  readonly #opDefs = new Map<string, InputArg[]>();
  readonly placeholders: GraphPlaceholder[] = [];
  #nOps = 0;
  #recording = false;
  /** set while placeholder() uploads a tensor: that upload is the feed, not a Const */
  #feeding = false;
  #disposed = false;
  /** Number of operations added (Consts and Placeholders included). */
  get size(): number {
    return this.#nOps;
  }

  constructor() {
    this.graph = this.#C.TF_NewGraph();
  }

  /** Frees the graph (after the sessions that run it are closed). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#C.TF_DeleteGraph(this.graph);
  }

  /** The binding id of a TF.js tensor (uploading it if TF.js still holds it as JS values). */
  static idOf(t: tf.Tensor): number {
    return nodeBackend().getInputTensorIds([t])[0];
  }

  /**
   * Declares `t` an input of the graph: a Placeholder fed on each run. `t` exists before `record`, or is made
   * inside it from JS values (e.g. a dropout mask) and declared before its first use.
   */
  placeholder(t: tf.Tensor, name: string): GraphPlaceholder {
    this.#feeding = true;
    let id: number;
    try {
      id = GraphRecorder.idOf(t);
    } finally {
      this.#feeding = false;
    }
    const existing = this.#map.get(id);
    if (existing) throw new Error(`backend/graph: '${name}' is already in the graph`);
    const C = this.#C;
    const d = C.TF_NewOperation(this.graph, cstr("Placeholder"), cstr(`feed_${this.placeholders.length}`));
    C.TF_SetAttrType(d, cstr("dtype"), tfDtype(t.dtype));
    C.TF_SetAttrShape(d, cstr("shape"), new BigInt64Array(t.shape.map(BigInt)), t.shape.length);
    const op = this.#finish(d, `Placeholder '${name}'`);
    const p: GraphPlaceholder = { name, output: { op, index: 0 }, dtype: t.dtype, shape: [...t.shape] };
    this.#map.set(id, p.output);
    this.placeholders.push(p);
    return p;
  }

  /** The graph output computing `t`, a tensor `record` produced (or a placeholder). */
  outputOf(t: tf.Tensor, what: string): TfOutput {
    const o = this.#map.get(GraphRecorder.idOf(t));
    if (!o) throw new Error(`backend/graph: ${what} was not computed inside the recorded function`);
    return o;
  }

  /**
   * Runs `f` eagerly and mirrors each native op it executes into the graph. Inputs that are neither computed
   * inside `f` nor declared placeholders are refused (they would be frozen into the graph unnoticed).
   */
  record<T>(f: () => T): T {
    if (this.#recording) throw new Error("backend/graph: record() is not re-entrant");
    const backend = nodeBackend();
    const orig = backend.binding;
    // the binding's methods are read-only own properties: shadow them on an object inheriting the rest
    const proxy = Object.create(orig, {
      executeOp: {
        value: (name: string, attrs: OpAttr[], ids: number[], n: number) => {
          const metas = orig.executeOp(name, attrs, ids, n);
          this.#addOp(orig, name, attrs, ids, metas);
          return metas;
        },
      },
      createTensor: {
        value: (shape: number[], dtype: number, values: ArrayBufferView) => {
          const id = orig.createTensor(shape, dtype, values);
          if (!this.#feeding) this.#map.set(id, this.#addConst(shape, dtype, values));
          return id;
        },
      },
      tensorDataSync: {
        value: () => {
          throw new Error(
            "backend/graph: a read-back (dataSync/data) inside a recorded function; the graph cannot stop for the host",
          );
        },
      },
    }) as Binding;
    this.#recording = true;
    backend.binding = proxy;
    try {
      return f();
    } finally {
      backend.binding = orig;
      this.#recording = false;
    }
  }

  #finish(d: Deno.PointerValue, what: string): Deno.PointerValue {
    const op = this.#C.TF_FinishOperation(d, this.#status.ptr);
    this.#status.check(`backend/graph: ${what}`);
    this.#nOps++;
    return op;
  }

  #addConst(shape: number[], dtype: number, values: ArrayBufferView): TfOutput {
    const C = this.#C;
    const d = C.TF_NewOperation(this.graph, cstr("Const"), cstr(`const_${this.#nOps}`));
    const t = newTensor(dtype, shape, values);
    try {
      C.TF_SetAttrTensor(d, cstr("value"), t, this.#status.ptr);
      this.#status.check("backend/graph: Const value");
    } finally {
      C.TF_DeleteTensor(t);
    }
    C.TF_SetAttrType(d, cstr("dtype"), dtype);
    return { op: this.#finish(d, "Const"), index: 0 };
  }

  #inputArgs(name: string): InputArg[] {
    let args = this.#opDefs.get(name);
    if (!args) {
      const C = this.#C;
      const buf = C.TF_NewBuffer();
      try {
        C.TF_GraphGetOpDef(this.graph, cstr(name), buf, this.#status.ptr);
        this.#status.check(`backend/graph: OpDef of ${name}`);
        // TF_Buffer {const void* data; size_t length; ...}
        const view = new Deno.UnsafePointerView(buf!);
        const data = Deno.UnsafePointer.create(view.getBigUint64(0));
        const len = Number(view.getBigUint64(8));
        const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(data!, len)).slice();
        args = parseOpDef(bytes).inputs;
      } finally {
        C.TF_DeleteBuffer(buf);
      }
      this.#opDefs.set(name, args);
    }
    return args;
  }

  #input(id: number, op: string): TfOutput {
    const o = this.#map.get(id);
    if (!o) {
      throw new Error(
        `backend/graph: ${op} reads a tensor (binding id ${id}) made outside the recorded function; ` +
          "declare it with placeholder()",
      );
    }
    return o;
  }

  #addOp(B: Binding, name: string, attrs: OpAttr[], ids: number[], metas: Meta[]): void {
    const C = this.#C;
    const d = C.TF_NewOperation(this.graph, cstr(name), cstr(`${name}_${this.#nOps}`));
    let next = 0;
    for (const arg of this.#inputArgs(name)) {
      if (arg.kind === "single") {
        C.TF_AddInput(d, outputStruct(this.#input(ids[next++], name)));
      } else if (arg.kind === "number") {
        const n = attrs.find((a) => a.name === arg.attr)?.value;
        if (typeof n !== "number") {
          throw new Error(`backend/graph: ${name} without its '${arg.attr}' attribute`);
        }
        C.TF_AddInputList(d, outputArray(ids.slice(next, next + n).map((id) => this.#input(id, name))), n);
        next += n;
      } else {
        throw new Error(`backend/graph: ${name}'s input '${arg.name}' is a type list (not recorded)`);
      }
    }
    if (next !== ids.length) {
      throw new Error(`backend/graph: ${name} was given ${ids.length} inputs, its OpDef takes ${next}`);
    }
    for (const a of attrs) {
      const an = cstr(a.name);
      const v = a.value;
      if (a.type === B.TF_ATTR_STRING) {
        const s = new TextEncoder().encode(String(v));
        C.TF_SetAttrString(d, an, s, BigInt(s.length));
      } else if (a.type === B.TF_ATTR_INT) {
        if (Array.isArray(v)) C.TF_SetAttrIntList(d, an, new BigInt64Array(v.map(BigInt)), v.length);
        else C.TF_SetAttrInt(d, an, BigInt(v as number));
      } else if (a.type === B.TF_ATTR_FLOAT) {
        if (Array.isArray(v)) C.TF_SetAttrFloatList(d, an, new Float32Array(v), v.length);
        else C.TF_SetAttrFloat(d, an, v as number);
      } else if (a.type === B.TF_ATTR_BOOL) {
        if (Array.isArray(v)) {
          C.TF_SetAttrBoolList(d, an, new Uint8Array(v.map((x) => (x ? 1 : 0))), v.length);
        } else C.TF_SetAttrBool(d, an, v ? 1 : 0);
      } else if (a.type === B.TF_ATTR_TYPE) {
        C.TF_SetAttrType(d, an, v as number);
      } else if (a.type === B.TF_ATTR_SHAPE) {
        const dims = v as number[];
        C.TF_SetAttrShape(d, an, new BigInt64Array(dims.map(BigInt)), dims.length);
      } else {
        throw new Error(`backend/graph: ${name}'s attribute '${a.name}' has an unknown type ${a.type}`);
      }
    }
    const op = this.#finish(d, name);
    const n = C.TF_OperationNumOutputs(op);
    if (n !== metas.length) {
      throw new Error(`backend/graph: ${name} has ${n} outputs in the graph, ${metas.length} in eager`);
    }
    metas.forEach((m, index) => this.#map.set(m.id, { op, index }));
  }
}
