/**
 * The benchmark workload shared by bench/train.ts, eval.ts and gpu.ts: configurations, the seed config's loss
 * and deterministic inputs. Imports nothing that loads a backend (bench/gpu.ts is bundled without them).
 */
import { join } from "node:path";
import type { LossOptions } from "../lib/losses/mod.ts";
import { lossOptionsOf } from "../lib/run/options.ts";
import { Rng } from "../lib/util/rng.ts";
import { OUT_DIR } from "./_common.ts";

export type Backbone = "HRNet_W18_Small_V1" | "HRNet_W18_Small_V2" | "HRNet_W48";

export interface TrainConfig {
  id: string;
  model: Backbone;
  h: number;
  w: number;
  n: number;
}

export const TRAIN_CONFIGS: TrainConfig[] = [
  { id: "w18s2-b1", model: "HRNet_W18_Small_V2", h: 256, w: 512, n: 1 },
  { id: "w18s2-b2", model: "HRNet_W18_Small_V2", h: 256, w: 512, n: 2 },
  { id: "w48-b1", model: "HRNet_W48", h: 512, w: 1024, n: 1 },
  { id: "w48-b2", model: "HRNet_W48", h: 512, w: 1024, n: 2 },
];

/** Measured by `deno task bench gpu` only: the project's default CPU-sized model at a GPU-sized batch. */
export const GPU_CONFIGS: TrainConfig[] = [
  { id: "w18s1-b8", model: "HRNet_W18_Small_V1", h: 128, w: 256, n: 8 },
];

/** The seed config's loss (configs/hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml). */
export const SEED_LOSS: LossOptions = lossOptionsOf(
  {
    types: [
      { type: "CrossEntropyLoss" },
      {
        type: "PixelContrastCrossEntropyLoss",
        temperature: 0.1,
        base_temperature: 0.07,
        ignore_index: 255,
        max_samples: 1024,
        max_views: 100,
      },
    ],
    coef: [1, 0.1],
  },
);

/**
 * Deterministic inputs: normal-noise images and Cityscapes-like label maps (64x64-pixel class blocks over
 * all 19 classes, the bottom 1/16 of rows ignored), written to bench/out/ for the baselines:
 * float32 NHWC image bytes, then uint8 labels.
 */
export function makeInputs(n: number, h: number, w: number, seed = 9): {
  image: Float32Array;
  label: Int32Array;
  path: string;
} {
  const rng = new Rng(seed);
  const image = new Float32Array(n * h * w * 3);
  for (let i = 0; i < image.length; i++) image[i] = rng.normal();
  const label = new Int32Array(n * h * w);
  const u8 = new Uint8Array(n * h * w);
  for (let b = 0; b < n; b++) {
    const shift = rng.int(19);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = y >= h - (h >> 4) ? 255 : ((x >> 6) + 5 * (y >> 6) + shift) % 19;
        label[(b * h + y) * w + x] = v;
        u8[(b * h + y) * w + x] = v;
      }
    }
  }
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `inputs_${n}x${h}x${w}.bin`);
  const bytes = new Uint8Array(image.byteLength + u8.length);
  bytes.set(new Uint8Array(image.buffer), 0);
  bytes.set(u8, image.byteLength);
  Deno.writeFileSync(path, bytes);
  return { image, label, path };
}
