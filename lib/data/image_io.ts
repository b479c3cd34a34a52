/**
 * Image files <-> raw pixel arrays (HWC, row-major).
 *
 * PNG goes through fast-png, which keeps 1-channel, palette and 16-bit images exact (labels must never be
 * colour-managed or resampled on load).
 */
import { decode as decodePng, encode as encodePng } from "fast-png";

export interface RawImage {
  /** Pixel values, row-major HWC. Uint8Array for 8-bit, Uint16Array for 16-bit images. */
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  /** 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA). Palette PNGs are returned as their indices (1 channel). */
  channels: number;
  depth: 8 | 16;
}

/** Decodes a PNG file; errors name the file. */
export async function readPng(path: string): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`cannot read image '${path}': ${(e as Error).message}`);
  }
  return decodePngBytes(bytes, path);
}

export function decodePngBytes(bytes: Uint8Array, name = "<bytes>"): RawImage {
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new Error(`corrupt or unreadable PNG '${name}': ${(e as Error).message}`);
  }
  const depth = png.depth === 16 ? 16 : 8;
  if (png.depth !== 8 && png.depth !== 16 && !png.palette) {
    throw new Error(`unsupported PNG bit depth ${png.depth} in '${name}'`);
  }
  const channels = png.palette ? 1 : png.channels;
  const expected = png.width * png.height * channels;
  if (png.data.length !== expected) {
    throw new Error(`corrupt PNG '${name}': ${png.data.length} samples, expected ${expected}`);
  }
  const data = depth === 16 ? png.data as Uint16Array : Uint8Array.from(png.data as ArrayLike<number>);
  return { data, width: png.width, height: png.height, channels, depth };
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
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, encodePngBytes(img));
  await Deno.rename(tmp, path);
}
