/**
 * PIL's colour operations on 8-bit RGB (HWC uint8), bit-exact with Pillow, because PaddleSeg's
 * RandomDistort runs them through PIL:
 * - `ImageEnhance.Brightness/Contrast/Color/Sharpness(im).enhance(f)` = `Image.blend(degenerate, im, f)`
 *   with degenerate = black / the mean-luma gray / the luma image / `im.filter(SMOOTH)`;
 *   Blend.c computes `in1 + alpha * (in2 - in1)` in float32 and truncates (clipping when alpha > 1);
 * - luma as Pillow's RGB->L: (r*19595 + g*38470 + b*7471 + 0x8000) >> 16;
 * - hue: PaddleSeg's `functional.hue`: RGB -> PIL HSV (uint8), H + delta cast back to uint8 by numpy
 *   (truncation toward zero, wrapping modulo 256), HSV -> RGB; PIL's Convert.c formulas.
 * Checked against Pillow by tests/data/pil_color_test.ts (fixtures made by Pillow itself).
 */

const f32 = Math.fround;

/** Pillow's ITU-R 601-2 luma of one pixel. */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** `Image.blend(im1, im2, alpha)` for 8-bit data, in place into `out` (may alias `in2`). */
function blendInto(
  out: Uint8Array,
  in1: (i: number) => number,
  in2: Uint8Array,
  alpha: number,
): void {
  const a = f32(alpha);
  const n = in2.length;
  if (a >= 0 && a <= 1) {
    for (let i = 0; i < n; i++) {
      const p = in1(i);
      out[i] = f32(p + f32(a * (in2[i] - p))); // (UINT8) truncation of a value in [0, 255]
    }
  } else {
    for (let i = 0; i < n; i++) {
      const p = in1(i);
      const t = f32(p + f32(a * (in2[i] - p)));
      out[i] = t <= 0 ? 0 : t >= 255 ? 255 : t;
    }
  }
}

/** `ImageEnhance.Brightness(im).enhance(factor)`, in place. */
export function enhanceBrightness(rgb: Uint8Array, factor: number): void {
  blendInto(rgb, () => 0, rgb, factor);
}

/** `ImageEnhance.Contrast(im).enhance(factor)`, in place (degenerate = mean luma, rounded). */
export function enhanceContrast(rgb: Uint8Array, factor: number): void {
  const n = rgb.length / 3;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
  const mean = Math.floor(sum / n + 0.5); // int(ImageStat.Stat(L).mean[0] + 0.5)
  blendInto(rgb, () => mean, rgb, factor);
}

/** `ImageEnhance.Color(im).enhance(factor)` (saturation), in place (degenerate = per-pixel luma). */
export function enhanceColor(rgb: Uint8Array, factor: number): void {
  const n = rgb.length / 3;
  const gray = new Uint8Array(n);
  for (let i = 0; i < n; i++) gray[i] = luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
  blendInto(rgb, (i) => gray[(i / 3) | 0], rgb, factor);
}

/**
 * `ImageEnhance.Sharpness(im).enhance(factor)`, in place: degenerate = `im.filter(ImageFilter.SMOOTH)`
 * (3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13, border pixels copied unfiltered), then blend.
 */
export function enhanceSharpness(rgb: Uint8Array, width: number, height: number, factor: number): void {
  const smooth = rgb.slice();
  if (width >= 3 && height >= 3) {
    const k = [1, 1, 1, 1, 5, 1, 1, 1, 1].map((v) => f32(v / 13));
    const row = width * 3;
    for (let y = 1; y < height - 1; y++) {
      for (let x = 1; x < width - 1; x++) {
        for (let c = 0; c < 3; c++) {
          const p = y * row + x * 3 + c;
          // Filter.c: ss = offset + sum over the three rows (each a 1x3 dot product), as float
          let ss = 0;
          ss = f32(
            ss +
              f32(
                f32(f32(rgb[p + row - 3] * k[0]) + f32(rgb[p + row] * k[1])) + f32(rgb[p + row + 3] * k[2]),
              ),
          );
          ss = f32(ss + f32(f32(f32(rgb[p - 3] * k[3]) + f32(rgb[p] * k[4])) + f32(rgb[p + 3] * k[5])));
          ss = f32(
            ss +
              f32(
                f32(f32(rgb[p - row - 3] * k[6]) + f32(rgb[p - row] * k[7])) + f32(rgb[p - row + 3] * k[8]),
              ),
          );
          smooth[p] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.floor(ss + 0.5);
        }
      }
    }
  }
  blendInto(rgb, (i) => smooth[i], rgb, factor);
}

/** Pillow's RGB -> HSV for one pixel, written to hsv[o..o+2]. */
function rgb2hsv(r: number, g: number, b: number, hsv: Uint8Array, o: number): void {
  const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
  hsv[o + 2] = maxc;
  if (minc === maxc) {
    hsv[o] = 0;
    hsv[o + 1] = 0;
    return;
  }
  const cr = f32(maxc - minc);
  const s = f32(cr / maxc);
  const rc = f32((maxc - r) / cr), gc = f32((maxc - g) / cr), bc = f32((maxc - b) / cr);
  let h: number;
  if (r === maxc) h = f32(bc - gc);
  else if (g === maxc) h = f32(2.0 + rc - bc); // double arithmetic, stored to float
  else h = f32(4.0 + gc - rc);
  h = f32((h / 6.0 + 1.0) % 1.0); // fmod in double, stored to float
  hsv[o] = clip8(Math.trunc(h * 255.0));
  hsv[o + 1] = clip8(Math.trunc(s * 255.0));
}

function clip8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : v;
}

/** C's round(): half away from zero. */
function cRound(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** Pillow's HSV -> RGB for one pixel. */
function hsv2rgb(h: number, s: number, v: number, out: Uint8Array, o: number): void {
  if (s === 0) {
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
    return;
  }
  const i = Math.floor((h * 6.0) / 255.0);
  const f = f32((h * 6.0) / 255.0 - i);
  const fs = f32(s / 255.0);
  const p = clip8(cRound(v * (1.0 - fs)));
  const q = clip8(cRound(v * (1.0 - f32(fs * f)))); // fs * f is a float product
  const t = clip8(cRound(v * (1.0 - fs * (1.0 - f))));
  switch (i % 6) {
    case 0:
      out[o] = v, out[o + 1] = t, out[o + 2] = p;
      break;
    case 1:
      out[o] = q, out[o + 1] = v, out[o + 2] = p;
      break;
    case 2:
      out[o] = p, out[o + 1] = v, out[o + 2] = t;
      break;
    case 3:
      out[o] = p, out[o + 1] = q, out[o + 2] = v;
      break;
    case 4:
      out[o] = t, out[o + 1] = p, out[o + 2] = v;
      break;
    default:
      out[o] = v, out[o + 1] = p, out[o + 2] = q;
  }
}

/**
 * PaddleSeg `functional.hue(im, ...)` with a drawn delta, in place:
 * `hsv = np.array(im.convert('HSV')); hsv[..., 0] = hsv[..., 0] + delta; Image.fromarray(hsv, 'HSV').convert('RGB')`.
 * The float -> uint8 store truncates toward zero and wraps (numpy's cast on x86-64), so the hue is circular.
 */
export function shiftHue(rgb: Uint8Array, delta: number): void {
  const n = rgb.length / 3;
  const hsv = new Uint8Array(3);
  for (let i = 0; i < n; i++) {
    const o = 3 * i;
    rgb2hsv(rgb[o], rgb[o + 1], rgb[o + 2], hsv, 0);
    const h = Math.trunc(hsv[0] + delta) & 255;
    hsv2rgb(h, hsv[1], hsv[2], rgb, o);
  }
}
