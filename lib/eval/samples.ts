/**
 * Validation samples from a lib/data dataset, in the form `evaluate` takes: the dataset's validation
 * transforms (Normalize only in PaddleSeg's configs) applied by the data loader's workers, one image at a
 * time, in dataset order. Shared by in-training evaluation and `deno task val`, so both see the same data.
 */
import { DataLoader, type SegDataset } from "../data/mod.ts";
import type { EvalSample } from "./evaluate.ts";

export interface ValSamplesOptions {
  /** Decoding workers (default: the loader's default); 0 decodes in this thread. */
  workers?: number;
  /** Only the first N images (quick checks); default all. */
  limit?: number;
}

/** Async iterable over the dataset's images; `length` is known up front for progress and ETA. */
export function valSamples(
  ds: SegDataset,
  o: ValSamplesOptions = {},
): AsyncIterable<EvalSample> & { length: number } {
  const length = Math.min(ds.items.length, o.limit ?? Infinity);
  return {
    length,
    async *[Symbol.asyncIterator]() {
      const loader = new DataLoader(ds, {
        batchSize: 1,
        shuffle: false,
        dropLast: false,
        workers: o.workers,
      });
      try {
        let n = 0;
        for await (const b of loader.epoch()) {
          if (n++ >= length) break;
          const [, h, w] = b.shape;
          const [, lh, lw] = b.labelShape;
          yield {
            image: b.image,
            height: h,
            width: w,
            label: b.label,
            labelHeight: lh,
            labelWidth: lw,
            name: ds.items[b.indices[0]].image,
          };
        }
      } finally {
        loader.close();
      }
    },
  };
}
