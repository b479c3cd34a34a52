/**
 * Set-up step: the datasets of the README's commands, unpacked by the real unpack step (archive.ts):
 * - the embedded synthetic dataset (SyntheticCityscapes with the default parameters, as
 *   configs/_base_/synthetic_cityscapes.yml uses them), generated as data/synthetic_cityscapes.tar and
 *   unpacked into data/synthetic_cityscapes/;
 * - CamVid, shipped as data/camvid.tar (data/README.md), checked against data/camvid.tar.sha256 and
 *   unpacked into data/camvid/ (configs/camvid/).
 * Cached: a tar with matching parameters and completed unpacks are reused (well under a second).
 */
import * as path from "node:path";
import { ensureSyntheticCityscapes, SYNTHETIC_DEFAULT_ROOT } from "../../lib/data/synthetic.ts";
import { ensureShippedDataset } from "../../lib/data/shipped.ts";

/** Datasets the repository ships as `<root>.tar` (+ `.sha256`). */
export const SHIPPED_DATASETS = ["data/camvid"];
import type { SetupContext, SetupStep } from "./steps.ts";

export const datasetStep: SetupStep = {
  name: "dataset",
  purposes: ["train", "test"],
  run: async (ctx: SetupContext) => {
    const r = await ensureSyntheticCityscapes({
      dataset_root: path.join(ctx.root, SYNTHETIC_DEFAULT_ROOT),
      progress: !ctx.quiet,
    });
    if (r.generated || r.unpacked) ctx.log(`synthetic dataset ready in ${path.relative(ctx.root, r.root)}`);
    let did = r.generated || r.unpacked;
    for (const rel of SHIPPED_DATASETS) {
      const s = await ensureShippedDataset(path.join(ctx.root, rel), { progress: !ctx.quiet });
      if (!s) {
        throw new Error(`${rel}.tar.sha256 is missing: the repository ships ${rel}.tar with its checksum`);
      }
      if (s.unpacked) ctx.log(`${rel}.tar: checksum verified, ${s.written} files unpacked into ${rel}`);
      did ||= s.unpacked;
    }
    return did;
  },
};
