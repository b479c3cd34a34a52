/**
 * lib/viz: results -> figures. Figures are plain plotly `{data, layout, config}` objects (`Figure`) that
 * also display themselves in Deno's Jupyter kernel (see figure.ts for the JupyterLab strategy); reports
 * are single offline HTML files. Nothing here computes: it draws what lib/train recorded (the run record,
 * lib/train/run_record.ts) and what lib/eval measured (metrics, the feature space), importing only their
 * types.
 */
export * from "./types.ts";
export * from "./figure.ts";
export * from "./charts.ts";
export * from "./overlay.ts";
export * from "./embedding_figure.ts";
export * from "./display.ts";
export * from "./notebook.ts";
export * from "./report.ts";
export * from "./tables.ts";
export * from "./dataset_figures.ts";
export { PLOTLY_VERSION, plotlyBundlePath, plotlyBundleVersion } from "./plotly_bundle.ts";
