/** Shared test fixtures for lib/eval: synthetic Cityscapes-like frames and a closed-form predictor. */
import { tf } from "../../lib/backend/tf.ts";
import { CITYSCAPES_LABELS, ID_TO_TRAIN_ID } from "../../lib/data/cityscapes_labels.ts";
import type { SegPredictor } from "../../lib/eval/inference.ts";
import type { EvalSample } from "../../lib/eval/evaluate.ts";
import { Rng } from "../../lib/util/rng.ts";

export const EVAL_IDS = CITYSCAPES_LABELS.filter((l) => l.trainId !== 255);
export const IGNORED_IDS = CITYSCAPES_LABELS.filter((l) => l.trainId === 255);

/**
 * A synthetic frame: vertical stripes of labelIds (by default every one of the 19 evaluated classes, plus
 * ignored ids),
 * image = the class's official colour + uniform noise (±noise), so a nearest-colour classifier gets most but
 * not all pixels right. Returns labelIds, RGB and instanceIds (cars get instance ids 26000, 26001).
 */
export function syntheticFrame(
  seed: number,
  h: number,
  w: number,
  noise = 70,
  ids = [...EVAL_IDS.map((l) => l.id), ...IGNORED_IDS.slice(0, 6).map((l) => l.id)],
) {
  const rng = new Rng(seed);
  ids = [...ids];
  rng.shuffle(ids);
  const labelIds = new Uint8Array(h * w);
  const rgb = new Uint8Array(h * w * 3);
  const instanceIds = new Uint16Array(h * w);
  const stripe = w / ids.length;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // a bit of per-row jitter so that stripe borders are not straight
      const k = Math.min(ids.length - 1, Math.floor((x + ((y * 7 + seed) % 3)) / stripe));
      const id = ids[k];
      const i = y * w + x;
      labelIds[i] = id;
      instanceIds[i] = id === 26 ? 26000 + (y < h / 2 ? 0 : 1) : id;
      const color = CITYSCAPES_LABELS.find((l) => l.id === id)!.color;
      for (let c = 0; c < 3; c++) {
        rgb[i * 3 + c] = Math.max(0, Math.min(255, Math.round(color[c] + rng.uniform(-noise, noise))));
      }
    }
  }
  return { labelIds, rgb, instanceIds };
}

/** PaddleSeg's Normalize(mean = std = 0.5): (v/255 − 0.5)/0.5. */
export function normalize(rgb: Uint8Array): Float32Array {
  return Float32Array.from(rgb, (v) => (v / 255 - 0.5) / 0.5);
}

export function toTrainIds(labelIds: Uint8Array): Int32Array {
  return Int32Array.from(labelIds, (v) => ID_TO_TRAIN_ID[v]);
}

export function sampleFrom(
  name: string,
  rgb: Uint8Array,
  labelIds: Uint8Array,
  h: number,
  w: number,
): EvalSample {
  return { name, image: normalize(rgb), height: h, width: w, label: toTrainIds(labelIds), rgb };
}

/**
 * Nearest official colour: logits_c = −(32·‖rgb − palette_c‖² + c), with rgb recovered (rounded) from the
 * normalised image. All values are integers below 2^24, exact in float32, and unique per pixel (ties go to
 * the lower class id), so the host version below agrees exactly. `palette` is [C][3] in 0..255.
 */
export function nearestColorPredictor(palette: readonly (readonly number[])[]): SegPredictor {
  const C = palette.length;
  const [P, order] = tf.tidy(() => [
    tf.keep(tf.tensor3d([palette.map((c) => [c[0], c[1], c[2]])])),
    tf.keep(tf.range(0, C)),
  ]);
  return {
    predict: (x) =>
      tf.tidy(() => {
        const [n, h, w] = x.shape;
        const rgb = x.mul(127.5).add(127.5).round().reshape([n * h * w, 1, 3]);
        const d = rgb.sub(P).square().sum(2); // [m, C]
        return d.mul(32).add(order).neg().reshape([n, h, w, C]) as tf.Tensor4D;
      }),
  };
}

/** The same classifier on the host, independently: argmin over classes of the squared colour distance. */
export function nearestColorHost(rgb: Uint8Array, palette: readonly (readonly number[])[]): Int32Array {
  const out = new Int32Array(rgb.length / 3);
  for (let i = 0; i < out.length; i++) {
    let best = 0, bestD = Infinity;
    palette.forEach((c, k) => {
      const d = (rgb[i * 3] - c[0]) ** 2 + (rgb[i * 3 + 1] - c[1]) ** 2 + (rgb[i * 3 + 2] - c[2]) ** 2;
      if (d < bestD) { // strict: ties keep the lower class id
        bestD = d;
        best = k;
      }
    });
    out[i] = best;
  }
  return out;
}
