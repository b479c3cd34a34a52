/**
 * Our kernels against the libraries PaddleSeg uses: cv2.resize (INTER_LINEAR on float32, INTER_NEAREST
 * on uint8) and Pillow's ImageEnhance / HSV hue shift. Expected arrays were made by those libraries
 * (tests/fixtures/data/make_reference.py; versions recorded in reference.json). cv2's own float path
 * deviates from exact float64 bilinear by up to 4e-4 (on 0..255), hence the 1e-3 tolerance there.
 */
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";
import { resizeBilinear, resizeNearest } from "../../lib/data/resize.ts";
import { applyDistortOp, type DistortOp } from "../../lib/data/transforms.ts";

const ref = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/data/reference.json", import.meta.url)),
);

function bytes(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
const f32 = (b64: string) => new Float32Array(bytes(b64).buffer);

Deno.test("resizeBilinear matches cv2.INTER_LINEAR on float32 (all ResizeStepScaling factors, up and down)", () => {
  assert(ref.resize.length >= 14);
  for (const c of ref.resize) {
    const out = resizeBilinear(f32(c.src), c.sw, c.sh, 3, c.dw, c.dh);
    assertClose(out, f32(c.linear), 0, 1e-3, `${c.sw}x${c.sh} -> ${c.dw}x${c.dh}`);
  }
});

Deno.test("resizeNearest matches cv2.INTER_NEAREST exactly", () => {
  for (const c of ref.resize) {
    const out = resizeNearest(bytes(c.label), c.sw, c.sh, c.dw, c.dh);
    assertEquals(Array.from(out), Array.from(bytes(c.nearest)), `${c.sw}x${c.sh} -> ${c.dw}x${c.dh}`);
  }
});

Deno.test("a window of the resize equals the same window cut from the full resize (the crop fusion)", () => {
  const c = ref.resize.find((r: { factor: number; sw: number }) => r.factor === 1.75 && r.sw === 40);
  const full = resizeBilinear(f32(c.src), c.sw, c.sh, 3, c.dw, c.dh);
  const win = { x0: 5, y0: 7, width: 30, height: 20 };
  const part = resizeBilinear(f32(c.src), c.sw, c.sh, 3, c.dw, c.dh, win);
  for (let y = 0; y < win.height; y++) {
    for (let x = 0; x < win.width; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const a = part[(y * win.width + x) * 3 + ch];
        const b = full[((y + win.y0) * c.dw + x + win.x0) * 3 + ch];
        if (a !== b) throw new Error(`window pixel (${x},${y},${ch}): ${a} != ${b}`);
      }
    }
  }
  // a window hanging over the bottom-right edge gets the fill value there
  const over = resizeNearest(bytes(c.label), c.sw, c.sh, c.dw, c.dh, {
    x0: c.dw - 2,
    y0: c.dh - 2,
    width: 4,
    height: 4,
  }, 77);
  assertEquals(over[3], 77);
  assertEquals(over[15], 77);
  assert(over[0] !== 77 || bytes(c.label).includes(77));
});

Deno.test("PIL colour ops (brightness, contrast, saturation, sharpness, hue) are bit-exact with Pillow", () => {
  const { width, height } = ref.pil;
  const src = bytes(ref.pil.src);
  let checked = 0;
  for (const o of ref.pil.ops) {
    const img = src.slice();
    applyDistortOp(img, width, height, o.op as DistortOp, o.value);
    const exp = bytes(o.out);
    let bad = -1;
    for (let i = 0; i < img.length; i++) {
      if (img[i] !== exp[i]) {
        bad = i;
        break;
      }
    }
    if (bad >= 0) {
      const p = Math.floor(bad / 3) * 3;
      throw new Error(
        `${o.op}(${o.value}): pixel ${p / 3} got [${img.slice(p, p + 3)}] expected [${
          exp.slice(p, p + 3)
        }] ` +
          `from [${src.slice(p, p + 3)}]`,
      );
    }
    checked++;
  }
  assertEquals(checked, ref.pil.ops.length);
});
