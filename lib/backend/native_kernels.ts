/**
 * Kernel fixes for the native `tensorflow` backend (tfjs-node 4.22's kernels over libtensorflow).
 *
 * tfjs-node's Conv2DBackpropInput and Conv2DBackpropFilter refuse explicit padding ("TF Backend supports only
 * 'valid' and 'same' padding"), although its Conv2D forward accepts it and libtensorflow's backprop ops take
 * `padding: "EXPLICIT"` with `explicit_paddings`. PaddleSeg's convs use symmetric `padding=k//2`, which for a
 * stride-2 3x3 conv on an even input is not TF's 'same'; so training such a conv needs these. Other paddings
 * go to the original kernels.
 */
import { tf } from "./tf.ts";

type PadAttr = "same" | "valid" | number | [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];

interface NodeBackendLike {
  binding: {
    TF_ATTR_INT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_ATTR_TYPE: number;
    TF_FLOAT: number;
  };
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.TensorInfo[]): tf.Tensor;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat?: string;
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
}

function opAttrs(b: NodeBackendLike, info: tf.backend_util.Conv2DInfo): unknown[] {
  const { top, bottom, left, right } = info.padInfo;
  return [
    { name: "T", type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT },
    { name: "strides", type: b.binding.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: "padding", type: b.binding.TF_ATTR_STRING, value: "EXPLICIT" },
    { name: "explicit_paddings", type: b.binding.TF_ATTR_INT, value: [0, 0, top, bottom, left, right, 0, 0] },
    { name: "data_format", type: b.binding.TF_ATTR_STRING, value: "NHWC" },
    { name: "use_cudnn_on_gpu", type: b.binding.TF_ATTR_BOOL, value: true },
    { name: "dilations", type: b.binding.TF_ATTR_INT, value: [1, 1, 1, 1] },
  ];
}

function isExplicit(pad: PadAttr): boolean {
  return typeof pad !== "string";
}

function checkNhwc(kernel: string, dataFormat?: string): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC") {
    throw new Error(
      `${kernel} on tensorflow with explicit padding: only NHWC is supported (got ${dataFormat})`,
    );
  }
}

let done = false;

/** Re-registers the two backprop kernels for `tensorflow` (call after tfjs-node registered its kernels). */
export function registerNativeKernelFixes(): void {
  if (done) return;
  const input = tf.getKernel("Conv2DBackpropInput", "tensorflow");
  const filter = tf.getKernel("Conv2DBackpropFilter", "tensorflow");
  if (!input || !filter) return; // not tfjs-node's backend: nothing to fix
  tf.unregisterKernel("Conv2DBackpropInput", "tensorflow");
  tf.registerKernel({
    kernelName: "Conv2DBackpropInput",
    backendName: "tensorflow",
    kernelFunc: (args) => {
      const a = args.attrs as unknown as ConvAttrs;
      if (!isExplicit(a.pad)) return input.kernelFunc(args);
      checkNhwc("Conv2DBackpropInput", a.dataFormat);
      const dy = args.inputs.dy as tf.TensorInfo, f = args.inputs.filter as tf.TensorInfo;
      const info = tf.backend_util.computeConv2DInfo(
        a.inputShape!,
        f.shape as [number, number, number, number],
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const b = args.backend as unknown as NodeBackendLike;
      const sizes = tf.tensor1d(a.inputShape!, "int32");
      try {
        return b.executeSingleOutput("Conv2DBackpropInput", opAttrs(b, info), [sizes, f, dy]);
      } finally {
        sizes.dispose();
      }
    },
  });
  tf.unregisterKernel("Conv2DBackpropFilter", "tensorflow");
  tf.registerKernel({
    kernelName: "Conv2DBackpropFilter",
    backendName: "tensorflow",
    kernelFunc: (args) => {
      const a = args.attrs as unknown as ConvAttrs;
      if (!isExplicit(a.pad)) return filter.kernelFunc(args);
      checkNhwc("Conv2DBackpropFilter", a.dataFormat);
      const x = args.inputs.x as tf.TensorInfo, dy = args.inputs.dy as tf.TensorInfo;
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        a.filterShape!,
        a.strides,
        1,
        a.pad,
        a.dimRoundingMode,
      );
      const b = args.backend as unknown as NodeBackendLike;
      const sizes = tf.tensor1d(a.filterShape!, "int32");
      try {
        return b.executeSingleOutput("Conv2DBackpropFilter", opAttrs(b, info), [x, sizes, dy]);
      } finally {
        sizes.dispose();
      }
    },
  });
  done = true;
}
