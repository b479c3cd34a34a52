/**
 * Hard/easy anchor sampling (`_hard_anchor_sampling`, docs/method.md §4.3) on host typed arrays.
 *
 * The selection is data-dependent and small (a few hundred index lists of at most max_views entries),
 * so it runs on the host over the labels/predictions at embedding resolution, downloaded once. Every
 * per-pixel step is a linear pass over an Int32Array (no per-pixel objects); loops over classes are
 * bounded by the number of classes. The embeddings themselves stay on the device: the result is a list
 * of flat pixel indices to gather.
 *
 * Rules (per contrast group of images):
 *  1. classes of image b: sorted unique labels ≠ ignore with strictly more than max_views pixels;
 *  2. total_classes = Σ_b |classes_b|; if 0 the sample is empty (the loss defines the term as 0);
 *  3. n_view = min(floor(max_samples / total_classes), max_views);
 *  4. per image (batch order) and class (ascending): hard = label c & pred ≠ c, easy = label c & pred = c,
 *     keep counts by rules a–c (d is unreachable since n_h + n_e > max_views ≥ n_view), drawn uniformly
 *     without replacement (partial Fisher–Yates from the injected Rng) or, in `identity` mode, the first
 *     k in ascending pixel order; hard first, then easy.
 */
import type { Rng } from "../util/rng.ts";
import type { AnchorDraw } from "./options.ts";

export interface SamplerOptions {
  maxSamples: number;
  maxViews: number;
  ignoreIndex: number;
  draw: AnchorDraw;
}

export type KeepRule = "a" | "b" | "c";

/** What the sampler decided for one (image, class) pair. */
export interface ClassKeep {
  image: number;
  classId: number;
  nHard: number;
  nEasy: number;
  keepHard: number;
  keepEasy: number;
  rule: KeepRule;
}

export interface AnchorSample {
  /** A: number of (image, class) pairs. */
  totalClasses: number;
  /** V: anchors per pair (0 when the sample is empty). */
  nView: number;
  /** [A] class id of each pair (image-major, class ascending). */
  classIds: Int32Array;
  /** [A] image (within the group) of each pair. */
  images: Int32Array;
  /**
   * [A·V] class-major flat pixel indices: pair a, view v at a·V + v, value image·P + pixel, where pixel =
   * row·w + col on the embedding grid. Hard anchors first within each pair.
   */
  indices: Int32Array;
  keeps: ClassKeep[];
  /** Classes per image that passed the count rule (for logs). */
  classesPerImage: number[][];
}

/**
 * labels, preds: [numImages·P] int32 at embedding resolution (P = h·w pixels per image, row-major).
 * `rng` is required for draw = "random".
 */
export function sampleHardAnchors(
  labels: Int32Array,
  preds: Int32Array,
  numImages: number,
  pixelsPerImage: number,
  options: SamplerOptions,
  rng?: Rng,
): AnchorSample {
  const P = pixelsPerImage;
  const { maxSamples, maxViews, ignoreIndex, draw } = options;
  if (labels.length !== numImages * P || preds.length !== numImages * P) {
    throw new Error(
      `losses/sampler: labels (${labels.length}) and preds (${preds.length}) must hold ${numImages}x${P} pixels`,
    );
  }
  if (draw === "random" && !rng) throw new Error("losses/sampler: draw 'random' needs an Rng");

  // Pass 1 per image: pixel count and hard count per class value.
  const counts: Int32Array[] = [];
  const hards: Int32Array[] = [];
  const classesPerImage: number[][] = [];
  let totalClasses = 0;
  for (let b = 0; b < numImages; b++) {
    let cnt = new Int32Array(256), hrd = new Int32Array(256);
    const off = b * P;
    for (let p = 0; p < P; p++) {
      const y = labels[off + p];
      if (y === ignoreIndex) continue;
      if (y < 0) {
        throw new Error(
          `losses/sampler: negative label ${y} at image ${b}, pixel ${p} (ignore ${ignoreIndex})`,
        );
      }
      if (y >= cnt.length) {
        const grow = (a: Int32Array) => {
          const g = new Int32Array(y + 1);
          g.set(a);
          return g;
        };
        cnt = grow(cnt);
        hrd = grow(hrd);
      }
      cnt[y]++;
      if (preds[off + p] !== y) hrd[y]++;
    }
    const cls: number[] = [];
    for (let c = 0; c < cnt.length; c++) if (cnt[c] > maxViews) cls.push(c);
    counts.push(cnt);
    hards.push(hrd);
    classesPerImage.push(cls);
    totalClasses += cls.length;
  }

  const nView = totalClasses === 0 ? 0 : Math.min(Math.floor(maxSamples / totalClasses), maxViews);
  if (nView === 0) {
    // No class qualifies, or more pairs than max_samples: nothing to contrast.
    return {
      totalClasses,
      nView: 0,
      classIds: new Int32Array(0),
      images: new Int32Array(0),
      indices: new Int32Array(0),
      keeps: [],
      classesPerImage,
    };
  }

  const classIds = new Int32Array(totalClasses);
  const images = new Int32Array(totalClasses);
  const indices = new Int32Array(totalClasses * nView);
  const keeps: ClassKeep[] = [];
  const bucket = new Int32Array(P);
  let a = 0;
  for (let b = 0; b < numImages; b++) {
    const cls = classesPerImage[b];
    if (cls.length === 0) continue;
    const cnt = counts[b], hrd = hards[b];
    // Bucket layout per selected class: [hard..., easy...], each in ascending pixel order.
    const hardPtr = new Int32Array(cnt.length).fill(-1);
    const easyPtr = new Int32Array(cnt.length).fill(-1);
    const hardStart = new Int32Array(cnt.length), easyStart = new Int32Array(cnt.length);
    let pos = 0;
    for (const c of cls) {
      hardStart[c] = hardPtr[c] = pos;
      pos += hrd[c];
      easyStart[c] = easyPtr[c] = pos;
      pos += cnt[c] - hrd[c];
    }
    const off = b * P;
    for (let p = 0; p < P; p++) {
      const y = labels[off + p];
      if (y === ignoreIndex || hardPtr[y] < 0) continue;
      if (preds[off + p] === y) bucket[easyPtr[y]++] = p;
      else bucket[hardPtr[y]++] = p;
    }
    for (const c of cls) {
      const nHard = hrd[c], nEasy = cnt[c] - hrd[c];
      const half = nView / 2;
      let keepHard: number, keepEasy: number, rule: KeepRule;
      if (nHard >= half && nEasy >= half) {
        keepHard = Math.floor(nView / 2);
        keepEasy = nView - keepHard;
        rule = "a";
      } else if (nHard >= half) {
        keepEasy = nEasy;
        keepHard = nView - nEasy;
        rule = "b";
      } else if (nEasy >= half) {
        keepHard = nHard;
        keepEasy = nView - nHard;
        rule = "c";
      } else {
        // Rule d: n_h + n_e > max_views >= n_view makes this impossible.
        throw new Error(
          `losses/sampler: unreachable keep rule (hard ${nHard}, easy ${nEasy}, n_view ${nView})`,
        );
      }
      const out = a * nView;
      pick(bucket, hardStart[c], nHard, keepHard, indices, out, off, draw, rng);
      pick(bucket, easyStart[c], nEasy, keepEasy, indices, out + keepHard, off, draw, rng);
      classIds[a] = c;
      images[a] = b;
      keeps.push({ image: b, classId: c, nHard, nEasy, keepHard, keepEasy, rule });
      a++;
    }
  }
  return { totalClasses, nView, classIds, images, indices, keeps, classesPerImage };
}

/** Takes k of the n entries at bucket[start..start+n) (uniform without replacement, or the first k). */
function pick(
  bucket: Int32Array,
  start: number,
  n: number,
  k: number,
  out: Int32Array,
  outStart: number,
  pixelOffset: number,
  draw: AnchorDraw,
  rng?: Rng,
): void {
  if (k > n || k < 0) throw new Error(`losses/sampler: cannot keep ${k} of ${n} pixels`);
  if (draw === "random") {
    for (let i = 0; i < k; i++) {
      const j = i + rng!.int(n - i);
      const t = bucket[start + i];
      bucket[start + i] = bucket[start + j];
      bucket[start + j] = t;
    }
  }
  for (let i = 0; i < k; i++) out[outStart + i] = pixelOffset + bucket[start + i];
}

/** Per-class anchor counts (length numClasses; classes ≥ numClasses are folded into nothing). */
export function anchorsPerClass(sample: AnchorSample, numClasses: number, into?: Int32Array): Int32Array {
  const r = into ?? new Int32Array(numClasses);
  for (let a = 0; a < sample.totalClasses; a++) {
    const c = sample.classIds[a];
    if (c < numClasses) r[c] += sample.nView;
  }
  return r;
}
