/**
 * 2-D projections of host feature rows [N, D] (row-major Float32Array) for the paper's picture of the
 * feature space: PCA (deterministic; the eigen-solver is ml-matrix's) and UMAP (umap-js, seeded through an
 * injected `Rng`).
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { UMAP } from "umap-js";
import { Rng } from "../util/rng.ts";
import { checkMatrix, l2NormalizeRows } from "./feature_rows.ts";

// ---------------------------------------------------------------------------------------------------
// PCA

export interface PcaResult {
  /** [N, k] row-major projections of the centred data. */
  projection: Float32Array;
  /** [k, D] row-major unit principal axes, by decreasing variance; sign: largest |entry| positive. */
  components: Float64Array;
  mean: Float64Array;
  /** Variance along each axis (sample variance, N-1). */
  explainedVariance: Float64Array;
  /** explainedVariance / total variance. */
  explainedRatio: Float64Array;
}

/** Largest D for which PCA forms the covariance matrix and solves it exactly. */
export const PCA_EXACT_MAX_DIM = 1024;

/**
 * Principal component analysis, deterministic. For D ≤ {@link PCA_EXACT_MAX_DIM}: the D×D covariance
 * (N·D²/2 multiply-adds) and its full symmetric eigen-decomposition ({@link symmetricEigen}), exact.
 * Above that: subspace iteration with k + 10 vectors and Rayleigh-Ritz (`maxIterations`, default 50).
 * Fine for N ≤ 20k, D ≤ 720 on the host.
 */
export function pca(
  x: Float32Array,
  n: number,
  d: number,
  k = 2,
  opts: { maxIterations?: number } = {},
): PcaResult {
  checkMatrix("pca", x, n, d);
  if (n < 2) throw new Error(`pca: need at least 2 rows, got ${n}`);
  if (!(Number.isInteger(k) && k >= 1 && k <= d)) throw new Error(`pca: k must be in [1, ${d}], got ${k}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j] - mean[j];
      total += v * v;
    }
  }
  total /= n - 1;
  const { values, axes } = d <= PCA_EXACT_MAX_DIM
    ? exactAxes(x, mean, n, d, k)
    : subspaceAxes(x, mean, n, d, k, opts.maxIterations ?? 50);
  const components = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    let big = 0, norm = 0;
    for (let j = 0; j < d; j++) {
      const v = axes[c * d + j];
      if (Math.abs(v) > Math.abs(big)) big = v;
      norm += v * v;
    }
    const f = (big < 0 ? -1 : 1) / Math.sqrt(norm || 1);
    for (let j = 0; j < d; j++) components[c * d + j] = axes[c * d + j] * f;
  }
  const projection = new Float32Array(n * k);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
    for (let c = 0; c < k; c++) {
      let s = 0;
      const co = c * d;
      for (let j = 0; j < d; j++) s += row[j] * components[co + j];
      projection[i * k + c] = s;
    }
  }
  const explainedVariance = Float64Array.from(values.subarray(0, k), (v) => Math.max(0, v));
  const explainedRatio = explainedVariance.map((v) => (total > 0 ? v / total : 0));
  return { projection, components, mean, explainedVariance, explainedRatio };
}

/** Top-k eigenpairs of the covariance, exactly; axes row-major [k, d]. */
function exactAxes(
  x: Float32Array,
  mean: Float64Array,
  n: number,
  d: number,
  k: number,
): { values: Float64Array; axes: Float64Array } {
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const va = row[a];
      if (va === 0) continue;
      const o = a * d;
      for (let b = a; b < d; b++) cov[o + b] += va * row[b];
    }
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) cov[b * d + a] = cov[a * d + b] = cov[a * d + b] / (n - 1);
  }
  const { values, vectorsT } = symmetricEigenRows(cov, d);
  return { values: values.subarray(0, k), axes: vectorsT.subarray(0, k * d) };
}

/** Top-k eigenpairs by subspace iteration + Rayleigh-Ritz (large D); axes row-major [k, d]. */
function subspaceAxes(
  x: Float32Array,
  mean: Float64Array,
  n: number,
  d: number,
  k: number,
  iterations: number,
): { values: Float64Array; axes: Float64Array } {
  const p = Math.min(d, k + 10);
  const rng = new Rng(0x9ca);
  let q: Float64Array = new Float64Array(d * p); // column-major [d, p]
  for (let i = 0; i < q.length; i++) q[i] = rng.normal();
  orthonormalize(q, d, p);
  const y = new Float64Array(n * p); // column-major [n, p]
  for (let it = 0; it < iterations; it++) {
    centeredTimes(x, mean, n, d, q, p, y);
    const z = new Float64Array(d * p);
    centeredTransposeTimes(x, mean, n, d, y, p, z);
    orthonormalize(z, d, p);
    q = z;
  }
  centeredTimes(x, mean, n, d, q, p, y);
  const b = new Float64Array(p * p);
  for (let a = 0; a < p; a++) {
    for (let c = a; c < p; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += y[a * n + i] * y[c * n + i];
      b[a * p + c] = b[c * p + a] = s / (n - 1);
    }
  }
  const { values, vectorsT } = symmetricEigenRows(b, p);
  const axes = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    for (let a = 0; a < p; a++) {
      const w = vectorsT[c * p + a];
      for (let j = 0; j < d; j++) axes[c * d + j] += q[a * d + j] * w;
    }
  }
  return { values: values.subarray(0, k), axes };
}

/** y[:, c] = (X - 1·mean^T) q[:, c]; q column-major [d, p], y column-major [n, p]. */
function centeredTimes(
  x: Float32Array,
  mean: Float64Array,
  n: number,
  d: number,
  q: Float64Array,
  p: number,
  y: Float64Array,
): void {
  const mq = new Float64Array(p);
  for (let c = 0; c < p; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += mean[j] * q[c * d + j];
    mq[c] = s;
  }
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let c = 0; c < p; c++) {
      const qo = c * d;
      let s = 0;
      for (let j = 0; j < d; j++) s += x[off + j] * q[qo + j];
      y[c * n + i] = s - mq[c];
    }
  }
}

/** z[:, c] = (X - 1·mean^T)^T y[:, c]; y column-major [n, p], z column-major [d, p]. */
function centeredTransposeTimes(
  x: Float32Array,
  mean: Float64Array,
  n: number,
  d: number,
  y: Float64Array,
  p: number,
  z: Float64Array,
): void {
  z.fill(0);
  for (let i = 0; i < n; i++) {
    const off = i * d;
    for (let c = 0; c < p; c++) {
      const v = y[c * n + i];
      if (v === 0) continue;
      const zo = c * d;
      for (let j = 0; j < d; j++) z[zo + j] += x[off + j] * v;
    }
  }
  for (let c = 0; c < p; c++) {
    let ys = 0;
    for (let i = 0; i < n; i++) ys += y[c * n + i];
    for (let j = 0; j < d; j++) z[c * d + j] -= mean[j] * ys;
  }
}

/** Modified Gram-Schmidt (twice) on the p columns (each of length d) of a column-major matrix, in place. */
function orthonormalize(m: Float64Array, d: number, p: number): void {
  let spare = 0; // next unit vector to try when a column collapses
  for (let c = 0; c < p; c++) {
    let norm0 = 0;
    for (let j = 0; j < d; j++) norm0 += m[c * d + j] ** 2;
    for (let pass = 0; pass < 2; pass++) {
      for (let a = 0; a < c; a++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += m[a * d + j] * m[c * d + j];
        for (let j = 0; j < d; j++) m[c * d + j] -= s * m[a * d + j];
      }
    }
    let norm = 0;
    for (let j = 0; j < d; j++) norm += m[c * d + j] ** 2;
    norm = Math.sqrt(norm);
    if (norm <= 1e-10 * Math.sqrt(norm0) && spare < d) {
      // Rank-deficient data: the column collapsed; restart it from the next unit vector.
      m.fill(0, c * d, c * d + d);
      m[c * d + spare++] = 1;
      c--;
      continue;
    }
    for (let j = 0; j < d; j++) m[c * d + j] /= norm;
  }
}

/**
 * Eigen-decomposition of a symmetric matrix (row-major [p, p]) by ml-matrix's `EigenvalueDecomposition`
 * (Householder tridiagonalisation and the implicit QL algorithm, EISPACK tred2/tql2 as in JAMA). Returns
 * eigenvalues in decreasing order and eigenvectors as columns of a row-major [p, p] matrix.
 */
export function symmetricEigen(a: Float64Array, p: number): { values: Float64Array; vectors: Float64Array } {
  const { values, vectorsT } = symmetricEigenRows(a, p);
  const vectors = new Float64Array(p * p);
  for (let c = 0; c < p; c++) for (let r = 0; r < p; r++) vectors[r * p + c] = vectorsT[c * p + r];
  return { values, vectors };
}

/** As {@link symmetricEigen}, eigenvectors as ROWS (vectorsT[c*p .. c*p+p) is the c-th eigenvector). */
function symmetricEigenRows(a: Float64Array, n: number): { values: Float64Array; vectorsT: Float64Array } {
  if (a.length !== n * n) throw new Error(`symmetricEigen: expected ${n}×${n} values, got ${a.length}`);
  const m = new Matrix(n, n);
  for (let r = 0; r < n; r++) m.setRow(r, a.subarray(r * n, r * n + n));
  const evd = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const d = evd.realEigenvalues;
  const v = evd.eigenvectorMatrix;
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y] - d[x] || x - y);
  const values = Float64Array.from(order, (i) => d[i]);
  const vectorsT = new Float64Array(n * n);
  order.forEach((src, c) => vectorsT.set(v.getColumn(src), c * n));
  return { values, vectorsT };
}

// ---------------------------------------------------------------------------------------------------
// UMAP

export interface UmapOptions {
  rng: Rng;
  /** Neighbourhood size (umap-js default 15); clamped to N-1. */
  nNeighbors?: number;
  minDist?: number;
  spread?: number;
  /** Optimisation epochs (umap-js picks 500 for small, 200 for large data when omitted). */
  nEpochs?: number;
  /** Reduce to this many dimensions with PCA first (0 = no reduction). Default 50, the usual practice. */
  pcaDims?: number;
  /** L2-normalise rows first, so distances follow cosine similarity (the contrast loss's geometry). */
  normalize?: boolean;
}

/**
 * 2-D UMAP of the rows (umap-js 1.4.0, all of its randomness drawn from `opts.rng`, so the same seed
 * and input give the same picture). Returns [N, 2] row-major.
 */
export function umap(x: Float32Array, n: number, d: number, opts: UmapOptions): Float32Array {
  checkMatrix("umap", x, n, d);
  if (n < 3) throw new Error(`umap: need at least 3 rows, got ${n}`);
  let data = opts.normalize === false ? x : l2NormalizeRows(x, n, d);
  let dim = d;
  const pcaDims = opts.pcaDims ?? 50;
  if (pcaDims > 0 && pcaDims < d && pcaDims < n) {
    data = pca(data, n, d, pcaDims).projection;
    dim = pcaDims;
  }
  const rows: number[][] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = Array.from(data.subarray(i * dim, i * dim + dim));
  const rng = opts.rng;
  const model = new UMAP({
    nComponents: 2,
    nNeighbors: Math.max(2, Math.min(opts.nNeighbors ?? 15, n - 1)),
    minDist: opts.minDist ?? 0.1,
    spread: opts.spread ?? 1,
    nEpochs: opts.nEpochs,
    random: () => rng.next(),
  });
  const y = model.fit(rows);
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    out[2 * i] = y[i][0];
    out[2 * i + 1] = y[i][1];
  }
  return out;
}
