import { assert, assertAlmostEquals, assertEquals, assertThrows } from "../_helpers/assert.ts";
import {
  classIoUBars,
  confusionHeatmap,
  contrastDiagnostics,
  lossCurves,
  lrCurve,
  rowNormalize,
  valCurves,
} from "../../lib/viz/charts.ts";
import { embeddingFigure } from "../../lib/viz/embedding_figure.ts";
import { CITYSCAPES_CLASS_NAMES, CITYSCAPES_PALETTE } from "../../lib/data/cityscapes_labels.ts";
import { ema } from "../../lib/viz/layout.ts";
import type { PlotlyTrace } from "../../lib/viz/types.ts";
import { fakeEvals, fakeTrain } from "./_data.ts";

const rgb = (c: readonly number[]) => `rgb(${c[0]},${c[1]},${c[2]})`;

/** The figure survives a JSON round trip unchanged (what the MIME bundle and the HTML carry). */
function jsonSafe(spec: { data: unknown; layout: unknown }): void {
  assertEquals(JSON.parse(JSON.stringify(spec)), spec);
}

/** Every trace's axis references exist in the layout. */
function axesExist(data: PlotlyTrace[], layout: Record<string, unknown>): void {
  for (const t of data) {
    for (const [k, pre] of [["xaxis", "x"], ["yaxis", "y"]] as const) {
      const ref = (t[k] as string | undefined) ?? pre;
      const key = `${k}${ref.slice(1)}`;
      assert(layout[key] !== undefined || ref === pre, `trace ${t.name} refers to missing ${key}`);
    }
  }
}

Deno.test("lossCurves: total, CE and contrast panels, raw + smoothed, x = iterations", () => {
  const train = fakeTrain(500, 100);
  const fig = lossCurves(train, { smoothing: 0.5 });
  assertEquals(fig.data.length, 6);
  assert(fig.data.every((t) => t.type === "scatter"));
  assertEquals(new Set(fig.data.map((t) => t.yaxis)).size, 3, "three panels");
  assertEquals(fig.data[0].x, train.map((r) => r.iter));
  assertEquals(fig.data[2].y, train.map((r) => r.ce), "CE raw");
  const contrastRaw = fig.data[4].y as (number | null)[];
  assertEquals(contrastRaw.slice(0, 9), new Array(9).fill(null), "no contrast before warm-up");
  assertEquals(contrastRaw[9], train[9].contrast);
  assertEquals(fig.data[1].y, ema(train.map((r) => r.loss), 0.5));
  axesExist(fig.data, fig.layout);
  jsonSafe(fig);
  // CE-only run: two panels; no smoothing: raw only
  const ce = lossCurves(fakeTrain(100, -1), { smoothing: 0 });
  assertEquals(ce.data.length, 2);
  // empty: a placeholder figure, not an error
  assert(lossCurves([]).layout.annotations !== undefined);
});

Deno.test("ema: debiased exponential average", () => {
  const e = ema([1, 3, null, 5], 0.5);
  assertAlmostEquals(e[0]!, 1);
  assertAlmostEquals(e[1]!, (0.25 * 1 + 0.5 * 3) / 0.75);
  assertEquals(e[2], null);
  assertThrows(() => ema([1], 1), "weight");
});

Deno.test("lrCurve and valCurves: one series per evaluation mode, mode in names", () => {
  const train = fakeTrain(200);
  const lr = lrCurve(train, { logY: true });
  assertEquals(lr.data[0].y, train.map((r) => r.lr));
  assertEquals((lr.layout.yaxis as Record<string, unknown>).type, "log");
  const evals = [...fakeEvals([100, 200]), ...fakeEvals([200], 19, "slide 1024x512, flip")];
  const v = valCurves(evals);
  const names = v.data.map((t) => t.name);
  assertEquals(names, [
    "mIoU [whole]",
    "acc [whole]",
    "val loss [whole]",
    "mIoU [slide 1024x512, flip]",
    "acc [slide 1024x512, flip]",
    "val loss [slide 1024x512, flip]",
  ]);
  assertEquals(v.data[0].y, evals.slice(0, 2).map((e) => e.mIoU));
  assertEquals(v.data[2].yaxis, "y2", "val loss on its own panel");
  axesExist(v.data, v.layout);
  const noLoss = valCurves(fakeEvals([100]).map((e) => ({ ...e, valLoss: null })));
  assertEquals(noLoss.data.length, 2);
});

Deno.test("classIoUBars: Cityscapes names and official colours, values, mIoU line, mode", () => {
  const [ev] = fakeEvals([1000]);
  const fig = classIoUBars(ev);
  const bar = fig.data[0];
  assertEquals(bar.type, "bar");
  assertEquals(bar.x, [...CITYSCAPES_CLASS_NAMES]);
  assertEquals(bar.y, ev.classIoU);
  assertEquals((bar.marker as { color: string[] }).color, CITYSCAPES_PALETTE.map(rgb));
  assertEquals((fig.layout.shapes as { y0: number }[])[0].y0, ev.mIoU);
  assert(fig.title.includes("[whole]") && fig.title.includes("1000"), fig.title);
  // custom classes: names and palette from the caller; NaN IoU (absent class) -> null
  const custom = classIoUBars({ classIoU: [0.5, NaN], mode: "whole" }, {
    classNames: ["sky", "tree"],
    palette: [[1, 2, 3], [4, 5, 6]],
  });
  assertEquals(custom.data[0].x, ["sky", "tree"]);
  assertEquals(custom.data[0].y, [0.5, null]);
  assertEquals((custom.data[0].marker as { color: string[] }).color, ["rgb(1,2,3)", "rgb(4,5,6)"]);
});

Deno.test("confusionHeatmap: rows = ground truth, row-normalised option, class names", () => {
  const conf = [[8, 2, 0], [0, 0, 0], [1, 1, 2]];
  assertEquals(rowNormalize(conf), [[0.8, 0.2, 0], [null, null, null], [0.25, 0.25, 0.5]]);
  const names = ["a", "b", "c"];
  const fig = confusionHeatmap(conf, { classNames: names, mode: "whole", iter: 5 });
  const t = fig.data[0];
  assertEquals(t.type, "heatmap");
  assertEquals(t.z, rowNormalize(conf));
  assertEquals([t.x, t.y], [names, names]);
  assertEquals((fig.layout.yaxis as Record<string, unknown>).autorange, "reversed", "row 0 on top");
  assert(fig.title.includes("[whole]"));
  const counts = confusionHeatmap(conf, { classNames: names, normalize: "none" });
  assertEquals(counts.data[0].z, conf);
  assertThrows(() => confusionHeatmap([[1, 2]]), "square");
  // default names: Cityscapes
  const big = confusionHeatmap(fakeEvals([1])[0].confusion!);
  assertEquals(big.data[0].x, [...CITYSCAPES_CLASS_NAMES]);
  jsonSafe(big);
});

Deno.test("contrastDiagnostics: anchors per class (class colours), hard/easy, similarities, share", () => {
  const train = fakeTrain(300, 100);
  const fig = contrastDiagnostics(train);
  const byName = new Map(fig.data.map((t) => [t.name, t]));
  const anchors = byName.get("anchors")!;
  assertEquals(anchors.type, "bar");
  assertEquals(anchors.x, [...CITYSCAPES_CLASS_NAMES]);
  assertEquals((anchors.marker as { color: string[] }).color, CITYSCAPES_PALETTE.map(rgb));
  assertEquals((anchors.y as number[])[1], 11, "mean anchors of class 1");
  assertEquals((anchors.y as number[])[0], 0);
  const withDiag = train.filter((r) => r.diagnostics);
  for (const k of ["hard anchors", "easy anchors", "positive pairs", "negative pairs", "contrast share"]) {
    assert(byName.has(k), `missing ${k}`);
    assertEquals(byName.get(k)!.x, withDiag.map((r) => r.iter));
  }
  assertEquals(byName.get("contrast share")!.y, withDiag.map((r) => r.diagnostics!.contrastShare));
  axesExist(fig.data, fig.layout);
  // CE-only: a placeholder that says so
  const ce = contrastDiagnostics(fakeTrain(100, -1));
  assert(JSON.stringify(ce.layout.annotations).includes("CE-only"));
});

Deno.test("embeddingFigure: panels side by side, one trace per class, legend once, captions", () => {
  const xy = Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3]);
  const labels = [0, 13, 13, 0];
  const measures = {
    separation: { intra: 0.5, inter: 0.1, gap: 0.4, classes: 2 },
    knn: { accuracy: 0.75, k: 10, queries: 4 },
  };
  const fig = embeddingFigure([
    { title: "CE only", xy, labels, measures },
    { title: "CE + contrast", xy, labels },
  ], { method: "UMAP" });
  assertEquals(fig.data.length, 4);
  assertEquals(fig.data.map((t) => t.name), ["road", "car", "road", "car"]);
  assertEquals(fig.data.map((t) => t.showlegend), [true, true, false, false]);
  assertEquals(fig.data.map((t) => t.xaxis), ["x", "x", "x2", "x2"]);
  assertEquals((fig.data[1].marker as { color: string }).color, rgb(CITYSCAPES_PALETTE[13]));
  assertEquals(fig.data[1].x, [1, 2]);
  const ann = JSON.stringify(fig.layout.annotations);
  assert(
    ann.includes("CE only") && ann.includes("intra−inter cos 0.400") && ann.includes("10-NN acc 75.0%"),
    ann,
  );
  assertThrows(() => embeddingFigure([{ title: "bad", xy, labels: [0] }]), "points");
});
