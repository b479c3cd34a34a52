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

/** Blend.c for one value: `in1 + alpha * (in2 - in1)` in float32, truncated (clipped when alpha > 1). */
function blend1(p: number, q: number, a: number, extrapolate: boolean): number {
  const t = f32(p + f32(a * (q - p)));
  if (!extrapolate) return t; // (UINT8) truncation of a value in [0, 255] happens on the store
  return t <= 0 ? 0 : t >= 255 ? 255 : t;
}

/** `Image.blend(constant, im, alpha)`: one 256-entry table, then a lookup per value. */
function blendConstant(rgb: Uint8Array, c: number, alpha: number): void {
  const a = f32(alpha), ex = !(a >= 0 && a <= 1);
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = blend1(c, v, a, ex);
  for (let i = 0; i < rgb.length; i++) rgb[i] = lut[rgb[i]];
}

/** `Image.blend(degenerate, im, alpha)` with a per-value degenerate image, in place. */
function blendArray(rgb: Uint8Array, degenerate: Uint8Array, alpha: number): void {
  const a = f32(alpha), ex = !(a >= 0 && a <= 1);
  for (let i = 0; i < rgb.length; i++) rgb[i] = blend1(degenerate[i], rgb[i], a, ex);
}

/** `ImageEnhance.Brightness(im).enhance(factor)`, in place (degenerate = black). */
export function enhanceBrightness(rgb: Uint8Array, factor: number): void {
  blendConstant(rgb, 0, factor);
}

/** `ImageEnhance.Contrast(im).enhance(factor)`, in place (degenerate = mean luma, rounded). */
export function enhanceContrast(rgb: Uint8Array, factor: number): void {
  const n = rgb.length / 3;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
  const mean = Math.floor(sum / n + 0.5); // int(ImageStat.Stat(L).mean[0] + 0.5)
  blendConstant(rgb, mean, factor);
}

/** `ImageEnhance.Color(im).enhance(factor)` (saturation), in place (degenerate = per-pixel luma). */
export function enhanceColor(rgb: Uint8Array, factor: number): void {
  const gray = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    gray[i] = gray[i + 1] = gray[i + 2] = luma(rgb[i], rgb[i + 1], rgb[i + 2]);
  }
  blendArray(rgb, gray, factor);
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
  blendArray(rgb, smooth, factor);
}

function clip8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : v;
}

/** C's round(): half away from zero. */
function cRound(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/**
 * PaddleSeg `functional.hue(im, ...)` with a drawn delta, in place:
 * `hsv = np.array(im.convert('HSV')); hsv[..., 0] = hsv[..., 0] + delta; Image.fromarray(hsv, 'HSV').convert('RGB')`.
 * The float -> uint8 store truncates toward zero and wraps (numpy's cast on x86-64), so the hue is circular.
 * Pillow's rgb2hsv and hsv2rgb (Convert.c) are written out inline: this loop is the hottest of RandomDistort.
 */
export function shiftHue(rgb: Uint8Array, delta: number): void {
  for (let o = 0; o < rgb.length; o += 3) {
    const r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
    const maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    const minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    if (minc === maxc) continue; // gray: s = 0, so HSV -> RGB gives (v, v, v) back whatever the hue
    // rgb2hsv (Convert.c), float32 where C uses float
    const cr = f32(maxc - minc);
    const sat = f32(cr / maxc);
    const rc = f32((maxc - r) / cr), gc = f32((maxc - g) / cr), bc = f32((maxc - b) / cr);
    let h = r === maxc ? f32(bc - gc) : g === maxc ? f32(2.0 + rc - bc) : f32(4.0 + gc - rc);
    const x = h / 6.0 + 1.0; // in [5/6, 11/6): fmod(x, 1.0) is x - 1 or x, exactly
    h = f32(x >= 1 ? x - 1 : x);
    const hu = clip8(Math.trunc(h * 255.0)), s8 = clip8(Math.trunc(sat * 255.0));
    const hh = Math.trunc(hu + delta) & 255;
    if (s8 === 0) {
      rgb[o] = rgb[o + 1] = rgb[o + 2] = maxc;
      continue;
    }
    // hsv2rgb (Convert.c)
    const v = maxc;
    const i = Math.floor((hh * 6.0) / 255.0);
    const f = f32((hh * 6.0) / 255.0 - i);
    const fs = f32(s8 / 255.0);
    const p = clip8(cRound(v * (1.0 - fs)));
    const q = clip8(cRound(v * (1.0 - f32(fs * f))));
    const t = clip8(cRound(v * (1.0 - fs * (1.0 - f))));
    switch (i % 6) {
      case 0:
        rgb[o] = v, rgb[o + 1] = t, rgb[o + 2] = p;
        break;
      case 1:
        rgb[o] = q, rgb[o + 1] = v, rgb[o + 2] = p;
        break;
      case 2:
        rgb[o] = p, rgb[o + 1] = v, rgb[o + 2] = t;
        break;
      case 3:
        rgb[o] = p, rgb[o + 1] = q, rgb[o + 2] = v;
        break;
      case 4:
        rgb[o] = t, rgb[o + 1] = p, rgb[o + 2] = v;
        break;
      default:
        rgb[o] = v, rgb[o + 1] = p, rgb[o + 2] = q;
    }
  }
}
