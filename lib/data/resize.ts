/**
 * Resampling kernels with OpenCV's semantics, on typed arrays (no per-pixel objects).
 *
 * - `resizeBilinear` = `cv2.resize(img, (dw, dh), interpolation=cv2.INTER_LINEAR)` on a float32 HWC image:
 *   half-pixel centres (src = (dst + 0.5) * sw/dw - 0.5), edge pixels replicated, a horizontal pass
 *   then a vertical pass, as cv2's float path does (agrees with cv2 to float32 rounding).
 * - `resizeNearest` = `cv2.INTER_NEAREST`: src = min(floor(dst * (1 / (dw/sw))), sw - 1), with the
 *   scale computed in float64 exactly as cv2 does, so every label pixel is the one cv2 picks.
 *
 * Both can compute only a window of the resized image (PaddleSeg's ResizeStepScaling followed by
 * RandomPaddingCrop needs 1024x512 out of up to 4096x2048): pixels of the window that fall outside the
 * resized image get the fill value, which is exactly what padding then cropping produces.
 */

/** A window [x0, x0+width) x [y0, y0+height) of the (virtual) resized image; outside pixels get `fill`. */
export interface ResizeWindow {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

function fullWindow(dw: number, dh: number): ResizeWindow {
  return { x0: 0, y0: 0, width: dw, height: dh };
}

function checkSizes(what: string, sw: number, sh: number, dw: number, dh: number) {
  for (
    const [k, v] of [["source width", sw], ["source height", sh], ["width", dw], ["height", dh]] as const
  ) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${what}: ${k} must be a positive integer, got ${v}`);
  }
}

/** Per-axis source indices and weights of cv2's INTER_LINEAR (float coefficients, clamped borders). */
function linearTaps(srcLen: number, dstLen: number, start: number, count: number) {
  const scale = 1 / (dstLen / srcLen); // cv2: scale_x = 1./inv_scale_x, inv_scale_x = dsize/ssize
  const i0 = new Int32Array(count), i1 = new Int32Array(count);
  const w0 = new Float32Array(count), w1 = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    const d = start + k;
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (s < 0) {
      f = 0;
      s = 0;
    }
    if (s >= srcLen - 1) {
      f = 0;
      s = srcLen - 1;
    }
    i0[k] = s;
    i1[k] = Math.min(s + 1, srcLen - 1);
    w0[k] = Math.fround(1 - f);
    w1[k] = f;
  }
  return { i0, i1, w0, w1 };
}

/**
 * Bilinear resize of `src` (sh x sw x c, float32 HWC) to dw x dh, returning only `win` (default: all).
 * Window pixels outside [0, dw) x [0, dh) are set to `fill[ch]`.
 * @returns float32 [win.height, win.width, c]
 */
export function resizeBilinear(
  src: Float32Array | Uint8Array,
  sw: number,
  sh: number,
  c: number,
  dw: number,
  dh: number,
  win: ResizeWindow = fullWindow(dw, dh),
  fill: ArrayLike<number> = [0, 0, 0, 0],
): Float32Array {
  checkSizes("resizeBilinear", sw, sh, dw, dh);
  if (src.length !== sw * sh * c) {
    throw new Error(`resizeBilinear: source has ${src.length} values, expected ${sw}x${sh}x${c}`);
  }
  const ow = win.width, oh = win.height;
  const out = new Float32Array(ow * oh * c);
  // the part of the window inside the resized image
  const xa = Math.max(0, win.x0), xb = Math.min(dw, win.x0 + ow);
  const ya = Math.max(0, win.y0), yb = Math.min(dh, win.y0 + oh);
  if (xa < xb && ya < yb) {
    const nx = xb - xa;
    const tx = linearTaps(sw, dw, xa, nx);
    const ty = linearTaps(sh, dh, ya, yb - ya);
    // horizontal pass, cached for the last two source rows (rows are visited in increasing order)
    const rowA = new Float32Array(nx * c), rowB = new Float32Array(nx * c);
    let idxA = -1, idxB = -1;
    let bufA = rowA, bufB = rowB;
    const hpass = (sy: number, dst: Float32Array) => {
      const base = sy * sw * c;
      if (c === 3) {
        for (let k = 0; k < nx; k++) {
          const p0 = base + tx.i0[k] * 3, p1 = base + tx.i1[k] * 3;
          const a0 = tx.w0[k], a1 = tx.w1[k];
          const o = k * 3;
          dst[o] = src[p0] * a0 + src[p1] * a1;
          dst[o + 1] = src[p0 + 1] * a0 + src[p1 + 1] * a1;
          dst[o + 2] = src[p0 + 2] * a0 + src[p1 + 2] * a1;
        }
      } else {
        for (let k = 0; k < nx; k++) {
          const p0 = base + tx.i0[k] * c, p1 = base + tx.i1[k] * c;
          const a0 = tx.w0[k], a1 = tx.w1[k];
          for (let ch = 0; ch < c; ch++) dst[k * c + ch] = src[p0 + ch] * a0 + src[p1 + ch] * a1;
        }
      }
    };
    const getRow = (sy: number): Float32Array => {
      if (sy === idxA) return bufA;
      if (sy === idxB) return bufB;
      // evict the older row (A), keep B as the more recent one
      const t = bufA;
      bufA = bufB;
      idxA = idxB;
      bufB = t;
      idxB = sy;
      hpass(sy, bufB);
      return bufB;
    };
    const rowLen = nx * c;
    for (let j = 0; j < yb - ya; j++) {
      const r0 = getRow(ty.i0[j]);
      const r1 = getRow(ty.i1[j]);
      const b0 = ty.w0[j], b1 = ty.w1[j];
      const o = ((ya - win.y0 + j) * ow + (xa - win.x0)) * c;
      for (let k = 0; k < rowLen; k++) out[o + k] = r0[k] * b0 + r1[k] * b1;
    }
  }
  fillOutside(out, ow, oh, c, xa - win.x0, xb - win.x0, ya - win.y0, yb - win.y0, fill);
  return out;
}

function fillOutside(
  out: Float32Array | Uint8Array,
  ow: number,
  oh: number,
  c: number,
  xa: number,
  xb: number,
  ya: number,
  yb: number,
  fill: ArrayLike<number>,
) {
  if (xa <= 0 && xb >= ow && ya <= 0 && yb >= oh) return;
  const inside = xa < xb && ya < yb;
  for (let y = 0; y < oh; y++) {
    const rowIn = inside && y >= ya && y < yb;
    for (let x = 0; x < ow; x++) {
      if (rowIn && x >= xa && x < xb) continue;
      const o = (y * ow + x) * c;
      for (let ch = 0; ch < c; ch++) out[o + ch] = fill[ch];
    }
  }
}

/** Source index of each destination index for cv2's INTER_NEAREST. */
function nearestTaps(srcLen: number, dstLen: number, start: number, count: number): Int32Array {
  const ifx = 1 / (dstLen / srcLen); // cv2 resizeNN: ifx = 1./fx, fx = dsize/ssize
  const t = new Int32Array(count);
  for (let k = 0; k < count; k++) t[k] = Math.min(Math.floor((start + k) * ifx), srcLen - 1);
  return t;
}

/**
 * Nearest-neighbour resize of a 1-channel uint8 map (labels) to dw x dh, returning only `win`;
 * window pixels outside the resized image get `fill`.
 * @returns uint8 [win.height, win.width]
 */
export function resizeNearest(
  src: Uint8Array,
  sw: number,
  sh: number,
  dw: number,
  dh: number,
  win: ResizeWindow = fullWindow(dw, dh),
  fill = 255,
): Uint8Array {
  checkSizes("resizeNearest", sw, sh, dw, dh);
  if (src.length !== sw * sh) {
    throw new Error(`resizeNearest: source has ${src.length} values, expected ${sw}x${sh}`);
  }
  const ow = win.width, oh = win.height;
  const out = new Uint8Array(ow * oh);
  const xa = Math.max(0, win.x0), xb = Math.min(dw, win.x0 + ow);
  const ya = Math.max(0, win.y0), yb = Math.min(dh, win.y0 + oh);
  if (xa < xb && ya < yb) {
    const tx = nearestTaps(sw, dw, xa, xb - xa);
    const ty = nearestTaps(sh, dh, ya, yb - ya);
    for (let j = 0; j < yb - ya; j++) {
      const base = ty[j] * sw;
      const o = (ya - win.y0 + j) * ow + (xa - win.x0);
      for (let k = 0; k < tx.length; k++) out[o + k] = src[base + tx[k]];
    }
  }
  fillOutside(out, ow, oh, 1, xa - win.x0, xb - win.x0, ya - win.y0, yb - win.y0, [fill]);
  return out;
}

/** Copies a window of an HWC array (c channels), filling outside pixels; used for plain crops and pads. */
export function cropWindow<T extends Float32Array | Uint8Array>(
  src: T,
  sw: number,
  sh: number,
  c: number,
  win: ResizeWindow,
  fill: ArrayLike<number>,
): T {
  const ow = win.width, oh = win.height;
  const out =
    (src instanceof Float32Array ? new Float32Array(ow * oh * c) : new Uint8Array(ow * oh * c)) as T;
  const xa = Math.max(0, win.x0), xb = Math.min(sw, win.x0 + ow);
  const ya = Math.max(0, win.y0), yb = Math.min(sh, win.y0 + oh);
  if (xa < xb) {
    for (let y = ya; y < yb; y++) {
      const s = (y * sw + xa) * c;
      out.set(src.subarray(s, s + (xb - xa) * c), ((y - win.y0) * ow + (xa - win.x0)) * c);
    }
  }
  fillOutside(out, ow, oh, c, xa - win.x0, xb - win.x0, ya - win.y0, yb - win.y0, fill);
  return out;
}

/** In-place horizontal flip of an HWC array. */
export function flipHorizontal(a: Float32Array | Uint8Array, w: number, h: number, c: number): void {
  for (let y = 0; y < h; y++) {
    const row = y * w * c;
    for (let x = 0, xr = w - 1; x < xr; x++, xr--) {
      const p = row + x * c, q = row + xr * c;
      for (let ch = 0; ch < c; ch++) {
        const t = a[p + ch];
        a[p + ch] = a[q + ch];
        a[q + ch] = t;
      }
    }
  }
}
