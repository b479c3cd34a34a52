/**
 * PaddleSeg's transforms (`paddleseg/transforms/transforms.py`, `functional.py`) on typed arrays, with
 * the same names, keys, defaults and order of random draws. All randomness comes from the `Rng` passed
 * to `apply` (one per sample, so results do not depend on which worker ran it).
 *
 * A sample is an HWC float32 RGB image (0..255 until Normalize) and an HW uint8 label (train ids,
 * 255 = ignore) or null. Semantics, as PaddleSeg (docs/method.md §6.2):
 * - ResizeStepScaling: factor drawn from linspace(min, max, int((max-min)/step + 1)) (or U(min, max)
 *   when step is 0); size round-half-even(factor * W) x (factor * H); image bilinear (cv2.INTER_LINEAR),
 *   label nearest (cv2.INTER_NEAREST).
 * - RandomPaddingCrop: pad bottom/right with im_padding_value / label_padding_value up to the crop,
 *   then h_off, w_off uniform in [0, H - ch] and [0, W - cw]; a sample already of the crop size is
 *   returned unchanged (no draw). With category_max_ratio < 1, up to loop_times draws reject crops in
 *   which one class covers more than that share (PaddleSeg >= 2.5).
 * - RandomHorizontalFlip: flip when U(0,1) < prob.
 * - RandomDistort: image truncated to uint8; the five ops [brightness, contrast, saturation, hue,
 *   sharpness] shuffled; each applied when U(0,1) < its prob, with factor U(1-r, 1+r) (hue: delta
 *   U(-r, r)); PIL-exact (pil_color.ts); back to float32.
 * - Normalize: (x/255 - mean)/std per channel, in float32.
 * - Resize: fixed size, image bilinear (or nearest with interp NEAREST), label nearest.
 *
 * Efficiency: ResizeStepScaling is lazy; when RandomPaddingCrop follows, only the crop window of the
 * resized image is computed (bit-identical to resizing everything and then cropping).
 */
import type { Rng } from "../util/rng.ts";
import { enhanceBrightness, enhanceColor, enhanceContrast, enhanceSharpness, shiftHue } from "./pil_color.ts";
import { cropWindow, flipHorizontal, resizeBilinear, resizeNearest, type ResizeWindow } from "./resize.ts";

export interface Sample {
  /**
   * [height, width, 3] RGB: float32, or the decoded uint8 bytes until a transform needs floats (so that
   * a lazy resize + crop never converts the whole source image). While `lazy` is set, still at the
   * source size (lazy.srcWidth x lazy.srcHeight). Transforms always return float32 when not lazy.
   */
  image: Float32Array | Uint8Array;
  width: number;
  height: number;
  /** [height, width] uint8 train ids (255 = ignore), or null (validation/test: labels stay raw). */
  label: Uint8Array | null;
  /** A pending bilinear/nearest resize from srcWidth x srcHeight to width x height. */
  lazy?: { srcWidth: number; srcHeight: number };
}

export interface Transform {
  readonly type: string;
  /** Applies the transform; may reuse or replace the sample's arrays. */
  apply(s: Sample, rng: Rng): Sample;
}

/** A transform entry as in a PaddleSeg config: `{ type: "ResizeStepScaling", min_scale_factor: 0.5, ... }`. */
export type TransformSpec = { type: string } & Record<string, unknown>;

/** A sample with a float32 image, not lazy. */
export interface FloatSample extends Sample {
  image: Float32Array;
}

/** Computes a pending resize (whole image) and converts a uint8 image to float32. */
export function materialize(s: Sample): FloatSample {
  if (s.lazy) return materializeWindow(s, { x0: 0, y0: 0, width: s.width, height: s.height }, [0, 0, 0], 255);
  return s.image instanceof Float32Array ? (s as FloatSample) : { ...s, image: toFloatImage(s.image) };
}

function materializeWindow(
  s: Sample,
  win: ResizeWindow,
  imFill: ArrayLike<number>,
  labelFill: number,
): FloatSample {
  let image: Float32Array, label: Uint8Array | null = null;
  if (s.lazy) {
    const { srcWidth: sw, srcHeight: sh } = s.lazy;
    image = resizeBilinear(s.image, sw, sh, 3, s.width, s.height, win, imFill);
    if (s.label) label = resizeNearest(s.label, sw, sh, s.width, s.height, win, labelFill);
  } else {
    const cut = cropWindow(s.image, s.width, s.height, 3, win, imFill);
    image = cut instanceof Float32Array ? cut : toFloatImage(cut);
    if (s.label) label = cropWindow(s.label, s.width, s.height, 1, win, [labelFill]);
  }
  return { image, label, width: win.width, height: win.height };
}

/** Only the label of a window (for RandomPaddingCrop's category_max_ratio test). */
function labelWindow(s: Sample, win: ResizeWindow, fill: number): Uint8Array {
  const label = s.label!;
  return s.lazy
    ? resizeNearest(label, s.lazy.srcWidth, s.lazy.srcHeight, s.width, s.height, win, fill)
    : cropWindow(label, s.width, s.height, 1, win, [fill]);
}

/** Python's round(): half to even (used by ResizeStepScaling: `int(round(scale * w))`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.linspace(a, b, n) as float64, same formula (step = (b - a)/(n - 1); last value exactly b). */
function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  const step = (b - a) / (n - 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(a + i * step);
  out[n - 1] = b;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// option parsing with clear errors

class Opts {
  #used = new Set<string>(["type"]);
  constructor(readonly spec: TransformSpec, readonly where: string) {}
  num(key: string, def: number, check?: (v: number) => boolean, rule = "a number"): number {
    this.#used.add(key);
    const v = this.spec[key] ?? def;
    if (typeof v !== "number" || !Number.isFinite(v) || (check && !check(v))) {
      throw new Error(`${this.where}.${key}: expected ${rule}, got ${JSON.stringify(v)}`);
    }
    return v;
  }
  size(key: string, def: [number, number]): [number, number] {
    this.#used.add(key);
    let v = this.spec[key] ?? def;
    if (typeof v === "number") v = [v, v];
    if (
      !Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && (x as number) > 0)
    ) {
      throw new Error(
        `${this.where}.${key}: expected [width, height] of positive integers, got ${JSON.stringify(v)}`,
      );
    }
    return [v[0], v[1]];
  }
  rgb(key: string, def: [number, number, number]): [number, number, number] {
    this.#used.add(key);
    let v = this.spec[key] ?? def;
    if (typeof v === "number") v = [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new Error(`${this.where}.${key}: expected a number or [r, g, b], got ${JSON.stringify(v)}`);
    }
    return [v[0], v[1], v[2]];
  }
  str(key: string, def: string, allowed: string[]): string {
    this.#used.add(key);
    const v = this.spec[key] ?? def;
    if (typeof v !== "string" || !allowed.includes(v)) {
      throw new Error(
        `${this.where}.${key}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  }
  /** Call after reading every option: unknown keys are errors (typos would otherwise be ignored). */
  done(): void {
    const unknown = Object.keys(this.spec).filter((k) => !this.#used.has(k) && this.spec[k] !== undefined);
    if (unknown.length) {
      throw new Error(
        `${this.where}: unknown key(s) ${unknown.join(", ")} for ${this.spec.type}; accepted: ${
          [...this.#used].filter((k) => k !== "type").join(", ")
        }`,
      );
    }
  }
}

const prob = (v: number) => v >= 0 && v <= 1;
const nonNeg = (v: number) => v >= 0;
const pos = (v: number) => v > 0;

// ---------------------------------------------------------------------------------------------------
// the transforms

export class ResizeStepScaling implements Transform {
  readonly type = "ResizeStepScaling";
  constructor(
    readonly min_scale_factor = 0.75,
    readonly max_scale_factor = 1.25,
    readonly scale_step_size = 0.25,
  ) {
    if (min_scale_factor > max_scale_factor) {
      throw new Error(
        `ResizeStepScaling: min_scale_factor (${min_scale_factor}) must not exceed max_scale_factor (${max_scale_factor})`,
      );
    }
  }
  drawFactor(rng: Rng): number {
    const { min_scale_factor: lo, max_scale_factor: hi, scale_step_size: step } = this;
    if (lo === hi) return lo;
    if (step === 0) return rng.uniform(lo, hi);
    const factors = linspace(lo, hi, Math.trunc((hi - lo) / step + 1));
    return factors[rng.int(factors.length)]; // = np.random.shuffle(list)[0]
  }
  apply(s: Sample, rng: Rng): Sample {
    const f = this.drawFactor(rng);
    const src = s.lazy ? materialize(s) : s;
    const w = roundHalfEven(f * src.width), h = roundHalfEven(f * src.height);
    if (w < 1 || h < 1) throw new Error(`ResizeStepScaling: factor ${f} gives an empty ${w}x${h} image`);
    return { ...src, width: w, height: h, lazy: { srcWidth: src.width, srcHeight: src.height } };
  }
}

export class RandomPaddingCrop implements Transform {
  readonly type = "RandomPaddingCrop";
  constructor(
    readonly crop_size: [number, number] = [512, 512],
    readonly im_padding_value: [number, number, number] = [127.5, 127.5, 127.5],
    readonly label_padding_value = 255,
    readonly category_max_ratio = 1.0,
    readonly ignore_index = 255,
    readonly loop_times = 10,
  ) {}
  apply(s: Sample, rng: Rng): Sample {
    const [cw, ch] = this.crop_size;
    if (s.width === cw && s.height === ch) return materialize(s);
    // padding to at least the crop size is implicit: window pixels beyond the image get the fill values
    const W = Math.max(s.width, cw), H = Math.max(s.height, ch);
    let h_off = 0, w_off = 0;
    const loops = this.category_max_ratio < 1 && s.label ? this.loop_times : 1;
    for (let i = 0; i < loops; i++) {
      h_off = rng.int(H - ch + 1);
      w_off = rng.int(W - cw + 1);
      if (loops === 1) break;
      const lab = labelWindow(s, { x0: w_off, y0: h_off, width: cw, height: ch }, this.label_padding_value);
      const counts = new Uint32Array(256);
      for (let k = 0; k < lab.length; k++) counts[lab[k]]++;
      counts[this.ignore_index] = 0;
      let total = 0, max = 0;
      for (let k = 0; k < 256; k++) {
        total += counts[k];
        if (counts[k] > max) max = counts[k];
      }
      // PaddleSeg: accept when more than one class is present and the largest share is small enough
      const present = counts.filter((c) => c > 0).length;
      if (present > 1 && max / total < this.category_max_ratio) break;
    }
    return materializeWindow(
      s,
      { x0: w_off, y0: h_off, width: cw, height: ch },
      this.im_padding_value,
      this.label_padding_value,
    );
  }
}

export class RandomHorizontalFlip implements Transform {
  readonly type = "RandomHorizontalFlip";
  constructor(readonly prob = 0.5) {}
  apply(s0: Sample, rng: Rng): Sample {
    if (!(rng.next() < this.prob)) return s0;
    const s = materialize(s0);
    flipHorizontal(s.image, s.width, s.height, 3);
    if (s.label) flipHorizontal(s.label, s.width, s.height, 1);
    return s;
  }
}

export interface DistortOptions {
  brightness_range: number;
  brightness_prob: number;
  contrast_range: number;
  contrast_prob: number;
  saturation_range: number;
  saturation_prob: number;
  hue_range: number;
  hue_prob: number;
  sharpness_range: number;
  sharpness_prob: number;
}

export const DISTORT_DEFAULTS: DistortOptions = {
  brightness_range: 0.5,
  brightness_prob: 0.5,
  contrast_range: 0.5,
  contrast_prob: 0.5,
  saturation_range: 0.5,
  saturation_prob: 0.5,
  hue_range: 18,
  hue_prob: 0.5,
  sharpness_range: 0.5,
  sharpness_prob: 0,
};

export type DistortOp = "brightness" | "contrast" | "saturation" | "hue" | "sharpness";

export class RandomDistort implements Transform {
  readonly type = "RandomDistort";
  readonly o: DistortOptions;
  constructor(o: Partial<DistortOptions> = {}) {
    this.o = { ...DISTORT_DEFAULTS, ...o };
  }
  /** The random decisions for one sample, in PaddleSeg's draw order: shuffle, then per op (prob, value). */
  draw(rng: Rng): Array<{ op: DistortOp; value: number }> {
    const o = this.o;
    const ops: DistortOp[] = ["brightness", "contrast", "saturation", "hue", "sharpness"];
    rng.shuffle(ops);
    const chosen: Array<{ op: DistortOp; value: number }> = [];
    for (const op of ops) {
      const p = o[`${op}_prob`];
      if (rng.next() < p) {
        const r = o[`${op}_range`];
        chosen.push({ op, value: op === "hue" ? rng.uniform(-r, r) : rng.uniform(1 - r, 1 + r) });
      }
    }
    return chosen;
  }
  apply(s0: Sample, rng: Rng): Sample {
    const s = materialize(s0);
    const ops = this.draw(rng);
    const img = s.image;
    const u8 = new Uint8Array(img.length);
    for (let i = 0; i < img.length; i++) u8[i] = img[i]; // astype('uint8'): truncation of values in [0, 255]
    for (const { op, value } of ops) applyDistortOp(u8, s.width, s.height, op, value);
    for (let i = 0; i < img.length; i++) img[i] = u8[i];
    return s;
  }
}

/** One PIL colour op on uint8 RGB, in place. */
export function applyDistortOp(u8: Uint8Array, width: number, height: number, op: DistortOp, value: number) {
  switch (op) {
    case "brightness":
      return enhanceBrightness(u8, value);
    case "contrast":
      return enhanceContrast(u8, value);
    case "saturation":
      return enhanceColor(u8, value);
    case "hue":
      return shiftHue(u8, value);
    case "sharpness":
      return enhanceSharpness(u8, width, height, value);
  }
}

export class Normalize implements Transform {
  readonly type = "Normalize";
  constructor(readonly mean: [number, number, number] = [0.5, 0.5, 0.5], readonly std = [0.5, 0.5, 0.5]) {
    if (std.some((v) => v === 0)) throw new Error("Normalize: std must not contain 0");
  }
  apply(s0: Sample): Sample {
    const s = materialize(s0);
    normalizeInto(s.image, s.image, this.mean, this.std);
    return s;
  }
}

/** out = (x/255 - mean)/std per channel, each step rounded to float32 as numpy does. */
export function normalizeInto(
  src: Float32Array,
  out: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  outOffset = 0,
): void {
  const f = Math.fround;
  const m0 = mean[0], m1 = mean[1], m2 = mean[2], s0 = std[0], s1 = std[1], s2 = std[2];
  for (let i = 0; i < src.length; i += 3) {
    out[outOffset + i] = (f(f(src[i] / 255) - m0)) / s0;
    out[outOffset + i + 1] = (f(f(src[i + 1] / 255) - m1)) / s1;
    out[outOffset + i + 2] = (f(f(src[i + 2] / 255) - m2)) / s2;
  }
}

export class Resize implements Transform {
  readonly type = "Resize";
  constructor(readonly target_size: [number, number] = [512, 512], readonly interp = "LINEAR") {
    if (!["LINEAR", "NEAREST"].includes(interp)) {
      throw new Error(`Resize: interp '${interp}' is not supported (LINEAR or NEAREST)`);
    }
  }
  apply(s0: Sample): Sample {
    const s = materialize(s0);
    const [w, h] = this.target_size;
    let image: Float32Array;
    if (this.interp === "NEAREST") {
      image = new Float32Array(w * h * 3);
      const tx = Array.from(
        { length: w },
        (_, x) => Math.min(Math.floor(x * (1 / (w / s.width))), s.width - 1),
      );
      for (let y = 0; y < h; y++) {
        const sy = Math.min(Math.floor(y * (1 / (h / s.height))), s.height - 1);
        for (let x = 0; x < w; x++) {
          for (let ch = 0; ch < 3; ch++) {
            image[(y * w + x) * 3 + ch] = s.image[(sy * s.width + tx[x]) * 3 + ch];
          }
        }
      }
    } else {
      image = resizeBilinear(s.image, s.width, s.height, 3, w, h);
    }
    const label = s.label ? resizeNearest(s.label, s.width, s.height, w, h) : null;
    return { image, label, width: w, height: h };
  }
}

// ---------------------------------------------------------------------------------------------------
// building from config entries

/**
 * Builds transforms from PaddleSeg-style entries (`{type, ...keys}`), with PaddleSeg's defaults.
 * Unknown types or keys and invalid values fail with the entry's position and key in the message.
 */
export function buildTransforms(list: readonly TransformSpec[], where = "transforms"): Transform[] {
  if (!Array.isArray(list)) throw new Error(`${where}: expected a list of {type, ...} entries`);
  return list.map((spec, i) => {
    const at = `${where}[${i}]`;
    if (!spec || typeof spec !== "object" || typeof spec.type !== "string") {
      throw new Error(`${at}: expected an object with a 'type' key, got ${JSON.stringify(spec)}`);
    }
    const o = new Opts(spec, `${at} (${spec.type})`);
    let t: Transform;
    switch (spec.type) {
      case "ResizeStepScaling":
        t = new ResizeStepScaling(
          o.num("min_scale_factor", 0.75, pos, "a positive number"),
          o.num("max_scale_factor", 1.25, pos, "a positive number"),
          o.num("scale_step_size", 0.25, nonNeg, "a number >= 0"),
        );
        break;
      case "RandomPaddingCrop":
        t = new RandomPaddingCrop(
          o.size("crop_size", [512, 512]),
          o.rgb("im_padding_value", [127.5, 127.5, 127.5]),
          o.num(
            "label_padding_value",
            255,
            (v) => Number.isInteger(v) && v >= 0 && v <= 255,
            "an integer 0..255",
          ),
          o.num("category_max_ratio", 1.0, (v) => v > 0 && v <= 1, "a number in (0, 1]"),
          o.num("ignore_index", 255, (v) => Number.isInteger(v) && v >= 0 && v <= 255, "an integer 0..255"),
          o.num("loop_times", 10, (v) => Number.isInteger(v) && v >= 1, "a positive integer"),
        );
        break;
      case "RandomHorizontalFlip":
        t = new RandomHorizontalFlip(o.num("prob", 0.5, prob, "a probability in [0, 1]"));
        break;
      case "RandomDistort": {
        const d: Partial<DistortOptions> = {};
        for (const op of ["brightness", "contrast", "saturation", "hue", "sharpness"] as const) {
          d[`${op}_range`] = o.num(`${op}_range`, DISTORT_DEFAULTS[`${op}_range`], nonNeg, "a number >= 0");
          d[`${op}_prob`] = o.num(
            `${op}_prob`,
            DISTORT_DEFAULTS[`${op}_prob`],
            prob,
            "a probability in [0, 1]",
          );
        }
        t = new RandomDistort(d);
        break;
      }
      case "Normalize":
        t = new Normalize(o.rgb("mean", [0.5, 0.5, 0.5]), o.rgb("std", [0.5, 0.5, 0.5]));
        break;
      case "Resize":
        t = new Resize(o.size("target_size", [512, 512]), o.str("interp", "LINEAR", ["LINEAR", "NEAREST"]));
        break;
      default:
        throw new Error(
          `${at}: unknown transform type '${spec.type}' (supported: ResizeStepScaling, RandomPaddingCrop, ` +
            "RandomHorizontalFlip, RandomDistort, Normalize, Resize)",
        );
    }
    o.done();
    return t;
  });
}

/** Runs the transforms in order on one sample (PaddleSeg `Compose`, after reading); never returns lazy. */
export function applyTransforms(transforms: readonly Transform[], s: Sample, rng: Rng): FloatSample {
  for (const t of transforms) s = t.apply(s, rng);
  return materialize(s);
}

/** Converts 8-bit RGB to the float32 HWC image a sample starts with. */
export function toFloatImage(rgb: Uint8Array): Float32Array {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = rgb[i];
  return out;
}
