/**
 * Two measures of class structure in a feature space, on host rows [N, D] (row-major Float32Array) with
 * trainId labels [N] (`ignoreIndex` = unlabelled): the mean intra- minus inter-class cosine similarity, and
 * the leave-one-out k-NN label accuracy under cosine similarity. They caption the feature-space figure
 * (feature_space.ts) and are computed on the full-dimensional rows, never on a 2-D projection.
 */
import type { Rng } from "../util/rng.ts";
import { checkMatrix, l2NormalizeRows } from "./feature_rows.ts";

// ---------------------------------------------------------------------------------------------------
// Measures of structure (figure captions)

export interface ClassSeparation {
  /** Mean over classes of the mean cosine similarity between two different pixels of that class. */
  intra: number;
  /** Mean over class pairs of the mean cosine similarity between pixels of the two classes. */
  inter: number;
  /** intra − inter: higher = tighter, better separated classes (about 0 for unstructured features). */
  gap: number;
  /** Classes that entered the intra mean (those with ≥ 2 pixels). */
  classes: number;
}

/**
 * Mean intra-class minus mean inter-class cosine similarity, macro-averaged (each class, and each pair
 * of classes, weighs the same). Exact, in O(N·D + C²·D) via per-class sums of unit vectors:
 * Σ_{i≠j in c} u_i·u_j = |S_c|² − n_c. Zero rows and `ignoreIndex` labels are left out.
 */
export function classSeparation(
  x: Float32Array,
  n: number,
  d: number,
  labels: ArrayLike<number>,
  ignoreIndex = 255,
): ClassSeparation {
  checkMatrix("classSeparation", x, n, d);
  if (labels.length !== n) throw new Error(`classSeparation: ${labels.length} labels for ${n} rows`);
  const u = l2NormalizeRows(x, n, d);
  const sums = new Map<number, { s: Float64Array; n: number }>();
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (c === ignoreIndex) continue;
    let nz = false;
    for (let j = 0; j < d && !nz; j++) nz = u[i * d + j] !== 0;
    if (!nz) continue;
    let e = sums.get(c);
    if (!e) sums.set(c, e = { s: new Float64Array(d), n: 0 });
    for (let j = 0; j < d; j++) e.s[j] += u[i * d + j];
    e.n++;
  }
  const cls = [...sums.keys()].sort((a, b) => a - b);
  let intra = 0, nIntra = 0;
  for (const c of cls) {
    const e = sums.get(c)!;
    if (e.n < 2) continue;
    let sq = 0;
    for (let j = 0; j < d; j++) sq += e.s[j] * e.s[j];
    intra += (sq - e.n) / (e.n * (e.n - 1));
    nIntra++;
  }
  let inter = 0, nInter = 0;
  for (let a = 0; a < cls.length; a++) {
    for (let b = a + 1; b < cls.length; b++) {
      const ea = sums.get(cls[a])!, eb = sums.get(cls[b])!;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += ea.s[j] * eb.s[j];
      inter += dot / (ea.n * eb.n);
      nInter++;
    }
  }
  intra = nIntra ? intra / nIntra : NaN;
  inter = nInter ? inter / nInter : NaN;
  return { intra, inter, gap: intra - inter, classes: nIntra };
}

export interface KnnAccuracy {
  /** Fraction of queries whose k nearest other pixels (cosine) vote for the query's own class. */
  accuracy: number;
  k: number;
  queries: number;
}

/**
 * Leave-one-out k-NN label accuracy in embedding space with cosine similarity. Every labelled row is a
 * reference; each query's neighbours exclude itself. Vote: most neighbours; tie -> larger summed
 * similarity; tie -> smaller class id. Neighbour ties in similarity -> smaller row index.
 * Cost O(Q·N·D): with more than `maxQueries` rows, that many queries are drawn with `rng` (or taken
 * evenly spaced when no rng is given).
 */
export function knnAccuracy(
  x: Float32Array,
  n: number,
  d: number,
  labels: ArrayLike<number>,
  opts: { k?: number; maxQueries?: number; rng?: Rng; ignoreIndex?: number } = {},
): KnnAccuracy {
  checkMatrix("knnAccuracy", x, n, d);
  if (labels.length !== n) throw new Error(`knnAccuracy: ${labels.length} labels for ${n} rows`);
  const ign = opts.ignoreIndex ?? 255;
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (labels[i] !== ign) keep.push(i);
  const m = keep.length;
  const k = opts.k ?? 10;
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new Error(`knnAccuracy: k must be a positive integer, got ${k}`);
  }
  if (m < k + 1) throw new Error(`knnAccuracy: need more than k=${k} labelled rows, got ${m}`);
  const u = new Float32Array(m * d);
  const lab = new Int32Array(m);
  const full = l2NormalizeRows(x, n, d);
  keep.forEach((src, r) => {
    u.set(full.subarray(src * d, src * d + d), r * d);
    lab[r] = labels[src];
  });
  const maxQ = opts.maxQueries ?? 1000;
  let queries: Int32Array;
  if (m <= maxQ) {
    queries = Int32Array.from({ length: m }, (_, i) => i);
  } else if (opts.rng) {
    queries = opts.rng.permutation(m).subarray(0, maxQ).sort();
  } else {
    queries = Int32Array.from({ length: maxQ }, (_, i) => Math.floor((i * m) / maxQ));
  }
  const topSim = new Float64Array(k);
  const topIdx = new Int32Array(k);
  const sims = new Float64Array(4 * m);
  let correct = 0;
  for (let g = 0; g < queries.length; g += 4) {
    const group = Math.min(4, queries.length - g);
    // Four queries share one pass over the references (the reference row is read once for four dots).
    const qo = [0, 1, 2, 3].map((t) => queries[g + Math.min(t, group - 1)] * d);
    const [a0, a1, a2, a3] = qo;
    for (let j = 0; j < m; j++) {
      const jo = j * d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < d; t++) {
        const v = u[jo + t];
        s0 += u[a0 + t] * v;
        s1 += u[a1 + t] * v;
        s2 += u[a2 + t] * v;
        s3 += u[a3 + t] * v;
      }
      sims[4 * j] = s0;
      sims[4 * j + 1] = s1;
      sims[4 * j + 2] = s2;
      sims[4 * j + 3] = s3;
    }
    for (let t = 0; t < group; t++) {
      const q = queries[g + t];
      topSim.fill(-Infinity);
      topIdx.fill(-1);
      for (let j = 0; j < m; j++) {
        if (j === q) continue;
        const sv = sims[4 * j + t];
        if (sv <= topSim[k - 1]) continue; // j ascends, so an equal later row loses the tie
        let p = k - 1;
        while (p > 0 && topSim[p - 1] < sv) {
          topSim[p] = topSim[p - 1];
          topIdx[p] = topIdx[p - 1];
          p--;
        }
        topSim[p] = sv;
        topIdx[p] = j;
      }
      if (vote(lab, topIdx, topSim, k) === lab[q]) correct++;
    }
  }
  return { accuracy: correct / queries.length, k, queries: queries.length };
}

/** Majority vote of the k neighbours; tie -> larger summed similarity; tie -> smaller class id. */
function vote(lab: Int32Array, idx: Int32Array, sim: Float64Array, k: number): number {
  const votes = new Map<number, { n: number; s: number }>();
  for (let t = 0; t < k; t++) {
    const c = lab[idx[t]];
    const v = votes.get(c) ?? { n: 0, s: 0 };
    v.n++;
    v.s += sim[t];
    votes.set(c, v);
  }
  let best = -1, bn = -1, bs = -Infinity;
  for (const [c, v] of [...votes].sort((a, b) => a[0] - b[0])) {
    if (v.n > bn || (v.n === bn && v.s > bs)) {
      best = c;
      bn = v.n;
      bs = v.s;
    }
  }
  return best;
}
