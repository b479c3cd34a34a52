/**
 * The notebook helpers (`notebookSettings`, `display`), the tables, and `deno task viz embed` end to end
 * on the tiny test config (randomly initialised tiny models: the pipeline, not the picture).
 */
import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import { join } from "node:path";
import { display, notebookSettings } from "../../lib/viz/notebook.ts";
import { setJupyterApiForTesting } from "../../lib/viz/display.ts";
import { Figure, PLOTLY_MIME } from "../../lib/viz/figure.ts";
import { metricsTable, Table } from "../../lib/viz/tables.ts";
import { classHistogram } from "../../lib/viz/dataset_figures.ts";
import { buildModel, saveWeights } from "../../lib/models/mod.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { Rng } from "../../lib/util/rng.ts";
import { projectRoot } from "../../notebooks/tools/project.ts";
import { initBackend } from "../../lib/backend/mod.ts";

await initBackend();
const ROOT = projectRoot();

Deno.test("notebookSettings: PC_NB_<KEY> overrides by the default's type; objects are never overridden", () => {
  const env: Record<string, string> = {
    PC_NB_CONFIG: "configs/tests/tiny.yml",
    PC_NB_ITERS: "4",
    PC_NB_UMAP: "yes",
    PC_NB_ROOT: "null",
    PC_NB_LIST: "a.zip, b.zip",
    PC_NB_NAME: "x",
  };
  const s = notebookSettings({
    CONFIG: "configs/x.yml",
    ITERS: 100,
    UMAP: false,
    ROOT: "data/x" as string | null,
    LIST: [] as string[],
    NAME: null as string | null,
    KEEP: 7,
    FLAGS: { aug_eval: true },
  }, (n) => env[n]);
  assertEquals(s, {
    CONFIG: "configs/tests/tiny.yml",
    ITERS: 4,
    UMAP: true,
    ROOT: null,
    LIST: ["a.zip", "b.zip"],
    NAME: "x",
    KEEP: 7,
    FLAGS: { aug_eval: true },
  });
  assertThrows(
    () => notebookSettings({ ITERS: 100 }, () => "many"),
    "PC_NB_ITERS=many: ITERS must be a number",
  );
  assertThrows(() => notebookSettings({ UMAP: false }, () => "maybe"), "must be true or false");
  assertThrows(() => notebookSettings({ FLAGS: {} }, () => "{}"), "not a value the environment can set");
});

Deno.test("display: strings are printed, figures and tables go to Jupyter; it returns nothing", async () => {
  const sent: unknown[] = [];
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => printed.push(a.join(" "));
  setJupyterApiForTesting({ display: (obj) => (sent.push(obj), Promise.resolve()) });
  try {
    const fig = new Figure({ data: [{ type: "bar", x: [1], y: [2] }], layout: { title: "t" } });
    const table = new Table("T", ["a", "b"], [["x", 1]]);
    const r = await display("hello", fig, table);
    assertEquals(r, undefined);
    assertEquals(printed, ["hello"]);
    assertEquals(sent.length, 2);
    assert(PLOTLY_MIME in (sent[0] as Record<string, unknown>), "figure bundle");
    assertEquals(Object.keys(sent[1] as object).sort(), ["text/html", "text/plain"]);
  } finally {
    setJupyterApiForTesting(null);
    console.log = log;
  }
  // outside Jupyter: everything as text
  const out: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    await display("line", new Table("Title", ["k", "v"], [["mIoU", "0.5"]]));
  } finally {
    console.log = log;
  }
  assertEquals(out[0], "line");
  assert(out[1].startsWith("Title\nk") && out[1].includes("mIoU  0.5"), out[1]);
});

Deno.test("tables and the class histogram", () => {
  assertThrows(() => new Table("T", ["a", "b"], [["x"]]), "row 0 has 1 cells, expected 2");
  const t = new Table("T <x>", ["a", "b"], [["<b>", 2]], { note: "n" });
  assert(t.toHTML().includes("&lt;b&gt;") && !t.toHTML().includes("<b>"), "escaped");
  const m = metricsTable(
    {
      mIoU: 0.5,
      acc: 0.75,
      kappa: 0.6,
      classIoU: [1, 0],
      classAcc: [1, 0],
      classRecall: [1, 0],
      labelArea: [3, 0],
    },
    "whole",
    { classNames: ["a", "b"], numImages: 2 },
  );
  assert(m.title.includes("mIoU 50.00") && m.title.includes("[whole, 2 images]"), m.title);
  assertEquals(m.rows[1], ["b", "0.00", "0.00", "0.00", "0.00 (absent)"]);
  const h = classHistogram([30, 0, 10], { ignorePixels: 10, classNames: ["a", "b", "c"] });
  assertEquals(h.data[0].y, [0.75, null, 0.25]);
  assert(h.title.includes("20.0% ignored"), h.title);
});

Deno.test("deno task viz embed: two models side by side, measures printed, offline HTML; argument errors", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pc-viz-embed-" });
  try {
    const contrast = buildModel(
      modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 19, projDim: 16 }),
      new Rng(1),
    );
    const ce = buildModel(
      modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_Tiny", numClasses: 19 }),
      new Rng(2),
    );
    await saveWeights(contrast, join(tmp, "contrast.safetensors"));
    await saveWeights(ce, join(tmp, "ce.safetensors"));
    contrast.dispose();
    ce.dispose();
    const run = async (...args: string[]) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "lib/cli/viz.ts", ...args],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
    };
    const base = [
      "embed",
      "--config",
      "configs/tests/tiny_contrast_synthetic.yml",
      "--images",
      "2",
      "--pixels",
      "20",
    ];
    const html = join(tmp, "embed.html");
    const ok = await run(
      ...base,
      ...["--model_path", join(tmp, "contrast.safetensors"), "--compare_with", join(tmp, "ce.safetensors")],
      ...["--compare_config", "configs/tests/tiny_ce_synthetic.yml", "--out", html],
    );
    assertEquals(ok.code, 0, ok.err);
    assert(/pixels \(≤20 per class, \d+ classes\) from 2 images/.test(ok.out), ok.out);
    assert(/CE \+ pixel contrast \(.*contrast\.safetensors\)\s+decoder \(60-d\)/.test(ok.out), ok.out);
    assert(/CE only \(.*ce\.safetensors\)\s+decoder \(60-d\)/.test(ok.out), ok.out);
    const page = await Deno.readTextFile(html);
    assert(page.includes("intra−inter cos") && page.includes("NN acc"), "captions with the measures");
    assert(!/<script[^>]*\ssrc=/i.test(page), "offline: no external scripts");
    assert(page.includes("rgb(128,64,128)"), "official class colours (road)");
    // wrong command lines exit 2 (lib/cli/common.ts): proj layer of a CE-only model, unknown method,
    // missing subcommand / model path
    const proj = await run(
      ...base,
      ...["--model_path", join(tmp, "contrast.safetensors"), "--compare_with", join(tmp, "ce.safetensors")],
      ...["--compare_config", "configs/tests/tiny_ce_synthetic.yml", "--layer", "proj", "--out", html],
    );
    assertEquals(proj.code, 2);
    assert(proj.err.includes("without a projection head"), proj.err);
    const method = await run(...base, "--model_path", join(tmp, "contrast.safetensors"), "--method", "tsne");
    assert(method.code === 2 && method.err.includes("--method must be pca or umap"), method.err);
    const sub = await run("--config", "configs/tests/tiny_contrast_synthetic.yml");
    assert(sub.code === 2 && sub.err.includes("expected the subcommand 'embed'"), sub.err);
    const missing = await run(...base);
    assert(missing.code === 2 && missing.err.includes("--model_path is required"), missing.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
