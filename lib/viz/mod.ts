/**
 * lib/viz: results -> figures. Figures are plain plotly `{data, layout, config}` objects (`Figure`) that
 * also display themselves in Deno's Jupyter kernel (see figure.ts for the JupyterLab strategy); reports
 * are single offline HTML files. Nothing here computes training or evaluation metrics: it draws what
 * lib/train and lib/eval recorded (types.ts). The embedding structure measures are figure captions.
 */
export * from "./types.ts";
export * from "./figure.ts";
export * from "./charts.ts";
export * from "./overlay.ts";
export * from "./embedding.ts";
export * from "./embedding_figure.ts";
export * from "./display.ts";
export * from "./notebook.ts";
export * from "./report.ts";
export * from "./tables.ts";
export * from "./dataset_figures.ts";
export { PLOTLY_VERSION, plotlyBundlePath, plotlyBundleVersion } from "./plotly_bundle.ts";
