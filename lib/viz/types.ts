/**
 * Plain data shapes that lib/viz turns into figures and reports.
 *
 * The trainer writes one JSON object per line to `<save_dir>/metrics.jsonl`: a {@link TrainRecord} every
 * `log_iters` iterations and an {@link EvalRecord} after every evaluation. lib/viz only reads these
 * records; it never computes a metric the trainer or lib/eval did not already compute (the embedding
 * structure measures in `embedding.ts` are figure captions, not training metrics).
 */

/** A plotly trace (`{type, ...}`); kept loose on purpose: plotly's schema is large and versioned. */
export interface PlotlyTrace {
  type: string;
  [key: string]: unknown;
}

/** A plotly figure: exactly what `Plotly.newPlot(div, data, layout, config)` takes. */
export interface PlotlyFigureSpec {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/**
 * Per-iteration diagnostics of the pixel contrast term (PixelContrastLoss), averaged over the iterations
 * since the previous log line. All fields are optional numbers so a CE-only run can omit the block.
 */
export interface ContrastDiagnostics {
  /**
   * Anchors sampled per class (index = trainId, length = number of classes; 0 for a class absent from
   * the batch). The sampler picks `n_view` pixels per (image, class) present (docs/method.md §4.3).
   */
  anchorsPerClass?: number[];
  /** Number of hard anchors (label c, predicted ≠ c) in the contrast set. */
  hard?: number;
  /** Number of easy anchors (label c, predicted = c) in the contrast set. */
  easy?: number;
  /** Mean cosine similarity z_i·z_p over positive pairs (same class, i ≠ p). In [-1, 1]. */
  posSim?: number;
  /** Mean cosine similarity z_i·z_n over negative pairs (different class). In [-1, 1]. */
  negSim?: number;
  /** Share of the optimised loss that comes from the weighted contrast term: w·contrast / loss, in [0, 1]. */
  contrastShare?: number;
}

/** One training log line (`type: "train"`). Losses are the values the optimiser saw (after averaging). */
export interface TrainRecord {
  type: "train";
  /** Iteration number just completed (1-based, as PaddleSeg prints it). */
  iter: number;
  /** Learning rate used for this iteration (backbone group). */
  lr: number;
  /** Total optimised loss = ce + contrast_weight · contrast. */
  loss: number;
  /** Cross-entropy part (sum over the heads the config weights in, already weighted). */
  ce: number;
  /** Unweighted pixel-contrast loss; null (or absent) for a CE-only run or before the contrast warm-up. */
  contrast?: number | null;
  /** Contrast diagnostics; null/absent for CE-only runs. */
  diagnostics?: ContrastDiagnostics | null;
  /** Wall-clock seconds since the start of training (not counting a resumed run's earlier part). */
  time: number;
  /** Optional: seconds per iteration over the last log interval. */
  iterTime?: number;
}

/** One evaluation record (`type: "eval"`). Metric values are fractions in [0, 1], as PaddleSeg prints them. */
export interface EvalRecord {
  type: "eval";
  /** Iteration of the evaluated weights. */
  iter: number;
  /** Mean IoU over classes (classes absent from both prediction and ground truth count as lib/eval says). */
  mIoU: number;
  /** Pixel accuracy. */
  acc: number;
  /** Cohen's kappa. */
  kappa: number;
  /** IoU per class, index = trainId. */
  classIoU: number[];
  /** Optional: accuracy (precision, as PaddleSeg's `class_acc`) per class, index = trainId. */
  classAcc?: number[];
  /** Optional confusion matrix of pixel counts: rows = ground truth class, columns = predicted class. */
  confusion?: number[][];
  /**
   * The evaluation mode, printed beside every number: e.g. `"whole"`,
   * `"slide 1024x512/768x512, scales [0.75,1,1.25], flip"`. Records with different modes are drawn as
   * separate series.
   */
  mode: string;
  /** Mean validation loss (CE) if the evaluator computed it; null/absent otherwise. */
  valLoss?: number | null;
}

/** A line of `metrics.jsonl`. */
export type MetricsRecord = TrainRecord | EvalRecord;

/** What a report says about the run in its header. */
export interface RunSummary {
  /** Config file name or path, e.g. `configs/cityscapes/hrnetw48_contrast_1024x512_60k.yml`. */
  configName: string;
  /** TensorFlow.js backend name (`tensorflow`, `wasm`, `webgpu`, `cpu`). */
  backend: string;
  /** Optional extra key/value lines (model, dataset, iterations, batch size, seed, start time, ...). */
  details?: Record<string, string | number | boolean>;
}

/** Class names and colours (index = trainId). Defaults to Cityscapes' 19 classes where omitted. */
export interface ClassInfo {
  classNames?: readonly string[];
  palette?: readonly (readonly [number, number, number])[];
}
