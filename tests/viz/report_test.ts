import { assert, assertEquals } from "../_helpers/assert.ts";
import { renderReport, writeFiguresHtml, writeReport } from "../../lib/viz/report.ts";
import { PLOTLY_VERSION, plotlyBundleText } from "../../lib/viz/plotly_bundle.ts";
import { classIoUBars } from "../../lib/viz/charts.ts";
import { fakeEvals, fakeTrain } from "./_data.ts";

const bundles = (html: string) => html.split(`plotly.js v${PLOTLY_VERSION}`).length - 1;

function selfContained(html: string): void {
  assertEquals(bundles(html), 1, "plotly inlined exactly once");
  assert(!/<script[^>]*\bsrc\s*=/i.test(html), "no <script src>");
  assert(!/<link[^>]*href\s*=\s*["']?https?:/i.test(html), "no remote stylesheet");
  // The bundle itself names tile/topojson servers for map traces, which these figures never use.
  const ours = html.replace(plotlyBundleText(), "");
  assert(
    !/https?:\/\/(?!www\.w3\.org\/)/i.test(ours),
    "no URL outside the plotly bundle (SVG namespaces aside)",
  );
}

Deno.test("writeReport: one self-contained offline file with every section, mode beside numbers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "viz_report_" });
  try {
    const train = fakeTrain(300, 100);
    const evals = [...fakeEvals([100, 200, 300]), ...fakeEvals([300], 19, "slide 1024x512/768x512, flip")];
    const path = `${dir}/sub/report.html`;
    writeReport(path, {
      summary: { configName: "configs/x.yml", backend: "cpu", details: { seed: 3 } },
      train,
      evals,
      figures: [{ heading: "Extra figure", figure: classIoUBars(evals[0]) }],
      generatedAt: "2025-01-01T00:00:00Z",
    });
    const html = Deno.readTextFileSync(path);
    selfContained(html);
    assertEquals(
      [...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name),
      ["report.html"],
      "no temp file left",
    );
    for (
      const s of [
        "Run summary",
        "Training loss",
        "Learning rate",
        "Validation",
        "Pixel-contrast diagnostics",
        "Per-class IoU",
        "Confusion matrix",
        "Extra figure",
        "configs/x.yml",
        "cpu",
      ]
    ) assert(html.includes(s), `missing '${s}'`);
    // one plotly div per figure: loss, lr, val, diagnostics, IoU bars, confusion, extra
    assertEquals(html.split('class="pcviz-figure"').length - 1, 7);
    // the latest mIoU of each mode, printed with its mode
    const latestWhole = evals[2].mIoU.toFixed(4);
    assert(html.includes(`mIoU ${latestWhole} <span class="mode">[whole]</span>`), "mIoU [whole]");
    assert(html.includes("[slide 1024x512/768x512, flip]"));
    // per-class table: a row per Cityscapes class with its IoU
    assert(html.includes(">road<") && html.includes(">bicycle<"));
    assert(html.includes(`<td class="num">${evals[3].classIoU[18].toFixed(4)}</td>`));
    // deterministic given generatedAt
    const again = renderReport({
      summary: { configName: "configs/x.yml", backend: "cpu", details: { seed: 3 } },
      train,
      evals,
      figures: [{ heading: "Extra figure", figure: classIoUBars(evals[0]) }],
      generatedAt: "2025-01-01T00:00:00Z",
    });
    assertEquals(
      again.replace(/pcviz-[0-9a-z]+-[0-9a-z]+/g, ""),
      html.replace(/pcviz-[0-9a-z]+-[0-9a-z]+/g, ""),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeReport: an empty run (no records yet) still renders", () => {
  const html = renderReport({ summary: { configName: "c", backend: "cpu" }, train: [], evals: [] });
  selfContained(html);
  assert(html.includes("no training records yet") && html.includes("No evaluation records yet"));
});

Deno.test("writeFiguresHtml: offline page with the given figures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "viz_fig_" });
  try {
    writeFiguresHtml(`${dir}/f.html`, "Feature <space>", [{
      heading: "IoU",
      figure: classIoUBars(fakeEvals([1])[0]),
    }]);
    const html = Deno.readTextFileSync(`${dir}/f.html`);
    selfContained(html);
    assert(html.includes("<title>Feature &lt;space&gt;</title>"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
