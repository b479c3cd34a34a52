/**
 * The input arguments of a registered op, read from its serialized `OpDef` (tensorflow/core/framework/
 * op_def.proto): in a graph, a list argument (`ConcatV2`'s `values`, `AddN`'s `inputs`) takes all its tensors in
 * one `TF_AddInputList`, where eager execution takes them one by one. Only the fields we need are decoded.
 */

/** How one input argument consumes the flat input list TF.js passes. */
export type InputArg =
  | { name: string; kind: "single" }
  /** `number_attr`: as many tensors as that int attr says. */
  | { name: string; kind: "number"; attr: string }
  /** `type_list_attr`: as many tensors as that type list has entries (TF.js never passes type lists). */
  | { name: string; kind: "typeList"; attr: string };

function varint(b: Uint8Array, pos: number): [number, number] {
  let v = 0, shift = 0;
  for (;;) {
    if (pos >= b.length) throw new Error("OpDef: truncated varint");
    const x = b[pos++];
    v += (x & 0x7f) * 2 ** shift;
    if (!(x & 0x80)) return [v, pos];
    shift += 7;
    if (shift > 63) throw new Error("OpDef: varint too long");
  }
}

/** Calls `f(field, wireType, value)` for each field of a message; length-delimited values are sub-arrays. */
function fields(b: Uint8Array, f: (field: number, value: number | Uint8Array) => void): void {
  let pos = 0;
  while (pos < b.length) {
    let key: number;
    [key, pos] = varint(b, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) {
      let v: number;
      [v, pos] = varint(b, pos);
      f(field, v);
    } else if (wire === 2) {
      let len: number;
      [len, pos] = varint(b, pos);
      if (pos + len > b.length) throw new Error("OpDef: truncated field");
      f(field, b.subarray(pos, pos + len));
      pos += len;
    } else if (wire === 5) {
      pos += 4;
    } else if (wire === 1) {
      pos += 8;
    } else {
      throw new Error(`OpDef: unexpected wire type ${wire}`);
    }
  }
}

const dec = new TextDecoder();

/** Name and input arguments of a serialized OpDef. */
export function parseOpDef(bytes: Uint8Array): { name: string; inputs: InputArg[] } {
  let name = "";
  const inputs: InputArg[] = [];
  fields(bytes, (field, v) => {
    if (field === 1 && v instanceof Uint8Array) name = dec.decode(v);
    if (field === 2 && v instanceof Uint8Array) {
      let argName = "", numberAttr = "", typeListAttr = "";
      fields(v, (f, x) => {
        if (!(x instanceof Uint8Array)) return;
        if (f === 1) argName = dec.decode(x);
        if (f === 5) numberAttr = dec.decode(x);
        if (f === 6) typeListAttr = dec.decode(x);
      });
      inputs.push(
        numberAttr
          ? { name: argName, kind: "number", attr: numberAttr }
          : typeListAttr
          ? { name: argName, kind: "typeList", attr: typeListAttr }
          : { name: argName, kind: "single" },
      );
    }
  });
  return { name, inputs };
}
