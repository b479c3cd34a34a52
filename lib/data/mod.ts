/**
 * lib/data: archives, datasets, image I/O, PaddleSeg transforms, the batch loader, the embedded
 * synthetic dataset and the dataset check. Knows nothing about models.
 *
 * Typical use (trainer):
 *   const ds = await openDataset(config.train_dataset);  // plain, serialisable description (synthetic: made if
 *                                                        // needed; a shipped archive, e.g. data/camvid.tar: unpacked)
 *   await checkOnStart(ds);                               // sampled label check; throws DataError with the fix
 *   const loader = new DataLoader(ds, { batchSize: 2, seed, state }); // workers decode + augment ahead
 *   const batch = await loader.next();  // {image: Float32Array [N,H,W,3], label: Int32Array [N,H,W], shape, ...}
 *   // tf.tensor4d(batch.image, [...batch.shape, 3]); tf.tensor3d(batch.label, batch.labelShape, "int32")
 *   checkpoint.loader = loader.state(); // {seed, epoch, batch}
 *   loader.close();
 * Evaluation: `for await (const b of new DataLoader(valDs, { batchSize: 1 }).epoch())` (labels at full size).
 */
import { type Mode, openCityscapes, openListDataset, type SegDataset } from "./dataset.ts";
import { ensureShippedDataset } from "./shipped.ts";
import { openSyntheticCityscapes } from "./synthetic.ts";
import type { TransformSpec } from "./transforms.ts";

export * from "./archive.ts";
export * from "./cityscapes_labels.ts";
export * from "./dataset.ts";
export * from "./image_io.ts";
export * from "./loader.ts";
export * from "./transforms.ts";
export * from "./check.ts";
export * from "./shipped.ts";
export {
  ensureSyntheticCityscapes,
  generateSyntheticTar,
  openSyntheticCityscapes,
  SYNTHETIC_DEFAULT_ROOT,
  SYNTHETIC_DEFAULTS,
  type SyntheticParams,
  syntheticTarPath,
} from "./synthetic.ts";

/** A dataset entry as in a PaddleSeg config (`train_dataset` / `val_dataset`), keys as PaddleSeg's. */
export interface DatasetConfig {
  type: string;
  dataset_root?: string;
  mode?: Mode;
  transforms?: TransformSpec[];
  // Dataset
  train_path?: string;
  val_path?: string;
  test_path?: string;
  num_classes?: number;
  ignore_index?: number;
  separator?: string;
  class_names?: string[];
  // SyntheticCityscapes
  num_train?: number;
  num_val?: number;
  size?: [number, number];
  generator_seed?: number;
  [key: string]: unknown;
}

/**
 * Opens the dataset a config entry describes (SyntheticCityscapes: generated and unpacked if needed; a
 * dataset_root the repository ships as `<root>.tar` + `.sha256`: verified and unpacked if needed).
 */
export async function openDataset(
  cfg: DatasetConfig,
  opts: { progress?: boolean } = {},
): Promise<SegDataset> {
  const where = `dataset type '${cfg.type}'`;
  switch (cfg.type) {
    case "Cityscapes":
      if (!cfg.dataset_root) throw new Error(`${where}: dataset_root is required`);
      await ensureShippedDataset(cfg.dataset_root, { progress: opts.progress });
      return await openCityscapes({
        dataset_root: cfg.dataset_root,
        mode: cfg.mode,
        transforms: cfg.transforms,
      });
    case "Dataset":
      if (!cfg.dataset_root) throw new Error(`${where}: dataset_root is required`);
      if (cfg.num_classes === undefined) throw new Error(`${where}: num_classes is required`);
      await ensureShippedDataset(cfg.dataset_root, { progress: opts.progress });
      return await openListDataset({
        dataset_root: cfg.dataset_root,
        mode: cfg.mode,
        num_classes: cfg.num_classes,
        ignore_index: cfg.ignore_index,
        separator: cfg.separator,
        train_path: cfg.train_path,
        val_path: cfg.val_path,
        test_path: cfg.test_path,
        transforms: cfg.transforms,
        class_names: cfg.class_names,
      });
    case "SyntheticCityscapes":
      return await openSyntheticCityscapes({
        dataset_root: cfg.dataset_root,
        mode: cfg.mode,
        transforms: cfg.transforms,
        num_train: cfg.num_train,
        num_val: cfg.num_val,
        size: cfg.size,
        generator_seed: cfg.generator_seed,
        progress: opts.progress,
      });
    default:
      throw new Error(`unknown ${where} (supported: Cityscapes, Dataset, SyntheticCityscapes)`);
  }
}
