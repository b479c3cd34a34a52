/**
 * YAML for Python's PyYAML (YAML 1.1), which PaddleSeg's `Config` reads. npm's `yaml` writes YAML 1.2,
 * where `2e-7` or `1` are floats; PyYAML reads `2e-7` as a string and `1` as an int, and PaddleSeg asserts
 * `isinstance(weight_decay, float)`. So values that must be floats are wrapped in `PyFloat` and written
 * with a decimal point and a signed exponent (`2.0e-07`), strings are double-quoted (JSON escapes are
 * valid YAML), and nothing else (anchors, tags, multi-line scalars) is ever emitted.
 */

/** A number that must reach Python as a float. */
export class PyFloat {
  constructor(readonly value: number) {
    if (!Number.isFinite(value)) throw new Error(`PyFloat: ${value} is not a finite number`);
  }
}

export type PyValue = null | boolean | number | string | PyFloat | PyValue[] | { [key: string]: PyValue };

/** `v` as PyYAML's float syntax: a '.' in the mantissa and, with an exponent, its sign (`1.0e+21`). */
export function pyFloatText(v: number): string {
  let s = String(v);
  const e = s.indexOf("e");
  let mant = e < 0 ? s : s.slice(0, e);
  const exp = e < 0 ? "" : s.slice(e + 1);
  if (!mant.includes(".")) mant += ".0";
  s = exp ? `${mant}e${exp.startsWith("-") || exp.startsWith("+") ? exp : `+${exp}`}` : mant;
  return s;
}

function scalar(v: PyValue): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return pyFloatText(v);
    return String(v);
  }
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof PyFloat) return pyFloatText(v.value);
  throw new Error("pyyaml: not a scalar");
}

const isScalar = (v: PyValue) => v === null || typeof v !== "object" || v instanceof PyFloat;
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function key(k: string): string {
  return KEY.test(k) ? k : JSON.stringify(k);
}

function emit(v: PyValue, indent: string, lines: string[], prefix: string): void {
  if (isScalar(v)) {
    lines.push(`${prefix}${scalar(v)}`);
    return;
  }
  if (Array.isArray(v)) {
    if (v.every(isScalar)) {
      lines.push(`${prefix}[${v.map(scalar).join(", ")}]`);
      return;
    }
    if (prefix.trim()) lines.push(prefix.trimEnd());
    for (const item of v) {
      if (isScalar(item) || Array.isArray(item)) emit(item, `${indent}  `, lines, `${indent}- `);
      else emitMap(item as { [k: string]: PyValue }, `${indent}  `, lines, `${indent}- `);
    }
    return;
  }
  const map = v as { [k: string]: PyValue };
  if (Object.keys(map).length === 0) {
    lines.push(`${prefix}{}`);
    return;
  }
  if (prefix.trim()) lines.push(prefix.trimEnd());
  emitMap(map, indent, lines, indent);
}

/** A mapping whose first line starts with `first` (an indent, or a list item's "- "). */
function emitMap(map: { [k: string]: PyValue }, indent: string, lines: string[], first: string): void {
  let lead = first;
  for (const [k, val] of Object.entries(map)) {
    const head = `${lead}${key(k)}: `;
    if (isScalar(val) || (Array.isArray(val) && val.every(isScalar))) emit(val, indent, lines, head);
    else if (Array.isArray(val)) emit(val, indent, lines, head);
    else emit(val, `${indent}  `, lines, head);
    lead = indent;
  }
}

/** The document text of a top-level mapping. */
export function toPyYaml(doc: { [key: string]: PyValue }): string {
  const lines: string[] = [];
  emitMap(doc, "", lines, "");
  return lines.join("\n") + "\n";
}
