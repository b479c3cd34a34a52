import { assert, assertEquals, assertThrows } from "../_helpers/assert.ts";
import {
  base64,
  blendLabels,
  colorizeLabels,
  errorMap,
  overlayFigure,
  pngDataUrl,
} from "../../lib/viz/overlay.ts";
import { decodePngBytes } from "../../lib/data/image_io.ts";
import { CITYSCAPES_PALETTE } from "../../lib/data/cityscapes_labels.ts";

const W = 4, H = 2;
const image = { data: Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 10) % 256), width: W, height: H };
const gt = Uint8Array.from([0, 0, 13, 13, 255, 10, 10, 10]);
const pred = Uint8Array.from([0, 1, 13, 13, 0, 10, 10, 2]);

Deno.test("colorizeLabels: palette colours, ignore colour for 255 and unknown ids", () => {
  const c = colorizeLabels(Uint8Array.from([0, 13, 255, 40]), 2, 2, CITYSCAPES_PALETTE, {
    ignoreColor: [9, 9, 9],
  });
  assertEquals(Array.from(c), [...CITYSCAPES_PALETTE[0], ...CITYSCAPES_PALETTE[13], 9, 9, 9, 9, 9, 9]);
  assertThrows(() => colorizeLabels([0], 2, 2), "expected 4");
});

Deno.test("blendLabels: (1-a)·image + a·colour, image kept where ignored", () => {
  const b = blendLabels(image, gt, CITYSCAPES_PALETTE, 0.25);
  for (let i = 0; i < W * H; i++) {
    for (let k = 0; k < 3; k++) {
      const v = image.data[3 * i + k];
      const want = gt[i] === 255 ? v : Math.round(0.75 * v + 0.25 * CITYSCAPES_PALETTE[gt[i]][k]);
      assertEquals(b[3 * i + k], want, `pixel ${i} channel ${k}`);
    }
  }
  assertThrows(() => blendLabels(image, gt, CITYSCAPES_PALETTE, 2), "alpha");
});

Deno.test("errorMap: errors white-ish, ignored black", () => {
  const e = errorMap(gt, pred);
  assertEquals(Array.from(e.subarray(3, 6)), [255, 40, 40], "0 vs 1: error");
  assertEquals(Array.from(e.subarray(0, 3)), [60, 60, 60], "correct");
  assertEquals(Array.from(e.subarray(12, 15)), [0, 0, 0], "ignored");
});

Deno.test("pngDataUrl: a PNG that decodes to the same pixels", () => {
  const url = pngDataUrl(image.data, W, H);
  assert(url.startsWith("data:image/png;base64,"));
  const bytes = Uint8Array.from(atob(url.split(",")[1]), (ch) => ch.charCodeAt(0));
  const img = decodePngBytes(bytes);
  assertEquals([img.width, img.height, img.channels], [W, H, 3]);
  assertEquals(Array.from(img.data), Array.from(image.data));
  assertEquals(base64(new TextEncoder().encode("hello")), btoa("hello"));
});

Deno.test("overlayFigure: image / ground truth / prediction / errors as image traces, class legend", () => {
  const fig = overlayFigure(image, { groundTruth: gt, prediction: pred }, { errors: true });
  const images = fig.data.filter((t) => t.type === "image");
  assertEquals(images.length, 4);
  assertEquals(images.map((t) => t.xaxis), ["x", "x2", "x3", "x4"]);
  assert(images.every((t) => String(t.source).startsWith("data:image/png;base64,")));
  const legend = fig.data.filter((t) => t.type === "scatter").map((t) => t.name);
  assertEquals(
    legend,
    ["road", "sidewalk", "building", "sky", "car"],
    "classes present in either map, by trainId",
  );
  const ann = JSON.stringify(fig.layout.annotations);
  assert(ann.includes("ground truth") && ann.includes("prediction"));
  // y axis reversed over the image rows, aspect kept
  const y2 = fig.layout.yaxis2 as Record<string, unknown>;
  assertEquals([y2.range, y2.scaleanchor], [[H - 0.5, -0.5], "x2"]);
  assertEquals(overlayFigure(image, {}).data.length, 1, "image only");
  assertThrows(() => overlayFigure(image, { groundTruth: gt.subarray(1) }), "labels");
});
