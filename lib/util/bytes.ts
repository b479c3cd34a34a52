/** Byte helpers shared by the readers (weights, archives) and their tests. */

/** The chunks, in order, as one new Uint8Array (its own buffer, offset 0). */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
