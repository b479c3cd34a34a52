/**
 * Image files <-> raw pixel arrays (HWC, row-major).
 *
 * Two libraries, each where it is exact or fast:
 * - fast-png for labels and for every PNG we write or must read bit-exactly: it keeps 1-channel, palette
 *   (as indices) and 16-bit images exact (labels must never be colour-managed or resampled on load);
 * - sharp (libvips, prebuilt binaries shipped inside npm packages) for decoding photos: JPEG, and 8-bit
 *   PNG about 5x faster than fast-png on 2048x1024 frames. It is loaded lazily; if it cannot load, PNG
 *   falls back to fast-png and JPEG reports why.
 *
 * `readImageRgb` follows PaddleSeg's `cv2.imread(path)` + `cvtColor(BGR2RGB)`: always 3 channels RGB
 * uint8 (gray replicated, alpha dropped without compositing, palette expanded, 16-bit reduced by >> 8),
 * embedded ICC profiles ignored, EXIF orientation applied.
 *
 * Bounded (lib/util/limits.ts): an image file must be a regular file; its width x height, read from the
 * header (PNG IHDR, JPEG SOF), must be at most PC_MAX_IMAGE_PIXELS (default 8192 x 8192) before anything
 * is decoded; a PNG's compressed data may not inflate beyond what its header implies.
 */
import { decode as decodePng, encode as encodePng } from "fast-png";
import type { Sharp, SharpOptions } from "sharp";
import { Unzlib } from "fflate";
import { FileCheckError, readFileBounded, writeFileAtomic } from "../util/fs.ts";
import { getLimits, raiseHint } from "../util/limits.ts";

export interface RawImage {
  /** Pixel values, row-major HWC. Uint8Array for <= 8-bit, Uint16Array for 16-bit images. */
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  /** 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA). Palette PNGs are returned as their indices (1 channel). */
  channels: number;
  depth: 8 | 16;
  /** The file's bit depth per sample (1, 2, 4, 8 or 16); sub-byte samples are unpacked, not rescaled. */
  bitDepth?: number;
  /** Palette of an indexed PNG ([r, g, b] or [r, g, b, a] per index); `data` then holds indices. */
  palette?: number[][];
}

/** An 8-bit RGB image, HWC row-major: data.length = width * height * 3. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Decodes a PNG file; errors name the file. */
export async function readPng(path: string): Promise<RawImage> {
  return decodePngBytes(await readBytes(path), path);
}

/** An image file: a regular file no larger than the largest encoding of an image within the pixel bound. */
async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFileBounded(
      path,
      getLimits().imageMaxPixels * 8 + (16 << 20),
      raiseHint("imageMaxPixels"),
    );
  } catch (e) {
    if (e instanceof FileCheckError) throw new Error(`cannot read image '${path}': it ${e.reason}`);
    throw new Error(`cannot read image '${path}': ${(e as Error).message}`);
  }
}

/** Unpacks 1/2/4-bit samples (rows padded to whole bytes) to one byte per sample, values unscaled. */
function unpackSubByte(packed: ArrayLike<number>, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    const row = y * rowBytes, o = y * width;
    for (let x = 0; x < width; x++) {
      const byte = packed[row + Math.floor(x / perByte)];
      const shift = 8 - depth * ((x % perByte) + 1);
      out[o + x] = (byte >> shift) & mask;
    }
  }
  return out;
}

export function decodePngBytes(bytes: Uint8Array, name = "<bytes>"): RawImage {
  checkPngHeader(bytes, name);
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new Error(`corrupt or unreadable PNG '${name}': ${(e as Error).message}`);
  }
  const { width, height } = png;
  const channels = png.palette ? 1 : png.channels;
  const bitDepth = png.depth;
  if (![1, 2, 4, 8, 16].includes(bitDepth)) {
    throw new Error(`unsupported PNG bit depth ${bitDepth} in '${name}'`);
  }
  let data: Uint8Array | Uint16Array;
  if (bitDepth < 8) {
    if (channels !== 1) {
      throw new Error(`corrupt PNG '${name}': ${bitDepth}-bit samples with ${channels} channels`);
    }
    const rowBytes = Math.ceil((width * bitDepth) / 8);
    if (png.data.length !== rowBytes * height) {
      throw new Error(`corrupt PNG '${name}': ${png.data.length} bytes, expected ${rowBytes * height}`);
    }
    data = unpackSubByte(png.data, width, height, bitDepth);
  } else {
    const expected = width * height * channels;
    if (png.data.length !== expected) {
      throw new Error(`corrupt PNG '${name}': ${png.data.length} samples, expected ${expected}`);
    }
    data = bitDepth === 16
      ? png.data as Uint16Array
      : png.data instanceof Uint8Array
      ? png.data
      : Uint8Array.from(png.data as ArrayLike<number>);
  }
  const out: RawImage = { data, width, height, channels, depth: bitDepth === 16 ? 16 : 8, bitDepth };
  if (png.palette) out.palette = png.palette;
  return out;
}

/** Encodes pixels as PNG bytes (8-bit unless a Uint16Array is given). */
export function encodePngBytes(img: RawImage): Uint8Array {
  return encodePng({
    width: img.width,
    height: img.height,
    data: img.data,
    channels: img.channels,
    depth: img.depth,
  });
}

/** Writes a PNG atomically (temp file + rename), so a crash never leaves a half-written image. */
export async function writePng(path: string, img: RawImage): Promise<void> {
  await writeFileAtomic(path, encodePngBytes(img));
}

// ---------------------------------------------------------------------------------------------------
// sharp, loaded once and lazily

type SharpFactory = (input?: Uint8Array, options?: SharpOptions) => Sharp;
let sharpPromise: Promise<SharpFactory | Error> | null = null;

/** The sharp factory, or the Error that explains why it could not be loaded. */
export function loadSharp(): Promise<SharpFactory | Error> {
  sharpPromise ??= import("sharp").then(
    (m) => {
      const f = (m.default ?? m) as unknown as SharpFactory & { cache?: (o: boolean) => void };
      f.cache?.(false); // we never decode the same bytes twice; libvips' cache only costs memory
      return f as SharpFactory;
    },
    (e) => new Error(`the image library sharp could not be loaded: ${(e as Error).message}`),
  );
  return sharpPromise;
}

export type ImageFormat = "png" | "jpeg" | "unknown";

/** Detects the format from the file's magic bytes (not its name). */
export function sniffFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    return "png";
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return "unknown";
}

/** Reads an image as 8-bit RGB, as `cv2.imread(path)` + BGR->RGB would; errors name the file. */
export async function readImageRgb(path: string): Promise<RgbImage> {
  return await decodeImageRgb(await readBytes(path), path);
}

/** Decodes PNG or JPEG bytes to 8-bit RGB. */
export async function decodeImageRgb(bytes: Uint8Array, name = "<bytes>"): Promise<RgbImage> {
  const format = sniffFormat(bytes);
  if (format === "unknown") {
    throw new Error(`unreadable image '${name}': not a PNG or JPEG file (${bytes.length} bytes)`);
  }
  checkImageHeader(bytes, name);
  // 16-bit and sub-byte PNGs go through fast-png, so that the reduction to 8 bits is ours (>> 8 as cv2).
  // (sharp is faster than fast-png at every size measured, 256x128 included: 4 vs 9 ms.)
  if (format === "png") {
    const bitDepth = bytes.length > 24 ? bytes[24] : 0;
    if (bitDepth !== 8) return rawToRgb(decodePngBytes(bytes, name), name);
  }
  const sharp = await loadSharp();
  if (sharp instanceof Error) {
    if (format === "png") return rawToRgb(decodePngBytes(bytes, name), name);
    throw new Error(`cannot decode JPEG '${name}': ${sharp.message}`);
  }
  let out;
  try {
    // limitInputPixels: libvips checks the header again (e.g. a JPEG whose SOF we did not find)
    out = await sharp(bytes, {
      ignoreIcc: true,
      autoOrient: true,
      limitInputPixels: getLimits().imageMaxPixels,
    })
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`corrupt or unreadable ${format.toUpperCase()} '${name}': ${(e as Error).message}`);
  }
  const { width, height, channels } = out.info;
  if (channels !== 3 || out.data.length !== width * height * 3) {
    throw new Error(`unexpected decode of '${name}': ${channels} channels, ${out.data.length} bytes`);
  }
  return { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length), width, height };
}

/** Converts any decoded PNG to 8-bit RGB (gray replicated, alpha dropped, palette expanded, 16 -> 8 bit). */
export function rawToRgb(raw: RawImage, name = "<image>"): RgbImage {
  const { width, height, channels } = raw;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  const src = raw.data;
  if (raw.palette) {
    const pal = raw.palette;
    for (let i = 0; i < n; i++) {
      const c = pal[src[i]];
      if (!c) throw new Error(`corrupt PNG '${name}': palette index ${src[i]} beyond ${pal.length} entries`);
      out[3 * i] = c[0];
      out[3 * i + 1] = c[1];
      out[3 * i + 2] = c[2];
    }
    return { data: out, width, height };
  }
  const bd = raw.bitDepth ?? raw.depth;
  // sample -> 8 bits: 16-bit keeps the high byte (cv2/libpng strip_16), 1/2/4-bit scale to 0..255.
  const to8 = bd === 16
    ? (v: number) => v >> 8
    : bd < 8
    ? ((s: number) => (v: number) => v * s)(255 / ((1 << bd) - 1))
    : (v: number) => v;
  if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) {
      const v = to8(src[i * channels]);
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else if (channels === 3 || channels === 4) {
    for (let i = 0; i < n; i++) {
      out[3 * i] = to8(src[i * channels]);
      out[3 * i + 1] = to8(src[i * channels + 1]);
      out[3 * i + 2] = to8(src[i * channels + 2]);
    }
  } else {
    throw new Error(`unsupported channel count ${channels} in '${name}'`);
  }
  return { data: out, width, height };
}

/** Encodes RGB as JPEG (sharp). */
export async function encodeJpegBytes(img: RgbImage, quality = 90): Promise<Uint8Array> {
  const sharp = await loadSharp();
  if (sharp instanceof Error) throw new Error(`cannot encode JPEG: ${sharp.message}`);
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Encodes RGB as an 8-bit PNG. Uses sharp (libvips + zlib-ng, several times faster than fast-png) when
 * it loads, else fast-png; both are lossless, so the pixels read back are identical.
 */
export async function encodeRgbPngBytes(img: RgbImage, compressionLevel = 6): Promise<Uint8Array> {
  const sharp = await loadSharp();
  if (sharp instanceof Error) return encodePngBytes({ ...img, channels: 3, depth: 8 });
  const buf = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel, adaptiveFiltering: false })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Reads a label image as PaddleSeg does (`np.asarray(PIL.Image.open(path))`): palette PNGs give their
 * indices, gray PNGs their values; RGB(A) masks come back with 3/4 channels for the caller to refuse.
 * Differences from PIL, on purpose: 1/2/4-bit gray labels keep their raw sample values (PIL would
 * scale 2/4-bit samples to 0..255). JPEG labels are refused (lossy compression corrupts class ids).
 */
export async function readLabelImage(path: string): Promise<RawImage> {
  const bytes = await readBytes(path);
  const format = sniffFormat(bytes);
  if (format !== "png") {
    throw new Error(
      format === "jpeg"
        ? `label '${path}' is a JPEG: lossy compression changes class ids at edges; store labels as PNG`
        : `unreadable label '${path}': not a PNG file (${bytes.length} bytes)`,
    );
  }
  return decodePngBytes(bytes, path);
}

/** Width and height from the file header only (PNG IHDR, JPEG via sharp's metadata). */
export async function readImageSize(path: string): Promise<{ width: number; height: number }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    throw new Error(`cannot read image '${path}': ${(e as Error).message}`);
  }
  try {
    const head = new Uint8Array(32);
    let got = 0;
    while (got < 32) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    const fmt = sniffFormat(head.subarray(0, got));
    if (fmt === "png" && got >= 24) {
      const dv = new DataView(head.buffer);
      const size = { width: dv.getUint32(16), height: dv.getUint32(20) };
      checkPixels(size.width, size.height, path);
      return size;
    }
    if (fmt === "jpeg") {
      const sharp = await loadSharp();
      if (sharp instanceof Error) throw new Error(`cannot read JPEG '${path}': ${sharp.message}`);
      const bytes = await readBytes(path);
      checkImageHeader(bytes, path);
      const meta = await sharp(bytes, { limitInputPixels: getLimits().imageMaxPixels }).metadata();
      const swap = (meta.orientation ?? 1) >= 5; // EXIF rotations by 90 degrees swap the sides
      return swap
        ? { width: meta.height ?? 0, height: meta.width ?? 0 }
        : { width: meta.width ?? 0, height: meta.height ?? 0 };
    }
    throw new Error(`unreadable image '${path}': not a PNG or JPEG file`);
  } finally {
    file.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Bounds checked from the header, before any pixel is decoded

function checkPixels(width: number, height: number, name: string, maxPixels = getLimits().imageMaxPixels) {
  if (!(width > 0 && height > 0)) {
    throw new Error(`corrupt image '${name}': size ${width}x${height} in its header`);
  }
  if (width * height > maxPixels) {
    const side = Math.floor(Math.sqrt(maxPixels));
    throw new Error(
      `image '${name}' is ${width}x${height} (${
        (width * height / 1e6).toFixed(1)
      } Mpx), larger than the bound ` +
        `of ${maxPixels} pixels (${side}x${side}); refused from its header before decoding; ` +
        raiseHint("imageMaxPixels"),
    );
  }
}

/** Bytes the zlib stream of a PNG's IDAT chunks inflates to (filter byte per row, Adam7 passes). */
function pngRawSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
    0,
    1,
    1,
    2,
  ]];
  let n = 0;
  for (const [x0, y0, dx, dy] of passes) {
    n += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  }
  return n;
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * Inflates zlib `parts` in small steps, failing as soon as the output would exceed `limit` bytes, so a
 * small compressed stream cannot expand to gigabytes (fflate inflates a whole push at once: we push
 * 1 KiB at a time, at most ~1 MiB of output per step).
 */
function inflateCapped(parts: Uint8Array[], limit: number, tooBig: () => Error): number {
  let n = 0;
  const z = new Unzlib((chunk) => {
    n += chunk.length;
    if (n > limit) throw tooBig();
  });
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    for (let o = 0; o < p.length; o += 1024) {
      z.push(p.subarray(o, Math.min(o + 1024, p.length)), i === parts.length - 1 && o + 1024 >= p.length);
    }
  }
  return n;
}

/**
 * Checks a PNG from its chunks before it is decoded: the IHDR size against the pixel bound, and that the
 * compressed image data (and an embedded ICC profile) inflate to no more than the header implies. Returns
 * the header. Corrupt structure is left to the decoder, which reports it.
 */
export function checkPngHeader(
  bytes: Uint8Array,
  name: string,
  maxPixels?: number,
  inflate = true,
): PngHeader | null {
  if (bytes.length < 33) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (p: number) => String.fromCharCode(bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]);
  if (type(12) !== "IHDR") throw new Error(`corrupt PNG '${name}': it does not start with an IHDR chunk`);
  const h: PngHeader = {
    width: dv.getUint32(16),
    height: dv.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlaced: bytes[28] === 1,
  };
  checkPixels(h.width, h.height, name, maxPixels);
  if (!inflate) return h;
  const channels = PNG_CHANNELS[h.colorType];
  if (!channels) throw new Error(`corrupt PNG '${name}': colour type ${h.colorType}`);
  const expected = pngRawSize(h.width, h.height, channels * h.bitDepth, h.interlaced);
  const idat: Uint8Array[] = [];
  let iccp: Uint8Array | null = null;
  for (let p = 8; p + 12 <= bytes.length;) {
    const len = dv.getUint32(p), t = type(p + 4);
    if (p + 12 + len > bytes.length) break; // truncated: the decoder says so
    const body = bytes.subarray(p + 8, p + 8 + len);
    if (t === "IDAT") idat.push(body);
    else if (t === "iCCP") {
      const z = body.indexOf(0);
      if (z >= 0) iccp = body.subarray(z + 2);
    } else if (t === "IEND") break;
    p += 12 + len;
  }
  const bomb = (what: string, limit: number) => () =>
    new Error(
      `refusing PNG '${name}': its ${what} inflates to more than ${limit} bytes, beyond what its ` +
        `${h.width}x${h.height} header allows (a decompression bomb?)`,
    );
  try {
    inflateCapped(idat, expected, bomb("image data", expected));
    if (iccp) inflateCapped([iccp], 1 << 24, bomb("ICC profile", 1 << 24));
  } catch (e) {
    if ((e as Error).message.startsWith("refusing PNG")) throw e;
    // a corrupt zlib stream: left to the decoder's own message
  }
  return h;
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

/** Width and height of a JPEG from its SOF marker (null when none is found in the file). */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } | null {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return null;
    const m = bytes[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      p += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return null; // end of image / start of scan before any frame header
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (p + 9 > bytes.length) return null;
      return { height: (bytes[p + 5] << 8) | bytes[p + 6], width: (bytes[p + 7] << 8) | bytes[p + 8] };
    }
    p += 2 + len;
  }
  return null;
}

/**
 * Refuses an image larger than the pixel bound from its header (PNG IHDR, JPEG SOF). The PNG data check
 * (`checkPngHeader`) is left to `decodePngBytes`, which needs it; libvips stops at the declared size.
 */
export function checkImageHeader(bytes: Uint8Array, name: string, maxPixels?: number): void {
  const format = sniffFormat(bytes);
  if (format === "png") checkPngHeader(bytes, name, maxPixels, false);
  else if (format === "jpeg") {
    const s = jpegSize(bytes);
    if (s) checkPixels(s.width, s.height, name, maxPixels);
  }
}
