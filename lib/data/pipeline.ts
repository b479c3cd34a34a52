/**
 * One sample through PaddleSeg's pipeline: read (RGB image, label mapped to train ids), transforms,
 * ready for batching. Shared by the loader's workers and its in-process mode, so both give the same
 * bytes for the same (dataset, index, generator state).
 *
 * Train mode: image and label go through the transforms together. Val/test mode (PaddleSeg): only the
 * image is transformed; the label stays as read (mapped to train ids), at the original size.
 */
import { Rng, type RngState } from "../util/rng.ts";
import { loadItem, type SegDataset } from "./dataset.ts";
import { applyTransforms, type Transform } from "./transforms.ts";

export interface ProcessedSample {
  /** [height, width, 3] float32 */
  image: Float32Array;
  width: number;
  height: number;
  /** [labelHeight, labelWidth] uint8 train ids (255 ignore), or null */
  label: Uint8Array | null;
  labelWidth: number;
  labelHeight: number;
}

export async function processSample(
  ds: SegDataset,
  transforms: readonly Transform[],
  index: number,
  rngState: RngState,
): Promise<ProcessedSample> {
  const item = await loadItem(ds, index);
  const rng = new Rng(rngState);
  const train = ds.mode === "train";
  const s = applyTransforms(
    transforms,
    {
      image: item.image.data,
      width: item.width,
      height: item.height,
      label: train ? item.label : null,
    },
    rng,
  );
  if (train) {
    return {
      image: s.image,
      width: s.width,
      height: s.height,
      label: s.label,
      labelWidth: s.width,
      labelHeight: s.height,
    };
  }
  return {
    image: s.image,
    width: s.width,
    height: s.height,
    label: item.label,
    labelWidth: item.width,
    labelHeight: item.height,
  };
}

/** The generator of sample `position` of epoch `epoch` (independent of worker timing and order). */
export function sampleRngState(seed: number, epoch: number, position: number): RngState {
  return new Rng(seed).fork(`sample/${epoch}/${position}`).getState();
}

/** The sample order of an epoch: a seeded permutation, or 0..n-1 without shuffling. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): Int32Array {
  if (!shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  return new Rng(seed).fork(`epoch/${epoch}`).permutation(n);
}
