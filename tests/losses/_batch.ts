/** Small synthetic batches for the loss tests (stride 2 between labels and embeddings). */
import { type Tensor3D, type Tensor4D, tf } from "../../lib/backend/tf.ts";
import { Rng } from "../../lib/util/rng.ts";

export interface Batch {
  labels: Tensor3D;
  logits4: Tensor4D;
  embed: Tensor4D;
  /** host copies */
  labelsSmall: Int32Array;
  embedData: Float32Array;
  n: number;
  h: number;
  w: number;
  c: number;
  d: number;
}

/**
 * n images of h x w embeddings (unit vectors, dimension d) and 2h x 2w labels; class maps are vertical
 * bands chosen per image by `classesOf(b)`; about `hardFrac` of the pixels are mispredicted.
 */
export function makeBatch(
  opts: {
    n?: number;
    h?: number;
    w?: number;
    c?: number;
    d?: number;
    seed?: number;
    hardFrac?: number;
    classesOf?: (b: number) => number[];
  } = {},
): Batch {
  const { n = 2, h = 8, w = 8, c = 4, d = 4, seed = 1, hardFrac = 0.4 } = opts;
  const classesOf = opts.classesOf ?? ((b: number) => (b % 2 === 0 ? [0, 1, 2] : [1, 2, 3]));
  const rng = new Rng(seed);
  const small = new Int32Array(n * h * w);
  for (let b = 0; b < n; b++) {
    const cls = classesOf(b);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) small[(b * h + i) * w + j] = cls[Math.floor((j * cls.length) / w)];
    }
  }
  const H = 2 * h, W = 2 * w;
  const full = new Int32Array(n * H * W);
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < H; r++) {
      for (let q = 0; q < W; q++) {
        // picked pixels carry the class; the others are noise (never picked by label[2i, 2j])
        full[(b * H + r) * W + q] = r % 2 === 0 && q % 2 === 0
          ? small[(b * h + r / 2) * w + q / 2]
          : rng.int(c);
      }
    }
  }
  const logits = new Float32Array(n * h * w * c);
  for (let p = 0; p < n * h * w; p++) {
    for (let k = 0; k < c; k++) logits[p * c + k] = rng.normal() * 0.1;
    const y = small[p];
    if (y >= 0 && y < c) logits[p * c + (rng.next() < hardFrac ? (y + 1) % c : y)] += 3;
  }
  const emb = new Float32Array(n * h * w * d);
  for (let p = 0; p < n * h * w; p++) {
    let ss = 0;
    for (let k = 0; k < d; k++) {
      const v = rng.normal() + (k === small[p] % d ? 1.5 : 0);
      emb[p * d + k] = v;
      ss += v * v;
    }
    for (let k = 0; k < d; k++) emb[p * d + k] /= Math.sqrt(ss);
  }
  return {
    labels: tf.tensor3d(full, [n, H, W], "int32"),
    logits4: tf.tensor4d(logits, [n, h, w, c]),
    embed: tf.tensor4d(emb, [n, h, w, d]),
    labelsSmall: small,
    embedData: emb,
    n,
    h,
    w,
    c,
    d,
  };
}

export function disposeBatch(b: Batch): void {
  tf.dispose([b.labels, b.logits4, b.embed]);
}

/** Sub-batch of images [s, e). */
export function sliceBatch(b: Batch, s: number, e: number): Batch {
  const P = b.h * b.w;
  return {
    ...b,
    labels: tf.slice(b.labels, [s, 0, 0], [e - s, -1, -1]),
    logits4: tf.slice(b.logits4, [s, 0, 0, 0], [e - s, -1, -1, -1]),
    embed: tf.slice(b.embed, [s, 0, 0, 0], [e - s, -1, -1, -1]),
    labelsSmall: b.labelsSmall.slice(s * P, e * P),
    embedData: b.embedData.slice(s * P * b.d, e * P * b.d),
    n: e - s,
  };
}
