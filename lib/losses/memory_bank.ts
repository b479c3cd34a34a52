/**
 * Pixel and segment memory (TORCH `_dequeue_and_enqueue`, docs/method.md §5), one queue pair per class.
 *
 * Intended semantics (default):
 *  - per image and per class c present at embedding resolution (labels picked at the SAME stride as the
 *    features; class 0 included; ignore and ids ≥ numClasses skipped), in ascending class order:
 *    segment queue ← L2-normalised mean of that class's embeddings (one slot, ptr += 1);
 *    pixel queue ← K = min(#pixels, pixel_update_freq) of the class's OWN pixels drawn uniformly without
 *    replacement, L2-normalised, written as a ring buffer at ptr, ptr+1, … (mod size), ptr += K: the
 *    oldest entries are overwritten; if K > size only the last `size` of them survive.
 *  - contrast set: for every class c, its segment queue then its pixel queue, labelled c.
 *
 * `reproducePublicCode` reproduces the public code instead (docs/method.md §5 defects 1-5): labels picked at
 * stride `publicLabelStride` (8) and their flat indices used on the stride-4 feature map; pixels taken at
 * positions perm[:K] of 0..#pixels−1; class 0 skipped; pixel ptr += 1, and when ptr + K ≥ size the last K
 * slots are written and ptr resets to 0; the contrast set skips class 0 and ends with one block of zero
 * vectors labelled 0 (`_sample_negative`).
 *
 * Storage: one host Float32Array [C, segment_size + pixel_size, D] in contrast-set order (authoritative;
 * plain typed arrays for checkpoints), mirrored to one device tensor that is patched row-wise with
 * TensorScatterUpdate where the backend has it, else re-uploaded.
 */
import { type Tensor2D, type Tensor3D, type Tensor4D, tf } from "../backend/tf.ts";
import type { Rng } from "../util/rng.ts";
import { downsampleLabels, downsampleLabelsHost, strideLabels, strideLabelsHost } from "./labels.ts";
import type { MemoryOptions } from "./options.ts";

export interface MemoryBankConfig {
  numClasses: number;
  dim: number;
  pixelSize: number;
  segmentSize: number;
  pixelUpdateFreq: number;
  reproducePublicCode: boolean;
  /** Label stride of the public code's enqueue (8); only with reproducePublicCode. */
  publicLabelStride: number;
  ignoreIndex: number;
}

/** Checkpointable state: plain typed arrays and pointers. */
export interface MemoryBankState {
  version: 1;
  numClasses: number;
  dim: number;
  segmentSize: number;
  pixelSize: number;
  /** [C, segmentSize, D] row-major. */
  segmentQueue: Float32Array;
  /** [C, pixelSize, D] row-major. */
  pixelQueue: Float32Array;
  segmentPtr: Int32Array;
  pixelPtr: Int32Array;
  reproducePublicCode: boolean;
}

export interface MemoryUpdateInfo {
  segments: number;
  pixels: number;
}

export class MemoryBank {
  readonly config: MemoryBankConfig;
  readonly slotsPerClass: number;
  #bank: Float32Array;
  #segPtr: Int32Array;
  #pixPtr: Int32Array;
  #device: Tensor2D | null = null;
  #dirtyRows = new Set<number>();
  #allDirty = true;

  constructor(config: MemoryBankConfig, rng?: Rng) {
    for (
      const k of [
        "numClasses",
        "dim",
        "pixelSize",
        "segmentSize",
        "pixelUpdateFreq",
        "publicLabelStride",
      ] as const
    ) {
      if (!(Number.isInteger(config[k]) && config[k] >= 1)) {
        throw new Error(`losses/memory_bank: ${k} must be an integer >= 1, got ${config[k]}`);
      }
    }
    this.config = { ...config };
    this.slotsPerClass = config.segmentSize + config.pixelSize;
    this.#bank = new Float32Array(config.numClasses * this.slotsPerClass * config.dim);
    this.#segPtr = new Int32Array(config.numClasses);
    this.#pixPtr = new Int32Array(config.numClasses);
    if (rng) this.#randomInit(rng);
  }

  /** Gaussian vectors, L2-normalised (TORCH `randn` + `normalize`), from the injected Rng. */
  #randomInit(rng: Rng): void {
    const D = this.config.dim, b = this.#bank;
    for (let r = 0; r < b.length / D; r++) {
      let ss = 0;
      for (let d = 0; d < D; d++) {
        const v = rng.normal();
        b[r * D + d] = v;
        ss += v * v;
      }
      const inv = 1 / Math.sqrt(ss);
      for (let d = 0; d < D; d++) b[r * D + d] *= inv;
    }
    this.#allDirty = true;
  }

  // ---- layout

  /** Bank row of segment slot s of class c. */
  segmentRow(c: number, s: number): number {
    return c * this.slotsPerClass + s;
  }
  /** Bank row of pixel slot s of class c. */
  pixelRow(c: number, s: number): number {
    return c * this.slotsPerClass + this.config.segmentSize + s;
  }

  get segmentPtr(): Int32Array {
    return this.#segPtr.slice();
  }
  get pixelPtr(): Int32Array {
    return this.#pixPtr.slice();
  }

  /** Copy of one slot's vector. */
  slot(kind: "segment" | "pixel", c: number, s: number): Float32Array {
    const D = this.config.dim;
    const row = kind === "segment" ? this.segmentRow(c, s) : this.pixelRow(c, s);
    return this.#bank.slice(row * D, (row + 1) * D);
  }

  // ---- host enqueue (one class at a time)

  #writeRow(row: number, v: Float32Array, offset: number): void {
    const D = this.config.dim;
    this.#bank.set(v.subarray(offset, offset + D), row * D);
    this.#dirtyRows.add(row);
  }

  /** Enqueues one segment vector [D] for class c. */
  enqueueSegment(c: number, v: Float32Array): void {
    this.#checkClass(c);
    if (v.length !== this.config.dim) {
      throw new Error(`losses/memory_bank: segment vector has ${v.length} != ${this.config.dim} values`);
    }
    const p = this.#segPtr[c];
    this.#writeRow(this.segmentRow(c, p), v, 0);
    this.#segPtr[c] = (p + 1) % this.config.segmentSize;
  }

  /** Enqueues K pixel vectors (K·D values) for class c with the configured semantics. */
  enqueuePixels(c: number, vectors: Float32Array): void {
    this.#checkClass(c);
    const D = this.config.dim, S = this.config.pixelSize;
    if (vectors.length % D !== 0) {
      throw new Error(`losses/memory_bank: ${vectors.length} values is not a multiple of D=${D}`);
    }
    const K = vectors.length / D;
    if (K === 0) return;
    const ptr = this.#pixPtr[c];
    if (this.config.reproducePublicCode) {
      // public code: ptr + K >= size → last K slots, ptr = 0; else [ptr, ptr+K), ptr += 1
      const k = Math.min(K, S); // (the public code cannot write more than the queue holds)
      if (ptr + K >= S) {
        for (let j = 0; j < k; j++) this.#writeRow(this.pixelRow(c, S - k + j), vectors, (K - k + j) * D);
        this.#pixPtr[c] = 0;
      } else {
        for (let j = 0; j < K; j++) this.#writeRow(this.pixelRow(c, ptr + j), vectors, j * D);
        this.#pixPtr[c] = (ptr + 1) % S;
      }
      return;
    }
    // ring buffer: entry j lands at (ptr + j) mod S; with K > S only the last S survive
    for (let j = Math.max(0, K - S); j < K; j++) {
      this.#writeRow(this.pixelRow(c, (ptr + j) % S), vectors, j * D);
    }
    this.#pixPtr[c] = (ptr + K) % S;
  }

  #checkClass(c: number): void {
    if (!(Number.isInteger(c) && c >= 0 && c < this.config.numClasses)) {
      throw new Error(`losses/memory_bank: class ${c} outside [0, ${this.config.numClasses})`);
    }
  }

  // ---- batch update

  /**
   * Enqueues one batch after the loss was computed (keys = the current embeddings, no gradient).
   * embed: [N,h,w,D] float32; labels: [N,H,W] int32 full resolution. `host` may give what is already on the
   * host, so that nothing but the enqueued vectors is read back: `labelsDown`, the labels picked at embedding
   * resolution ([N·h·w], the sampler's copy, used in the intended mode) and `labels`, a host copy of
   * `labels` ([N·H·W]).
   */
  async updateFromBatch(
    embed: Tensor4D,
    labels: Tensor3D,
    rng: Rng,
    host: { labelsDown?: Int32Array; labels?: Int32Array } = {},
  ): Promise<MemoryUpdateInfo> {
    const [N, h, w, D] = embed.shape;
    const { numClasses: C, pixelUpdateFreq, reproducePublicCode, publicLabelStride, ignoreIndex } =
      this.config;
    if (D !== this.config.dim) {
      throw new Error(`losses/memory_bank: embeddings have D=${D}, the memory ${this.config.dim}`);
    }
    const P = h * w;
    // Host: labels on the grid that drives the enqueue.
    let grid: Int32Array, gridPixels: number;
    const [, H, W] = labels.shape;
    if (reproducePublicCode) {
      const s = publicLabelStride;
      gridPixels = Math.ceil(H / s) * Math.ceil(W / s);
      if (gridPixels > P) {
        throw new Error(
          `losses/memory_bank: public-code label grid (${gridPixels}) larger than the feature map (${P})`,
        );
      }
      grid = host.labels
        ? strideLabelsHost(host.labels, labels.shape, s)
        : await readAndDispose<Int32Array>(strideLabels(labels, s));
    } else if (host.labelsDown) {
      if (host.labelsDown.length !== N * P) {
        throw new Error(`losses/memory_bank: labelsDown has ${host.labelsDown.length} != ${N * P}`);
      }
      grid = host.labelsDown;
      gridPixels = P;
    } else {
      grid = host.labels
        ? downsampleLabelsHost(host.labels, labels.shape, [h, w])
        : await readAndDispose<Int32Array>(downsampleLabels(labels, [h, w]));
      gridPixels = P;
    }
    // Host: segment assignment (feature position → b·C + c, or N·C for none) and pixel picks.
    const assign = new Int32Array(N * P).fill(C); // per image: class id, C = none
    const pixelPos: number[] = [];
    const plan: Array<{ b: number; c: number; k: number }> = [];
    const bucket = new Int32Array(gridPixels);
    for (let b = 0; b < N; b++) {
      const off = b * gridPixels;
      const count = new Int32Array(C);
      for (let p = 0; p < gridPixels; p++) {
        const y = grid[off + p];
        if (y !== ignoreIndex && y >= 0 && y < C) count[y]++;
      }
      const start = new Int32Array(C);
      for (let c = 1; c < C; c++) start[c] = start[c - 1] + count[c - 1];
      const fill = start.slice();
      for (let p = 0; p < gridPixels; p++) {
        const y = grid[off + p];
        if (y === ignoreIndex || y < 0 || y >= C) continue;
        if (reproducePublicCode && y === 0) continue;
        bucket[fill[y]++] = p;
        // public code: the label-grid index is used as a feature index (defect 2); intended: same grid
        assign[b * P + p] = y;
      }
      for (let c = reproducePublicCode ? 1 : 0; c < C; c++) {
        const n = count[c];
        if (n === 0) continue;
        const k = Math.min(n, pixelUpdateFreq);
        if (reproducePublicCode) {
          // perm[:K] of 0..n−1 used directly as feature positions (defect 3)
          const perm = rng.permutation(n);
          for (let j = 0; j < k; j++) pixelPos.push(b * P + perm[j]);
        } else {
          for (let j = 0; j < k; j++) {
            const jj = j + rng.int(n - j);
            const t = bucket[start[c] + j];
            bucket[start[c] + j] = bucket[start[c] + jj];
            bucket[start[c] + jj] = t;
            pixelPos.push(b * P + bucket[start[c] + j]);
          }
        }
        plan.push({ b, c, k });
      }
    }
    if (plan.length === 0) return { segments: 0, pixels: 0 };
    // Device: segment sums by a one-hot matmul, pixel gathers; rows L2-normalised; one download.
    const out = tf.tidy(() => {
      const flat = tf.reshape(embed, [N * P, D]) as Tensor2D;
      const parts: tf.Tensor[] = [];
      for (let b = 0; b < N; b++) {
        // per image, so the one-hot stays [P, C]
        // int32 one-hot + cast: tfjs-wasm's OneHot ignores dtype float32 (returns int bits)
        const oneHot = tf.cast(
          tf.oneHot(tf.tensor1d(assign.subarray(b * P, (b + 1) * P), "int32"), C),
          "float32",
        );
        parts.push(tf.matMul(tf.transpose(oneHot as Tensor2D), tf.slice(flat, [b * P, 0], [P, D]))); // [C, D]
      }
      const sums = tf.concat(parts, 0); // [N·C, D]
      const pix = tf.gather(flat, tf.tensor1d(Int32Array.from(pixelPos), "int32"));
      const both = tf.concat([sums, pix], 0);
      return tf.div(both, tf.maximum(tf.norm(both, 2, 1, true), 1e-12));
    });
    const data = await readAndDispose<Float32Array>(out);
    let pixRow = N * C;
    for (const { b, c, k } of plan) {
      this.enqueueSegment(c, data.subarray((b * C + c) * D, (b * C + c + 1) * D));
      this.enqueuePixels(c, data.subarray(pixRow * D, (pixRow + k) * D));
      pixRow += k;
    }
    return { segments: plan.length, pixels: pixelPos.length };
  }

  // ---- contrast set

  /** Contrast-set labels (host), in the order of `contrastFeatures()` rows. */
  contrastLabels(): Int32Array {
    const C = this.config.numClasses, L = this.slotsPerClass;
    const lab = new Int32Array(C * L);
    if (this.config.reproducePublicCode) {
      // classes 1..C−1, then one zero block labelled 0
      for (let c = 1; c < C; c++) lab.fill(c, (c - 1) * L, c * L);
      return lab;
    }
    for (let c = 0; c < C; c++) lab.fill(c, c * L, (c + 1) * L);
    return lab;
  }

  /**
   * The contrast set on the device, [C·(segment_size + pixel_size), D]. The returned tensor is owned by
   * the bank in the intended mode (do not dispose it); in the public-code mode it is a new tensor.
   */
  contrastFeatures(): Tensor2D {
    const dev = this.#sync();
    if (!this.config.reproducePublicCode) return dev;
    const C = this.config.numClasses, L = this.slotsPerClass, D = this.config.dim;
    return tf.tidy(() =>
      tf.concat([tf.slice(dev, [L, 0], [(C - 1) * L, D]), tf.zeros([L, D])], 0) as Tensor2D
    );
  }

  #sync(): Tensor2D {
    const D = this.config.dim, rows = this.#bank.length / D;
    if (this.#device && !this.#allDirty && this.#dirtyRows.size === 0) return this.#device;
    const canPatch = this.#device !== null && !this.#allDirty && this.#dirtyRows.size < rows / 4 &&
      tf.getKernel("TensorScatterUpdate", tf.getBackend()) !== undefined;
    if (canPatch) {
      const idx = Int32Array.from(this.#dirtyRows);
      const upd = new Float32Array(idx.length * D);
      idx.forEach((r, i) => upd.set(this.#bank.subarray(r * D, (r + 1) * D), i * D));
      const next = tf.tidy(() =>
        tf.tensorScatterUpdate(
          this.#device!,
          tf.tensor2d(idx, [idx.length, 1], "int32"),
          tf.tensor2d(upd, [idx.length, D]),
        )
      ) as Tensor2D;
      this.#device!.dispose();
      this.#device = tf.keep(next);
    } else {
      this.#device?.dispose();
      this.#device = tf.keep(tf.tensor2d(this.#bank, [rows, D]));
    }
    this.#dirtyRows.clear();
    this.#allDirty = false;
    return this.#device;
  }

  // ---- state

  getState(): MemoryBankState {
    const { numClasses: C, dim: D, segmentSize: Ss, pixelSize: Sp } = this.config;
    const seg = new Float32Array(C * Ss * D), pix = new Float32Array(C * Sp * D);
    for (let c = 0; c < C; c++) {
      const base = c * this.slotsPerClass * D;
      seg.set(this.#bank.subarray(base, base + Ss * D), c * Ss * D);
      pix.set(this.#bank.subarray(base + Ss * D, base + this.slotsPerClass * D), c * Sp * D);
    }
    return {
      version: 1,
      numClasses: C,
      dim: D,
      segmentSize: Ss,
      pixelSize: Sp,
      segmentQueue: seg,
      pixelQueue: pix,
      segmentPtr: this.#segPtr.slice(),
      pixelPtr: this.#pixPtr.slice(),
      reproducePublicCode: this.config.reproducePublicCode,
    };
  }

  setState(s: MemoryBankState): void {
    const { numClasses: C, dim: D, segmentSize: Ss, pixelSize: Sp } = this.config;
    const bad = (what: string) => {
      throw new Error(`losses/memory_bank: checkpoint state ${what}`);
    };
    if (s.version !== 1) bad(`has version ${s.version}, expected 1`);
    if (s.numClasses !== C || s.dim !== D || s.segmentSize !== Ss || s.pixelSize !== Sp) {
      bad(
        `is C=${s.numClasses} D=${s.dim} segment ${s.segmentSize} pixel ${s.pixelSize}, ` +
          `the bank C=${C} D=${D} segment ${Ss} pixel ${Sp}`,
      );
    }
    if (s.segmentQueue.length !== C * Ss * D || s.pixelQueue.length !== C * Sp * D) {
      bad("has queues of the wrong size");
    }
    if (s.segmentPtr.length !== C || s.pixelPtr.length !== C) bad("has pointer arrays of the wrong length");
    for (let c = 0; c < C; c++) {
      if (!(s.segmentPtr[c] >= 0 && s.segmentPtr[c] < Ss && s.pixelPtr[c] >= 0 && s.pixelPtr[c] < Sp)) {
        bad(`has an out-of-range pointer for class ${c}`);
      }
    }
    if (s.reproducePublicCode !== this.config.reproducePublicCode) {
      bad(
        `was saved with reproducePublicCode=${s.reproducePublicCode}, the bank has ${this.config.reproducePublicCode}`,
      );
    }
    for (let c = 0; c < C; c++) {
      const base = c * this.slotsPerClass * D;
      this.#bank.set(s.segmentQueue.subarray(c * Ss * D, (c + 1) * Ss * D), base);
      this.#bank.set(s.pixelQueue.subarray(c * Sp * D, (c + 1) * Sp * D), base + Ss * D);
    }
    this.#segPtr.set(s.segmentPtr);
    this.#pixPtr.set(s.pixelPtr);
    this.#allDirty = true;
  }

  dispose(): void {
    this.#device?.dispose();
    this.#device = null;
    this.#allDirty = true;
  }
}

/** Reads a tensor's values (asynchronously) and disposes it. */
async function readAndDispose<T extends Int32Array | Float32Array>(t: tf.Tensor): Promise<T> {
  try {
    return (await t.data()) as T;
  } finally {
    t.dispose();
  }
}

/** A memory bank sized from the loss options (TORCH: C queues of 5000 per kind), randomly initialised. */
export function memoryBankFromOptions(
  o: { ignoreIndex: number; memory: MemoryOptions },
  numClasses: number,
  dim: number,
  rng: Rng,
): MemoryBank {
  return new MemoryBank({
    numClasses,
    dim,
    pixelSize: o.memory.pixelSize,
    segmentSize: o.memory.segmentSize,
    pixelUpdateFreq: o.memory.pixelUpdateFreq,
    reproducePublicCode: o.memory.reproducePublicCode,
    publicLabelStride: o.memory.publicLabelStride,
    ignoreIndex: o.ignoreIndex,
  }, rng);
}
