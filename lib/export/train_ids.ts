/**
 * PaddleSeg's Cityscapes dataset reads `gtFine/<mode>/<city>/*_gtFine_labelTrainIds.png` only; we also
 * read `*_gtFine_labelIds.png` and convert them on load (the embedded synthetic dataset ships those). This
 * writes the train-id files PaddleSeg needs beside the label-id files, with the same official table our
 * loader uses (lib/data `cityscapesLuts`), as cityscapesScripts' createTrainIdLabelImgs would: new files
 * only (an existing path, a link included, is never replaced), each written atomically; a value outside
 * the table fails naming the file, before anything of that file is written.
 */
import { labelChannel, mapLabel, openCityscapes, readLabelImage, writePng } from "../data/mod.ts";

export interface TrainIdsResult {
  /** Label-id files converted now. */
  written: number;
  /** Images that already had a train-id file. */
  present: number;
  /** Images whose label-id file still lacks its train-id twin (only when `write` is false). */
  missing: string[];
}

/**
 * Makes sure every image of a Cityscapes-layout split has a `*_gtFine_labelTrainIds.png`; with `write`
 * false it only lists what is missing.
 */
export async function ensureTrainIds(
  root: string,
  mode: "train" | "val" | "test",
  o: { write: boolean; log?: (line: string) => void },
): Promise<TrainIdsResult> {
  const ds = await openCityscapes({ dataset_root: root, mode });
  const r: TrainIdsResult = { written: 0, present: 0, missing: [] };
  for (const item of ds.items) {
    if (item.labelKind === "trainIds" || !item.label) {
      r.present++;
      continue;
    }
    const target = item.label.replace(/_gtFine_labelIds\.png$/, "_gtFine_labelTrainIds.png");
    if (target === item.label) throw new Error(`unexpected label file name '${item.label}'`);
    if (await Deno.lstat(target).then(() => true, () => false)) {
      throw new Error(
        `'${target}' exists but is not a readable train-id label (a link or a folder?); remove it first`,
      );
    }
    if (!o.write) {
      r.missing.push(item.label);
      continue;
    }
    const raw = await readLabelImage(item.label);
    const trainIds = mapLabel(ds, item, labelChannel(raw, item.label));
    await writePng(target, { data: trainIds, width: raw.width, height: raw.height, channels: 1, depth: 8 });
    r.written++;
  }
  if (r.written) o.log?.(`wrote ${r.written} *_gtFine_labelTrainIds.png under ${root}/gtFine/${mode}`);
  return r;
}
