/**
 * Plain data shapes of lib/viz's own: plotly figures, the report header, class names and colours.
 *
 * The records lib/viz draws are owned by those who write them: the run record (`metrics.jsonl`: TrainRecord,
 * EvalRecord) by lib/train/run_record.ts, the feature-space measures by lib/eval/feature_space.ts. lib/viz
 * imports only their types and never computes a metric itself.
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

/** What a report says about the run in its header (the run record's, lib/train/run_record.ts). */
export type { RunSummary } from "../train/run_record.ts";

/** Class names and colours (index = trainId). Defaults to Cityscapes' 19 classes where omitted. */
export interface ClassInfo {
  classNames?: readonly string[];
  palette?: readonly (readonly [number, number, number])[];
}
