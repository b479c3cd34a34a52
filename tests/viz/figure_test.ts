import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import {
  Figure,
  figureMimeBundle,
  getBundleMode,
  jsonForScript,
  JUPYTER_DISPLAY,
  plain,
  PLOTLY_MIME,
  resetBundleState,
  setBundleMode,
} from "../../lib/viz/figure.ts";
import { PLOTLY_VERSION, plotlyBundleText, plotlyBundleVersion } from "../../lib/viz/plotly_bundle.ts";

const spec = () => ({
  data: [{ type: "scatter", x: Float32Array.from([1, 2]), y: [NaN, 3], name: "a</script><b>" }],
  layout: { title: { text: "My <i>plot</i>" }, height: 300 },
});

/** Occurrences of the plotly banner: one per inlined bundle. */
const bundles = (html: string) => html.split(`plotly.js v${PLOTLY_VERSION}`).length - 1;

Deno.test("plotly bundle: found offline in node_modules, pinned version", () => {
  assertEquals(plotlyBundleVersion(), PLOTLY_VERSION);
  assert(plotlyBundleText().length > 1_000_000, "the full minified bundle");
  assertEquals(bundles(plotlyBundleText()), 1);
});

Deno.test("Figure: plain JSON data (typed arrays -> arrays, NaN -> null), validation", () => {
  const f = new Figure(spec());
  assertEquals(f.data[0].x, [1, 2]);
  assertEquals(f.data[0].y, [null, 3]);
  assertEquals(f.title, "My <i>plot</i>");
  assertEquals(f.height, 300);
  assertEquals(JSON.parse(JSON.stringify(f)).data, f.data, "toJSON");
  assertEquals(f.toString(), 'Figure "My plot" (1 traces: scatter×1)');
  assertThrows(() => new Figure({ data: [{ x: [1] } as never], layout: {} }), "type");
  assertEquals(plain({ a: undefined, b: new Int32Array([1]) }), { b: [1] });
});

Deno.test("Figure display: MIME bundle with plotly JSON, offline HTML and text; bundle once", () => {
  setBundleMode("once");
  try {
    const f = new Figure(spec());
    assert(typeof f[JUPYTER_DISPLAY] === "function");
    assertEquals(
      (f as unknown as Record<symbol, unknown>)[Symbol.for("Jupyter.display")],
      f[JUPYTER_DISPLAY],
    );
    const b1 = f[JUPYTER_DISPLAY]();
    assertEquals(Object.keys(b1).sort(), [PLOTLY_MIME, "text/html", "text/plain"].sort());
    // the JSON part is the figure without config.responsive (it collapsed plots in jupyterlab-plotly)
    const { responsive: _r, ...rest } = f.config;
    assertEquals(b1[PLOTLY_MIME], { ...f.toJSON(), config: rest });
    assert(f.config.responsive === true && !("responsive" in (b1[PLOTLY_MIME] as { config: object }).config));
    const h1 = b1["text/html"] as string;
    assertEquals(bundles(h1), 1, "first display carries the bundle");
    const h2 = figureMimeBundle(f)["text/html"] as string;
    assertEquals(bundles(h2), 0, "later displays reuse window.Plotly");
    assert(h2.includes("window.Plotly.newPlot"), "draws with Plotly");
    assert(!/<script[^>]*\ssrc=/i.test(h1 + h2), "no external script");
    // the trace name's '</script>' must not end the element early
    assertEquals(h1.split("</script>").length - 1, 1);
    assert(h1.includes("trust the notebook"), "fallback text for untrusted notebooks");
    resetBundleState();
    assertEquals(bundles(figureMimeBundle(f)["text/html"] as string), 1, "a new page gets it again");
    setBundleMode("inline");
    assertEquals(bundles(figureMimeBundle(f)["text/html"] as string), 1);
    assertEquals(bundles(figureMimeBundle(f)["text/html"] as string), 1, "inline: every time");
    setBundleMode({ url: "/files/plotly.min.js" });
    const h3 = figureMimeBundle(f)["text/html"] as string;
    assertEquals(bundles(h3), 0);
    assert(h3.includes('sc.src="/files/plotly.min.js"'));
  } finally {
    setBundleMode(null);
  }
});

Deno.test("bundle mode from PC_VIZ_BUNDLE", () => {
  const old = Deno.env.get("PC_VIZ_BUNDLE");
  try {
    setBundleMode(null);
    Deno.env.set("PC_VIZ_BUNDLE", "inline");
    assertEquals(getBundleMode(), "inline");
    Deno.env.set("PC_VIZ_BUNDLE", "/files/p.js");
    assertEquals(getBundleMode(), { url: "/files/p.js" });
    Deno.env.set("PC_VIZ_BUNDLE", "bogus");
    assertThrows(() => getBundleMode(), "PC_VIZ_BUNDLE");
  } finally {
    if (old === undefined) Deno.env.delete("PC_VIZ_BUNDLE");
    else Deno.env.set("PC_VIZ_BUNDLE", old);
    setBundleMode(null);
  }
});

Deno.test("jsonForScript: no '<' survives, value round-trips", () => {
  const v = { s: "</script><!-- \u2028" };
  const j = jsonForScript(v);
  assert(!j.includes("<"));
  assertEquals(JSON.parse(j), v);
});
