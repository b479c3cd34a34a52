/**
 * bf16 mixed precision for the native `tensorflow` backend: convolutions (forward, backprop input, backprop
 * filter) and matmuls run in bfloat16 inside libtensorflow, everything else (weights, gradients, BatchNorm,
 * loss, optimizer state) stays float32 — `torch.autocast("cpu", dtype=torch.bfloat16)`'s split.
 *
 * TF.js has no bf16 dtype, but tfjs-node's binding does not care: `binding.executeOp` returns `{id, shape,
 * dtype}` for any output and keeps the handle under that id; only the JS wrapper (`createOutputTensor`) rejects
 * dtype 14. So a bf16 op here is a short chain of raw binding calls whose bf16 intermediates never become
 * TF.js tensors: Cast(f32→bf16) of each float input, the op with `T = DT_BFLOAT16`, Cast(bf16→f32) of the
 * output, then the intermediates are deleted. libtensorflow's oneDNN runs the bf16 convolutions with its
 * AVX512-BF16/AMX kernels (ONEDNN_VERBOSE=1 shows `brg_conv_fwd:avx512_core_bf16` on an AVX512-BF16 CPU).
 * No rebuilt binding, graph or session is needed (the alternatives are weighed in scripts/native/README.md).
 *
 * bf16 is scoped: `withComputePrecision("bf16", f)` turns it on for the kernels `f` runs synchronously
 * (trainStep's pieces recorded on its Tape, and its backward); outside such a scope, and for non-float inputs,
 * the kernels are the float32 ones they wrap.
 *
 * Which ops: in PyTorch the activations stay bf16 between ops; here each bf16 op pays for casting its inputs and
 * output. Measured on an AVX512-BF16 CPU (2 cores; forward + both backprops, interleaved A/B medians): the
 * 270-channel 3x3 head conv of HRNet-W18-Small at 128x64 ran 1.64x faster (a 720-channel one, forward alone,
 * 2.3x), a 1x1 270→720 conv 1.17x, a 1000x720x1000 matmul 1.42x, while the small HRNet-W18-Small branch convs (18-144 channels, ~48 MFLOP) ran 5-13% slower, 1x1 convs
 * with 64 channels up to 25% slower and a resize-as-matmul (K = 64) 20% slower. So an op runs in bf16 only
 * when it is big and compute-bound: at least {@link Bf16Policy.minFlops} multiply-adds x 2 and
 * {@link Bf16Policy.minIntensity} FLOPs per element it reads or writes.
 *
 * Backprops of explicitly padded convs stay fp32: libtensorflow runs them with Eigen, not oneDNN (no
 * ONEDNN_VERBOSE line), and Eigen's bf16 filter gradient is 2e-2 (relative) off the fp32-accumulated one of
 * the same bf16 inputs, which oneDNN's matches exactly. The model never pads explicitly (lib/models
 * pads with tf.pad), so this costs nothing there.
 */
import { existsSync, readFileSync } from "node:fs";
import { tf } from "./tf.ts";

export type Precision = "fp32" | "bf16";
/** `train.precision`: `auto` = bf16 where the CPU computes bf16 natively and the backend is tensorflow. */
export type PrecisionRequest = Precision | "auto";

/** `TF_BFLOAT16` of tensorflow/c/tf_datatype.h (the binding exports no constant for it). */
export const TF_BFLOAT16 = 14;

/** TF.js kernels that run in bf16 inside a bf16 scope (BatchMatMul is libtensorflow's BatchMatMulV2). */
export const BF16_KERNELS = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "BatchMatMul"] as const;

interface RawMeta {
  id: number;
  shape: number[];
  dtype: number;
}

interface OpAttr {
  name: string;
  type: number;
  value: unknown;
}

interface NodeBackendLike {
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_BOOL: number;
    TF_FLOAT: number;
    executeOp(name: string, attrs: OpAttr[], ids: number[], outputs: number): RawMeta[];
    deleteTensor(id: number): void;
  };
  getInputTensorIds(inputs: tf.TensorInfo[]): number[];
  createOutputTensor(meta: RawMeta): tf.Tensor;
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
}

/** When an op is worth running in bf16 (see the module comment). */
export interface Bf16Policy {
  /** Minimum FLOPs (2 x multiply-adds) of the op. */
  minFlops: number;
  /** Minimum FLOPs per element of its inputs and output. */
  minIntensity: number;
}

/** Chosen on the measurements above; {@link setBf16Policy} changes it (tests use 0/0: every op in bf16). */
export const DEFAULT_BF16_POLICY: Readonly<Bf16Policy> = { minFlops: 1e8, minIntensity: 150 };
let policy: Bf16Policy = { ...DEFAULT_BF16_POLICY };

/** Sets the policy; returns the previous one. */
export function setBf16Policy(p: Bf16Policy): Bf16Policy {
  const before = policy;
  policy = { ...p };
  return before;
}

let active: Precision = "fp32";
let registered = false;
/** Ops run in bf16 since the process started, by libtensorflow op name (tests and the bench read it). */
export const bf16OpCounts = new Map<string, number>();

/** The precision the wrapped kernels use right now. */
export function computePrecision(): Precision {
  return active;
}

/**
 * Runs `fn` with convolutions and matmuls in `precision` (synchronous work only: the scope ends when `fn`
 * returns). Nested scopes restore the outer precision.
 */
export function withComputePrecision<T>(precision: Precision, fn: () => T): T {
  if (precision === "bf16" && !registered) {
    throw new Error(
      "bf16 compute needs the native tensorflow backend's bf16 kernels (registerNativeBf16Kernels)",
    );
  }
  const before = active;
  active = precision;
  try {
    const out = fn();
    if (out instanceof Promise) throw new Error("withComputePrecision: fn must be synchronous");
    return out;
  } finally {
    active = before;
  }
}

function castAttrs(b: NodeBackendLike, src: number, dst: number): OpAttr[] {
  return [
    { name: "SrcT", type: b.binding.TF_ATTR_TYPE, value: src },
    { name: "DstT", type: b.binding.TF_ATTR_TYPE, value: dst },
    { name: "Truncate", type: b.binding.TF_ATTR_BOOL, value: false }, // round to nearest even
  ];
}

/**
 * `name` with `T = bf16` on bf16 casts of the float32 inputs; returns the float32 cast of its one output. The
 * bf16 handles live only inside this call.
 */
export function executeInBf16(
  b: NodeBackendLike,
  name: string,
  attrs: OpAttr[],
  inputs: tf.TensorInfo[],
): tf.Tensor {
  const B = b.binding;
  const ids = b.getInputTensorIds(inputs);
  const temps: number[] = [];
  try {
    const inIds = ids.map((id, i) => {
      if (inputs[i].dtype !== "float32") return id; // e.g. the int32 input_sizes of the backprops
      const m = B.executeOp("Cast", castAttrs(b, B.TF_FLOAT, TF_BFLOAT16), [id], 1)[0];
      temps.push(m.id);
      return m.id;
    });
    const bfAttrs = attrs.map((a) =>
      a.name === "T" && a.type === B.TF_ATTR_TYPE && a.value === B.TF_FLOAT ? { ...a, value: TF_BFLOAT16 } : a
    );
    const out = B.executeOp(name, bfAttrs, inIds, 1)[0];
    temps.push(out.id);
    if (out.dtype !== TF_BFLOAT16) throw new Error(`${name} in bf16 returned dtype ${out.dtype}`);
    const back = B.executeOp("Cast", castAttrs(b, TF_BFLOAT16, B.TF_FLOAT), [out.id], 1)[0];
    bf16OpCounts.set(name, (bf16OpCounts.get(name) ?? 0) + 1);
    return b.createOutputTensor(back);
  } finally {
    for (const id of temps) B.deleteTensor(id);
  }
}

/**
 * Wraps the current `tensorflow` kernels of {@link BF16_KERNELS} (call after ./native_kernels.ts registered its
 * fixes, so that those are what runs in bf16). Idempotent; a no-op when tfjs-node's backend is not registered.
 */
export function registerNativeBf16Kernels(): void {
  if (registered || !tf.getKernel("Conv2D", "tensorflow")) return;
  for (const kernelName of BF16_KERNELS) {
    const inner = tf.getKernel(kernelName, "tensorflow");
    if (!inner) throw new Error(`tensorflow backend has no ${kernelName} kernel to run in bf16`);
    tf.unregisterKernel(kernelName, "tensorflow");
    tf.registerKernel({
      kernelName,
      backendName: "tensorflow",
      kernelFunc: (args) => {
        if (active !== "bf16" || !worthBf16(kernelName, args)) return inner.kernelFunc(args);
        // The wrapped kernel builds its attributes as usual; only its call into libtensorflow changes.
        const b = args.backend as unknown as NodeBackendLike;
        const bf16Backend = Object.create(b) as NodeBackendLike;
        bf16Backend.executeSingleOutput = (name, attrs, inputs) => executeInBf16(b, name, attrs, inputs);
        return inner.kernelFunc({ ...args, backend: bf16Backend as unknown as tf.KernelBackend });
      },
    });
  }
  registered = true;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** FLOPs and elements touched by one of {@link BF16_KERNELS}, from its inputs' shapes and attributes. */
export function opCost(
  kernelName: (typeof BF16_KERNELS)[number],
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, unknown>,
): { flops: number; elements: number } {
  if (kernelName === "BatchMatMul") {
    const { a, b } = inputs;
    const ta = attrs.transposeA === true, tb = attrs.transposeB === true;
    const ra = a.shape.length, rb = b.shape.length;
    const m = ta ? a.shape[ra - 1] : a.shape[ra - 2], k = ta ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
    const batch = Math.max(count(a.shape.slice(0, -2)), count(b.shape.slice(0, -2)));
    return { flops: 2 * batch * m * n * k, elements: count(a.shape) + count(b.shape) + batch * m * n };
  }
  // convolutions, NHWC: FLOPs = 2 x output elements x kh x kw x Cin, the same for forward and both backprops
  let x: readonly number[], w: readonly number[], y: number;
  if (kernelName === "Conv2D") {
    x = inputs.x.shape;
    w = inputs.filter.shape;
    const info = tf.backend_util.computeConv2DInfo(
      x as [number, number, number, number],
      w as [number, number, number, number],
      attrs.strides as number,
      (attrs.dilations ?? 1) as number,
      attrs.pad as "same",
      attrs.dimRoundingMode as undefined,
    );
    y = count(info.outShape);
  } else if (kernelName === "Conv2DBackpropInput") {
    x = attrs.inputShape as number[];
    w = inputs.filter.shape;
    y = count(inputs.dy.shape);
  } else {
    x = inputs.x.shape;
    w = attrs.filterShape as number[];
    y = count(inputs.dy.shape);
  }
  return { flops: 2 * y * w[0] * w[1] * w[2], elements: count(x) + y + count(w) };
}

function worthBf16(kernelName: (typeof BF16_KERNELS)[number], args: Parameters<tf.KernelFunc>[0]): boolean {
  const inputs = args.inputs as Record<string, tf.TensorInfo>;
  if (!Object.values(inputs).every((t) => t.dtype === "float32")) return false;
  if (kernelName.startsWith("Conv2DBackprop") && typeof (args.attrs as { pad?: unknown }).pad !== "string") {
    return false; // explicit padding: Eigen, not oneDNN (see the module comment)
  }
  const { flops, elements } = opCost(kernelName, inputs, args.attrs as Record<string, unknown>);
  return flops >= policy.minFlops && flops >= policy.minIntensity * elements;
}

/** CPU flags that mean native bf16 arithmetic (oneDNN's avx512_core_bf16 / avx512_core_amx kernels). */
export const BF16_CPU_FLAGS = ["avx512_bf16", "amx_bf16"] as const;

/** The CPU's bf16 flags from /proc/cpuinfo (empty where there are none or the file is unreadable). */
export function cpuBf16Flags(cpuinfo = "/proc/cpuinfo"): string[] {
  try {
    if (!existsSync(cpuinfo)) return [];
    const flags = readFileSync(cpuinfo, "utf8").match(/^flags\s*:\s*(.*)$/m)?.[1].split(/\s+/) ?? [];
    return BF16_CPU_FLAGS.filter((f) => flags.includes(f));
  } catch {
    return [];
  }
}

/** What a precision request becomes here, and the one line that says why. */
export interface PrecisionChoice {
  precision: Precision;
  requested: PrecisionRequest;
  line: string;
}

/**
 * Resolves `train.precision`: `fp32` stays; `bf16` and `auto` become bf16 only on the tensorflow backend on a
 * CPU with native bf16 (AVX512-BF16 or AMX) — elsewhere fp32, and the line says why.
 */
export function resolvePrecision(
  requested: PrecisionRequest,
  backend: string,
  flags: string[] = cpuBf16Flags(),
  /** The step runs as a recorded graph (lib/train/graph_step.ts), where grappler picks the bf16 ops. */
  graph = false,
): PrecisionChoice {
  if (requested === "fp32") return { precision: "fp32", requested, line: "precision: fp32" };
  if (backend !== "tensorflow") {
    return {
      precision: "fp32",
      requested,
      line:
        `precision: fp32 (${requested} asked, but bf16 compute exists only on the native tensorflow backend; ` +
        `this run uses ${backend})`,
    };
  }
  if (flags.length === 0) {
    return {
      precision: "fp32",
      requested,
      line: `precision: fp32 (${requested} asked, but this CPU has no native bf16 arithmetic: neither ` +
        `${BF16_CPU_FLAGS.join(" nor ")} in /proc/cpuinfo)`,
    };
  }
  return {
    precision: "bf16",
    requested,
    line: graph
      ? `precision: bf16 (CPU ${
        flags.join(", ")
      }); in the graph step grappler's oneDNN auto mixed precision ` +
        "picks the bf16 ops (convolutions, matmuls and the elementwise ops between them); master weights, BN " +
        "statistics, loss and optimizer in fp32"
      : `precision: bf16 for convolutions and matmuls (CPU ${flags.join(", ")}); ` +
        "weights, BatchNorm, loss and optimizer in fp32",
  };
}
