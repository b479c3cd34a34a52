import { assert, assertEquals } from "../_helpers/assert.ts";
import {
  flushMs,
  inJupyter,
  LiveProgress,
  setJupyterApiForTesting,
  show,
  sparkline,
} from "../../lib/viz/display.ts";
import { bundleCarriesPlotly, Figure, PLOTLY_MIME, setBundleMode } from "../../lib/viz/figure.ts";

type Call = { obj: unknown; options?: { raw?: boolean; update?: boolean; display_id?: string } };

Deno.test("outside Jupyter: inJupyter false, show is a no-op, progress prints plain lines", async () => {
  assertEquals(inJupyter(), false);
  assertEquals(await show({ a: 1 }), false);
  const lines: string[] = [];
  const p = new LiveProgress({ total: 3, label: "train", write: (l) => lines.push(l) });
  p.update(1, { loss: 0.5, lr: 0.01 });
  p.update(3, { loss: 0.25 });
  await p.finish();
  assert(lines.length >= 2, `lines: ${JSON.stringify(lines)}`);
  const last = lines.filter((l) => l).pop()!;
  assert(last.includes("3/3") && last.includes("loss 0.2500") && last.includes("lr 1.00e-2"), last);
});

Deno.test("in Jupyter: one display, then in-place updates with the same display_id", async () => {
  const calls: Call[] = [];
  setJupyterApiForTesting({ display: (obj, options) => (calls.push({ obj, options }), Promise.resolve()) });
  try {
    assertEquals(inJupyter(), true);
    const p = new LiveProgress({ total: 100, every: 0 });
    for (let i = 1; i <= 5; i++) p.update(i, { loss: 1 / i, lr: 0.01 });
    await p.finish({ note: "done" });
    assertEquals(calls.length, 6);
    assertEquals(calls[0].options, { raw: true, update: false, display_id: p.displayId });
    assert(calls.slice(1).every((c) => c.options?.update === true && c.options.display_id === p.displayId));
    const html = (calls[5].obj as Record<string, string>)["text/html"];
    assert(html.includes("<svg") && html.includes("polyline"), "loss sparkline");
    assert(!html.includes("<script"), "no scripts: renders in untrusted notebooks too");
    assert(html.includes("5/100") && html.includes("done"), html);
    assert((calls[5].obj as Record<string, string>)["text/plain"].includes("loss 0.2000"));
    // throttled: with a long interval only the first update and finish() are sent
    calls.length = 0;
    const q = new LiveProgress({ total: 100, every: 3600 });
    for (let i = 1; i <= 50; i++) q.update(i, { loss: 1 });
    await q.finish();
    assertEquals(calls.length, 2);
    // figures go through the same API with their MIME bundle
    setBundleMode("once");
    calls.length = 0;
    assert(await show(new Figure({ data: [{ type: "bar", x: [1], y: [2] }], layout: {} })));
    assert(PLOTLY_MIME in (calls[0].obj as Record<string, unknown>), "figures go out as their MIME bundle");
    assertEquals(calls[0].options?.raw, true);
    // in-place figure updates keep plotly.js in the output that first carried it ("once" mode)
    setBundleMode("once");
    calls.length = 0;
    const f = new Figure({ data: [{ type: "bar", x: [1], y: [2] }], layout: {} });
    await show(f, { displayId: "loss" });
    await show(f, { displayId: "loss", update: true });
    await show(f, { displayId: "other" });
    const carries = calls.map((c) => bundleCarriesPlotly(c.obj as Record<string, unknown>));
    assertEquals(carries, [true, true, false]);
    assertEquals(calls.map((c) => [c.options?.raw, c.options?.update, c.options?.display_id]), [
      [true, false, "loss"],
      [true, true, "loss"],
      [true, false, "other"],
    ]);
  } finally {
    setJupyterApiForTesting(null);
    setBundleMode(null);
  }
});

Deno.test("flushMs: longer pauses for larger messages", () => {
  assertEquals(flushMs({ "text/plain": "x" }), 51);
  assertEquals(flushMs({ "text/html": "y".repeat(4_600_000), "text/plain": "" }), 50 + 460);
});

Deno.test("sparkline: inline SVG scaled to the values", () => {
  assertEquals(sparkline([1]), "");
  // x spans 2..w-2; y spans h-2 (minimum) .. 12 (maximum; the top 12 px hold the label)
  const s = sparkline([2, 1, 0], 104, 60);
  assert(s.startsWith("<svg") && s.includes('points="2.0,12.0 52.0,35.0 102.0,58.0"'), s);
});
