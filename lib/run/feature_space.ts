/**
 * The feature space of trained models (the paper's picture of the embeddings): lib/eval's `featureSpace` over
 * the first images of a validation set, each model built from its config and loaded from its weights one at a
 * time. What `deno task viz embed` and notebook 04 both call; lib/viz draws the result.
 */
import type { Config } from "../config/mod.ts";
import type { SegDataset } from "../data/mod.ts";
import type { FeatureLayer } from "../eval/features.ts";
import {
  featureSpace,
  type FeatureSpaceOptions,
  type FeatureSpaceResult,
  type FeatureSpaceSubject,
} from "../eval/feature_space.ts";
import { valSamples } from "../eval/samples.ts";
import { loadTrainedModel } from "./trained_model.ts";

/** A trained model to read: its config, its weights (`--model_path`) and which layers. */
export interface TrainedSubject {
  title: string;
  config: Config;
  path: string;
  layers: readonly FeatureLayer[];
}

export interface TrainedFeatureSpaceOptions
  extends Pick<FeatureSpaceOptions, "perClass" | "seed" | "projections" | "onSelection" | "onFeatures"> {
  /** The validation set; its first `images` images are read. */
  dataset: SegDataset;
  images: number;
  /** Panel title of a subject's layer (default: the subject's title). */
  panelTitle?: (subject: TrainedSubject, layer: FeatureLayer) => string;
  /** Where the weight loading reports (import report of foreign weights). Default: nowhere. */
  log?: (line: string) => void;
}

/**
 * Reads every subject's layers at the same class-balanced, seeded pixels of the dataset's first images and
 * compares them (measures, projections); a model whose class count differs from the dataset's is refused.
 */
export async function trainedFeatureSpace(
  subjects: readonly TrainedSubject[],
  o: TrainedFeatureSpaceOptions,
): Promise<FeatureSpaceResult> {
  const ds = o.dataset;
  const trained = new Map<FeatureSpaceSubject, TrainedSubject>();
  return await featureSpace(
    subjects.map((s) => {
      const subject: FeatureSpaceSubject = {
        title: s.title,
        layers: s.layers,
        load: async () => {
          const { model, file } = await loadTrainedModel(s.config, s.path, o.log);
          if (model.numClasses !== ds.numClasses) {
            model.dispose();
            throw new Error(
              `${file}: the model predicts ${model.numClasses} classes, the dataset has ${ds.numClasses}`,
            );
          }
          return model;
        },
      };
      trained.set(subject, s);
      return subject;
    }),
    {
      samples: () => valSamples(ds, { limit: o.images }),
      perClass: o.perClass,
      seed: o.seed,
      ignoreIndex: ds.ignoreIndex,
      projections: o.projections,
      panelTitle: o.panelTitle ? (s, layer) => o.panelTitle!(trained.get(s)!, layer) : undefined,
      onSelection: o.onSelection,
      onFeatures: o.onFeatures,
    },
  );
}
