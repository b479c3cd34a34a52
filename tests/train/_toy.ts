/** A learnable toy problem shared by the step tests (lib/train/step.ts, lib/train/graph_step.ts). */
import { lossOptionsOf } from "../../lib/run/options.ts";
import type { MicroBatch } from "../../lib/train/step.ts";
import { Rng } from "../../lib/util/rng.ts";

/** CE + 0.1 x pixel contrast, small enough for a 32x64 batch of 2. */
export const toyLossOptions = lossOptionsOf({
  types: [
    { type: "CrossEntropyLoss" },
    { type: "PixelContrastCrossEntropyLoss", max_samples: 64, max_views: 8, contrast_group_size: 2 },
  ],
  coef: [1, 0.1],
});

/** Left half class 0, right half class 1, bottom quarter class 2; the image encodes the class plus noise. */
export function toyBatch(seed: number, n = 2, h = 32, w = 64): MicroBatch {
  const rng = new Rng(seed);
  const image = new Float32Array(n * h * w * 3), label = new Int32Array(n * h * w);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const c = i >= (3 * h) / 4 ? 2 : j < w / 2 ? 0 : 1;
        const p = (b * h + i) * w + j;
        label[p] = c;
        for (let k = 0; k < 3; k++) image[p * 3 + k] = (k === c ? 0.8 : -0.8) + 0.2 * rng.normal();
      }
    }
  }
  return { image, label, shape: [n, h, w] };
}
