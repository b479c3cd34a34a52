/**
 * Inference modes of PaddleSeg's `core/infer.py` (docs/method.md §8), on any model that maps a batch of
 * normalised images to per-pixel class scores:
 *   - whole image: one forward pass;
 *   - slide: windows of crop (w,h) with stride (w,h), rows = ceil((H−h)/stride_h)+1 (same for columns), the
 *     last window aligned to the border, one window when the image is not larger than the crop, logits
 *     summed and divided by the number of windows covering each pixel;
 *   - aug (multi-scale + flip): for each scale s the ORIGINAL image is resized (bilinear, half-pixel) to
 *     (int(H·s+0.5), int(W·s+0.5)) — PSEG HEAD's fixed version, not REPRO's chained resampling — each flip
 *     combination is run (whole or slide), flipped back, resized to H×W, softmaxed and summed.
 * All resizes are bilinear with align_corners=False (TF's half-pixel centres), as Paddle's F.interpolate.
 */
import { tf } from "../backend/tf.ts";

/**
 * The structural model interface: the model helper's model (predict(x) → upsampled logits) fits as is.
 * `x`: [N,H,W,3] float32 normalised images. Returns [N,H',W',C] logits; when H'×W' ≠ H×W they are resized
 * bilinearly to H×W (a model returning stride-4 logits still works).
 */
export interface SegPredictor {
  predict(x: tf.Tensor4D): tf.Tensor4D;
}

/** Options named after PaddleSeg's `val.py` flags. */
export interface EvalModeOptions {
  /** `--is_slide` */
  isSlide?: boolean;
  /** `--crop_size W H` (slide window). */
  cropSize?: [number, number];
  /** `--stride W H` (slide step). */
  stride?: [number, number];
  /** `--aug_eval` */
  augEval?: boolean;
  /** `--scales` (aug only; default [1.0]). */
  scales?: number[];
  /** `--flip_horizontal` (aug only). */
  flipHorizontal?: boolean;
  /** `--flip_vertical` (aug only). */
  flipVertical?: boolean;
}

/** A validated inference mode. */
export interface EvalMode {
  slide: { crop: [number, number]; stride: [number, number] } | null;
  aug: { scales: number[]; flipHorizontal: boolean; flipVertical: boolean } | null;
}

export const WHOLE_MODE: EvalMode = { slide: null, aug: null };

/** Validates PaddleSeg-style options into an `EvalMode`; errors name the offending flag. */
export function resolveEvalMode(o: EvalModeOptions = {}): EvalMode {
  const pair = (v: unknown, flag: string): [number, number] => {
    if (
      !Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && (x as number) > 0)
    ) {
      throw new Error(`${flag} must be two positive integers W H (got ${JSON.stringify(v)})`);
    }
    return [v[0], v[1]];
  };
  let slide: EvalMode["slide"] = null;
  if (o.isSlide) {
    if (!o.cropSize || !o.stride) throw new Error("--is_slide needs --crop_size W H and --stride W H");
    slide = { crop: pair(o.cropSize, "--crop_size"), stride: pair(o.stride, "--stride") };
    if (slide.stride[0] > slide.crop[0] || slide.stride[1] > slide.crop[1]) {
      // PaddleSeg raises the same at run time ("There are pixel not predicted").
      throw new Error(
        `--stride ${slide.stride.join(" ")} is larger than --crop_size ${slide.crop.join(" ")}: ` +
          "some pixels would never be predicted",
      );
    }
  } else if (o.cropSize || o.stride) {
    throw new Error("--crop_size/--stride are only used with --is_slide");
  }
  let aug: EvalMode["aug"] = null;
  if (o.augEval) {
    const scales = o.scales ?? [1.0];
    if (scales.length === 0 || !scales.every((s) => Number.isFinite(s) && s > 0)) {
      throw new Error(`--scales must be positive numbers (got ${JSON.stringify(o.scales)})`);
    }
    aug = { scales: [...scales], flipHorizontal: !!o.flipHorizontal, flipVertical: !!o.flipVertical };
  } else if (o.scales || o.flipHorizontal || o.flipVertical) {
    throw new Error("--scales/--flip_horizontal/--flip_vertical are only used with --aug_eval");
  }
  return { slide, aug };
}

/**
 * A short string to print beside every number, e.g. `whole`, `slide(crop 1024x512, stride 768x384)`,
 * `aug(scales 0.75,1,1.25; flip h)+slide(crop 1024x512, stride 768x384)`.
 */
export function describeEvalMode(mode: EvalMode): string {
  const parts: string[] = [];
  if (mode.aug) {
    const flips = [mode.aug.flipHorizontal ? "h" : "", mode.aug.flipVertical ? "v" : ""].filter(Boolean);
    parts.push(`aug(scales ${mode.aug.scales.join(",")}; flip ${flips.length ? flips.join("+") : "none"})`);
  }
  if (mode.slide) {
    parts.push(`slide(crop ${mode.slide.crop.join("x")}, stride ${mode.slide.stride.join("x")})`);
  }
  return parts.length ? parts.join("+") : "whole";
}

/** Bilinear resize with align_corners=False (half-pixel centres); identity when the size already matches. */
export function resizeBilinear(x: tf.Tensor4D, h: number, w: number): tf.Tensor4D {
  if (x.shape[1] === h && x.shape[2] === w) return x.clone();
  return tf.image.resizeBilinear(x, [h, w], false, true);
}

/** One forward pass; output checked and brought to the input's H×W. Returns [N,H,W,C] logits. */
export function forwardLogits(predictor: SegPredictor, x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const y = predictor.predict(x);
    if (!y || y.rank !== 4 || y.shape[0] !== x.shape[0]) {
      throw new Error(
        `predictor.predict([${x.shape}]) must return [N,H,W,C] logits with N=${x.shape[0]} ` +
          `(got ${y ? `[${y.shape}]` : String(y)})`,
      );
    }
    return resizeBilinear(y.toFloat() as tf.Tensor4D, x.shape[1], x.shape[2]);
  });
}

export interface Window {
  /** Top row (inclusive) and bottom row (exclusive). */
  y1: number;
  y2: number;
  /** Left column (inclusive) and right column (exclusive). */
  x1: number;
  x2: number;
}

/** The windows of PaddleSeg's `slide_inference` for an H×W image, in its row-major order. */
export function slideWindows(
  h: number,
  w: number,
  crop: [number, number],
  stride: [number, number],
): Window[] {
  const [wCrop, hCrop] = crop;
  const [wStride, hStride] = stride;
  const rows = h <= hCrop ? 1 : Math.ceil((h - hCrop) / hStride) + 1;
  const cols = w <= wCrop ? 1 : Math.ceil((w - wCrop) / wStride) + 1;
  const out: Window[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const y2 = Math.min(r * hStride + hCrop, h);
      const x2 = Math.min(c * wStride + wCrop, w);
      out.push({ y1: Math.max(y2 - hCrop, 0), y2, x1: Math.max(x2 - wCrop, 0), x2 });
    }
  }
  return out;
}

/** Sliding-window logits: [N,H,W,3] → [N,H,W,C], averaged over the windows covering each pixel. */
export function slideInference(
  predictor: SegPredictor,
  x: tf.Tensor4D,
  crop: [number, number],
  stride: [number, number],
): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const windows = slideWindows(h, w, crop, stride);
  const count = new Float32Array(h * w);
  let acc: tf.Tensor4D | null = null;
  try {
    for (const win of windows) {
      const next = tf.tidy<tf.Tensor4D>(() => {
        const crop = x.slice([0, win.y1, win.x1, 0], [n, win.y2 - win.y1, win.x2 - win.x1, x.shape[3]]);
        const logit = forwardLogits(predictor, crop);
        const padded = tf.pad(logit, [[0, 0], [win.y1, h - win.y2], [win.x1, w - win.x2], [0, 0]]);
        return acc ? acc.add<tf.Tensor4D>(padded) : padded;
      });
      acc?.dispose();
      acc = next;
      for (let y = win.y1; y < win.y2; y++) {
        for (let xx = win.x1; xx < win.x2; xx++) count[y * w + xx] += 1;
      }
    }
    if (count.some((v) => v === 0)) {
      throw new Error("slide inference left pixels without a window (stride larger than crop size?)");
    }
    const total = acc!;
    return tf.tidy(() => total.div(tf.tensor4d(count, [1, h, w, 1])));
  } finally {
    (acc as tf.Tensor4D | null)?.dispose();
  }
}

/** Logits for one pass in the given mode (whole or slide) — PaddleSeg's `inference` without argmax. */
function singleLogits(predictor: SegPredictor, x: tf.Tensor4D, mode: EvalMode): tf.Tensor4D {
  return mode.slide
    ? slideInference(predictor, x, mode.slide.crop, mode.slide.stride)
    : forwardLogits(predictor, x);
}

/** The (horizontal, vertical) flip combinations of PaddleSeg's `flip_combination`. */
export function flipCombinations(horizontal: boolean, vertical: boolean): Array<[boolean, boolean]> {
  const out: Array<[boolean, boolean]> = [[false, false]];
  if (horizontal) out.push([true, false]);
  if (vertical) {
    out.push([false, true]);
    if (horizontal) out.push([true, true]);
  }
  return out;
}

function flip(x: tf.Tensor4D, [h, v]: [boolean, boolean]): tf.Tensor4D {
  const axes = [...(v ? [1] : []), ...(h ? [2] : [])];
  return axes.length ? tf.reverse(x, axes) : x;
}

/** Output size of a scale, as Python's int(H·s + 0.5). */
export function scaledSize(h: number, w: number, s: number): [number, number] {
  return [Math.trunc(h * s + 0.5), Math.trunc(w * s + 0.5)];
}

/** Multi-scale + flip: Σ over scales and flips of softmax(logits resized to H×W). [N,H,W,3] → [N,H,W,C]. */
export function augInference(
  predictor: SegPredictor,
  x: tf.Tensor4D,
  aug: NonNullable<EvalMode["aug"]>,
  slide: EvalMode["slide"] = null,
): tf.Tensor4D {
  const [, h, w] = x.shape;
  const flips = flipCombinations(aug.flipHorizontal, aug.flipVertical);
  let sum: tf.Tensor4D | null = null;
  try {
    for (const s of aug.scales) {
      const [hs, ws] = scaledSize(h, w, s);
      if (hs < 1 || ws < 1) throw new Error(`scale ${s} shrinks a ${h}x${w} image to nothing`);
      // Resample the original image for every scale (PSEG HEAD's `im_scale`).
      const xs = resizeBilinear(x, hs, ws);
      try {
        for (const f of flips) {
          const next = tf.tidy<tf.Tensor4D>(() => {
            const logit = singleLogits(predictor, flip(xs, f), { slide, aug: null });
            const prob = tf.softmax(resizeBilinear(flip(logit, f), h, w)) as tf.Tensor4D;
            return sum ? sum.add<tf.Tensor4D>(prob) : prob;
          });
          sum?.dispose();
          sum = next;
        }
      } finally {
        xs.dispose();
      }
    }
    const out = sum!;
    sum = null;
    return out;
  } finally {
    (sum as tf.Tensor4D | null)?.dispose();
  }
}

/**
 * Class scores for a batch in the given mode: logits (whole, slide) or summed probabilities (aug).
 * `x`: [N,H,W,3] float32 → [N,H,W,C] float32.
 */
export function inferScores(
  predictor: SegPredictor,
  x: tf.Tensor4D,
  mode: EvalMode = WHOLE_MODE,
): tf.Tensor4D {
  if (x.rank !== 4) throw new Error(`inference input must be [N,H,W,C] (got [${x.shape}])`);
  return mode.aug ? augInference(predictor, x, mode.aug, mode.slide) : singleLogits(predictor, x, mode);
}

/**
 * Predicted class ids: int32 [N,H',W'] where H'×W' = `outSize` (default the input size). When the label
 * is at another size the scores are resized bilinearly first (PaddleSeg's `reverse_transform`).
 */
export function predictClasses(
  predictor: SegPredictor,
  x: tf.Tensor4D,
  mode: EvalMode = WHOLE_MODE,
  outSize?: [number, number],
  numClasses?: number,
): tf.Tensor3D {
  const scores = inferScores(predictor, x, mode);
  try {
    if (numClasses !== undefined && scores.shape[3] !== numClasses) {
      throw new Error(`the model predicts ${scores.shape[3]} classes but the dataset has ${numClasses}`);
    }
    return tf.tidy(() => {
      const s = outSize ? resizeBilinear(scores, outSize[0], outSize[1]) : scores;
      return s.argMax(3).toInt() as tf.Tensor3D;
    });
  } finally {
    scores.dispose();
  }
}
