/**
 * Gradients that TensorFlow.js 4.22 lacks for ops a segmentation train step (and its losses) may use. They are
 * backend-independent (built from ops) and registered once, for every backend, by `initBackend`.
 *
 * - Comparisons and logical ops (Equal, NotEqual, Greater, Less, LessEqual, LogicalAnd/Or/Not): zero, as in
 *   TensorFlow. Without these, any loss that builds a mask from a tensor depending on the weights
 *   (`where(greater(x, 0), ...)`) fails with "gradient function not found".
 * - GatherNd: scatterND of dy (duplicates summed). ScatterNd: gatherND of dy for the updates.
 * - StridedSlice: dy scattered back to the selected positions (found by slicing an index tensor).
 * - TopK: dy of the values scattered back to their indices along the last axis.
 * - FlipLeftRight: flipped dy.
 */
import { tf } from "./tf.ts";

let registered: string[] | undefined;

const ZERO_GRAD_BINARY = ["Equal", "NotEqual", "Greater", "Less", "LessEqual", "LogicalAnd", "LogicalOr"];

/** Registers the gradients above that are still missing (idempotent); returns the kernel names it covered. */
export function registerMissingGradients(): string[] {
  if (registered) return registered;
  const done: string[] = [];
  const add = (cfg: tf.GradConfig) => {
    if (tf.getGradient(cfg.kernelName)) return;
    tf.registerGradient(cfg);
    done.push(cfg.kernelName);
  };
  for (const k of ZERO_GRAD_BINARY) {
    add({
      kernelName: k,
      inputsToSave: ["a", "b"],
      gradFunc: (_dy, saved) => ({ a: () => tf.zerosLike(saved[0]), b: () => tf.zerosLike(saved[1]) }),
    });
  }
  add({
    kernelName: "LogicalNot",
    inputsToSave: ["x"],
    gradFunc: (_dy, saved) => ({ x: () => tf.zerosLike(saved[0]) }),
  });
  add({
    kernelName: "GatherNd",
    inputsToSave: ["params", "indices"],
    gradFunc: (dy, saved) => {
      const [params, indices] = saved;
      return {
        params: () => tf.scatterND(indices, dy as tf.Tensor, params.shape),
        indices: () => tf.zerosLike(indices),
      };
    },
  });
  add({
    kernelName: "ScatterNd",
    inputsToSave: ["indices"],
    gradFunc: (dy, saved) => {
      const [indices] = saved;
      return { updates: () => tf.gatherND(dy as tf.Tensor, indices), indices: () => tf.zerosLike(indices) };
    },
  });
  add({
    kernelName: "StridedSlice",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      return {
        x: () => {
          const a = attrs as unknown as {
            begin: number[];
            end: number[];
            strides: number[];
            beginMask?: number;
            endMask?: number;
            ellipsisMask?: number;
            newAxisMask?: number;
            shrinkAxisMask?: number;
          };
          // which flat positions of x the slice read: slice an index tensor the same way
          const idx = tf.reshape(tf.range(0, x.size, 1, "int32"), x.shape);
          const picked = tf.stridedSlice(
            idx,
            a.begin,
            a.end,
            a.strides,
            a.beginMask,
            a.endMask,
            a.ellipsisMask,
            a.newAxisMask,
            a.shrinkAxisMask,
          );
          const flat = tf.scatterND(tf.reshape(picked, [-1, 1]), tf.reshape(dy as tf.Tensor, [-1]), [x.size]);
          return tf.reshape(flat, x.shape);
        },
      };
    },
  });
  add({
    kernelName: "TopK",
    inputsToSave: ["x"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [x, indices] = saved;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
      return {
        x: () => {
          const n = x.shape[x.rank - 1], k = indices.shape[indices.rank - 1];
          const rows = x.size / n;
          const base = tf.mul(tf.reshape(tf.range(0, rows, 1, "int32"), [rows, 1]), tf.scalar(n, "int32"));
          const flat = tf.add(tf.reshape(indices, [rows, k]), base);
          const g = tf.scatterND(tf.reshape(flat, [-1, 1]), tf.reshape(dy, [-1]), [x.size]);
          return tf.reshape(g, x.shape);
        },
      };
    },
  });
  add({
    kernelName: "FlipLeftRight",
    gradFunc: (dy) => ({ image: () => tf.reverse(dy as tf.Tensor, 2) }),
  });
  registered = done;
  return done;
}
