/**
 * Batches for training and evaluation, decoded and augmented ahead of time in Web Workers.
 *
 * Order as PaddleSeg's `DistributedBatchSampler(shuffle, drop_last)` on one device: each epoch is a
 * seeded permutation of the dataset (or the identity), cut into batches; with drop_last the incomplete
 * tail is dropped. Determinism: the order of epoch e comes from `Rng(seed).fork("epoch/e")` and the
 * augmentation of sample p of epoch e from `Rng(seed).fork("sample/e/p")`, so batches are identical
 * whatever the number of workers or their timing. Resume: `state()` gives {seed, epoch, batch} of the
 * next batch `next()` returns; a loader created with that state continues exactly there.
 *
 * Batch format (what the trainer turns into tensors):
 *   image: Float32Array [N, H, W, 3] (NHWC, after the transforms: e.g. normalised to [-1, 1])
 *   label: Int32Array   [N, Hl, Wl]  class ids and the dataset's ignore_index (Cityscapes 255)
 *                                    (train: Hl, Wl = H, W; val/test: the label as read, original size)
 */
import { buildTransforms, RandomPaddingCrop, type Transform } from "./transforms.ts";
import type { SegDataset } from "./dataset.ts";
import { epochOrder, type ProcessedSample, processSample, sampleRngState } from "./pipeline.ts";
import type { RngState } from "../util/rng.ts";

export interface LoaderState {
  seed: number;
  epoch: number;
  /** index of the next batch within the epoch */
  batch: number;
}

export interface LoaderOptions {
  batchSize: number;
  /** Shuffle each epoch (default: true in train mode, false otherwise). */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default: true in train mode, false otherwise). */
  dropLast?: boolean;
  seed?: number;
  /** Decoding workers (default: cores - 1, at most 4, at least 1); 0 runs in this thread. */
  workers?: number;
  /** Batches prepared ahead (default 2, at least 1). */
  prefetch?: number;
  /** Where to start (resume). */
  state?: LoaderState;
}

export interface Batch {
  /** [N, H, W, 3] float32, NHWC */
  image: Float32Array;
  /** [N, Hl, Wl] int32 class ids; `ignoreIndex` marks ignored pixels */
  label: Int32Array;
  /** the dataset's ignore value (Cityscapes 255) */
  ignoreIndex: number;
  /** [N, H, W] of image */
  shape: [number, number, number];
  /** [N, Hl, Wl] of label */
  labelShape: [number, number, number];
  /** dataset indices of the samples */
  indices: number[];
  epoch: number;
  batch: number;
}

type Pending = { resolve: (s: ProcessedSample) => void; reject: (e: Error) => void };

interface Runner {
  run(index: number, rng: RngState): Promise<ProcessedSample>;
  close(): void;
}

function inProcessRunner(ds: SegDataset, transforms: Transform[]): Runner {
  return { run: (index, rng) => processSample(ds, transforms, index, rng), close: () => {} };
}

function workerRunner(ds: SegDataset, n: number): Runner {
  const workers = Array.from(
    { length: n },
    () => new Worker(new URL("./loader_worker.ts", import.meta.url).href, { type: "module" }),
  );
  const pending = new Map<number, Pending & { worker: number }>();
  const load = new Array(n).fill(0);
  let nextId = 0;
  let broken: Error | null = null;
  workers.forEach((w, k) => {
    w.postMessage({ init: ds });
    w.onmessage = (e: MessageEvent) => {
      const { id, sample, error } = e.data;
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      load[p.worker]--;
      if (error) p.reject(new Error(error));
      else p.resolve(sample);
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      broken = new Error(`data loader worker ${k} crashed: ${e.message}`);
      for (const p of pending.values()) p.reject(broken);
      pending.clear();
    };
  });
  return {
    run(index, rng) {
      if (broken) return Promise.reject(broken);
      let k = 0;
      for (let j = 1; j < n; j++) if (load[j] < load[k]) k = j;
      load[k]++;
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, worker: k });
        workers[k].postMessage({ id, index, rng });
      });
    },
    close() {
      for (const w of workers) w.terminate();
      const err = new Error("data loader closed");
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    },
  };
}

/** Label padding must be a class or the dataset's ignore value (else the loss meets an unknown label). */
export function checkLabelPadding(ds: SegDataset, transforms: readonly Transform[]): void {
  for (const t of transforms) {
    if (t instanceof RandomPaddingCrop && ds.mode === "train") {
      const v = t.label_padding_value;
      if (v !== ds.ignoreIndex && v >= ds.numClasses) {
        throw new Error(
          `RandomPaddingCrop pads labels with ${v}, which is neither a class (0..${
            ds.numClasses - 1
          }) nor the ` +
            `dataset's ignore_index ${ds.ignoreIndex}: set label_padding_value: ${ds.ignoreIndex}`,
        );
      }
    }
  }
}

export function defaultWorkers(): number {
  const cores = navigator.hardwareConcurrency || 2;
  return Math.max(1, Math.min(4, cores - 1));
}

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly prefetch: number;
  readonly workers: number;
  #ds: SegDataset;
  #runner: Runner;
  #epoch: number;
  #batch: number;
  #order: { epoch: number; order: Int32Array } | null = null;
  /** batches requested ahead, keyed "epoch/batch" */
  #ahead = new Map<string, Promise<Batch>>();
  #closed = false;

  constructor(ds: SegDataset, opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new Error(`DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    }
    const train = ds.mode === "train";
    this.#ds = ds;
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle ?? train;
    this.dropLast = opts.dropLast ?? train;
    this.seed = opts.state?.seed ?? opts.seed ?? 0;
    this.prefetch = Math.max(1, opts.prefetch ?? 2);
    this.#epoch = opts.state?.epoch ?? 0;
    this.#batch = opts.state?.batch ?? 0;
    if (this.batchesPerEpoch === 0) {
      throw new Error(
        `DataLoader: ${ds.items.length} samples make no complete batch of ${this.batchSize} (drop_last); ` +
          "lower batch_size or add data",
      );
    }
    const transforms = buildTransforms(ds.transforms); // validate in this thread: errors surface here
    checkLabelPadding(ds, transforms);
    this.workers = opts.workers ?? defaultWorkers();
    this.#runner = this.workers > 0 ? workerRunner(ds, this.workers) : inProcessRunner(ds, transforms);
  }

  get dataset(): SegDataset {
    return this.#ds;
  }

  get batchesPerEpoch(): number {
    const n = this.#ds.items.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Position of the next batch that `next()` returns (save it with a checkpoint to resume). */
  state(): LoaderState {
    return { seed: this.seed, epoch: this.#epoch, batch: this.#batch };
  }

  #orderOf(epoch: number): Int32Array {
    if (this.#order?.epoch !== epoch) {
      this.#order = { epoch, order: epochOrder(this.#ds.items.length, this.seed, epoch, this.shuffle) };
    }
    return this.#order.order;
  }

  #request(epoch: number, batch: number): Promise<Batch> {
    const key = `${epoch}/${batch}`;
    let p = this.#ahead.get(key);
    if (!p) {
      const order = this.#orderOf(epoch);
      const start = batch * this.batchSize;
      const indices = Array.from(order.subarray(start, Math.min(start + this.batchSize, order.length)));
      const samples = indices.map((index, j) =>
        this.#runner.run(index, sampleRngState(this.seed, epoch, start + j))
      );
      p = Promise.all(samples).then((s) => this.#assemble(s, indices, epoch, batch));
      p.catch(() => {}); // handled when awaited; avoid unhandled rejections of prefetched batches
      this.#ahead.set(key, p);
    }
    return p;
  }

  #assemble(samples: ProcessedSample[], indices: number[], epoch: number, batch: number): Batch {
    const s0 = samples[0];
    const N = samples.length;
    for (let j = 1; j < N; j++) {
      const s = samples[j];
      if (
        s.width !== s0.width || s.height !== s0.height || s.labelWidth !== s0.labelWidth ||
        s.labelHeight !== s0.labelHeight
      ) {
        throw new Error(
          `cannot batch images of different sizes: '${
            this.#ds.items[indices[0]].image
          }' gives ${s0.width}x${s0.height}, ` +
            `'${
              this.#ds.items[indices[j]].image
            }' gives ${s.width}x${s.height}; add a RandomPaddingCrop or Resize, ` +
            "or use batch size 1",
        );
      }
    }
    const hw = s0.width * s0.height, lhw = s0.labelWidth * s0.labelHeight;
    const image = new Float32Array(N * hw * 3);
    const label = new Int32Array(N * lhw).fill(this.#ds.ignoreIndex);
    samples.forEach((s, j) => {
      image.set(s.image, j * hw * 3);
      if (s.label) {
        const o = j * lhw;
        for (let i = 0; i < lhw; i++) label[o + i] = s.label[i];
      }
    });
    return {
      image,
      label,
      shape: [N, s0.height, s0.width],
      labelShape: [N, s0.labelHeight, s0.labelWidth],
      ignoreIndex: this.#ds.ignoreIndex,
      indices,
      epoch,
      batch,
    };
  }

  /** Keeps `prefetch` batches in flight from position (epoch, batch), optionally not past the epoch's end. */
  #prefetchFrom(epoch: number, batch: number, withinEpoch: boolean) {
    let e = epoch, b = batch;
    for (let k = 0; k < this.prefetch; k++) {
      if (b >= this.batchesPerEpoch) {
        if (withinEpoch) return;
        b = 0;
        e++;
      }
      this.#request(e, b++);
    }
  }

  /** The next batch, continuing into the next epoch at the end of one (training iterates this). */
  next(): Promise<Batch> {
    return this.#next(false);
  }

  async #next(withinEpoch: boolean): Promise<Batch> {
    if (this.#closed) throw new Error("DataLoader: next() after close()");
    if (this.#batch >= this.batchesPerEpoch) {
      this.#epoch++;
      this.#batch = 0;
    }
    const e = this.#epoch, b = this.#batch;
    const p = this.#request(e, b);
    this.#ahead.delete(`${e}/${b}`);
    this.#batch++;
    this.#prefetchFrom(e, this.#batch, withinEpoch);
    return await p;
  }

  /** The remaining batches of the current epoch (evaluation: one pass; nothing is prepared beyond it). */
  async *epoch(): AsyncGenerator<Batch> {
    if (this.#batch >= this.batchesPerEpoch) {
      this.#epoch++;
      this.#batch = 0;
    }
    const e = this.#epoch;
    while (this.#epoch === e && this.#batch < this.batchesPerEpoch) yield await this.#next(true);
  }

  /** Stops the workers; pending batches reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#runner.close();
    this.#ahead.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
