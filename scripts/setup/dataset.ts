/**
 * Set-up step: the embedded synthetic dataset (SyntheticCityscapes with the default parameters, as
 * configs/_base_/synthetic_cityscapes.yml uses them), generated as data/synthetic_cityscapes.tar and
 * unpacked into data/synthetic_cityscapes/ by the real unpack step. Cached: a tar with matching parameters
 * and a completed unpack are reused (well under a second).
 */
import * as path from "node:path";
import { ensureSyntheticCityscapes, SYNTHETIC_DEFAULT_ROOT } from "../../lib/data/synthetic.ts";
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
    return r.generated || r.unpacked;
  },
};
