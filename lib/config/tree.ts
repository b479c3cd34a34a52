/**
 * Raw configuration trees that remember where each value came from (a YAML file or a command-line
 * override), so that validation errors can name the file at fault, and PaddleSeg's merge rules:
 *
 * - mappings merge key by key, the higher-precedence side wins (`_base_` files are lower);
 * - lists and scalars are replaced whole (PaddleSeg does not merge lists);
 * - a mapping with `_inherited_: false` replaces the same mapping of every lower-precedence layer
 *   instead of merging with it (PaddleSeg's key; the key itself is dropped);
 * - `null` means "unset": such keys are dropped before validation, so the schema default applies.
 */

export type Seg = string | number;

export type Node =
  | { src: string; kind: "map"; entries: Map<string, Node>; replace: boolean }
  | { src: string; kind: "list"; items: Node[] }
  | { src: string; kind: "leaf"; value: unknown };

const INHERIT_KEY = "_inherited_";

/** Thrown for structural problems; `path` is the key path inside the layer named by `src`. */
export class TreeError extends Error {
  constructor(readonly src: string, readonly path: readonly Seg[], readonly detail: string) {
    super(detail);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

/** Wraps a parsed YAML value; every node is labelled `src`. */
export function annotate(value: unknown, src: string, path: Seg[] = []): Node {
  if (Array.isArray(value)) {
    return { src, kind: "list", items: value.map((v, i) => annotate(v, src, [...path, i])) };
  }
  if (isPlainObject(value)) {
    const entries = new Map<string, Node>();
    let replace = false;
    for (const [k, v] of Object.entries(value)) {
      if (k === INHERIT_KEY) {
        if (typeof v !== "boolean") throw new TreeError(src, [...path, k], "must be true or false");
        replace = !v;
        continue;
      }
      entries.set(k, annotate(v, src, [...path, k]));
    }
    return { src, kind: "map", entries, replace };
  }
  return { src, kind: "leaf", value };
}

/** `top` over `bottom` (top wins). Neither input is modified. */
export function merge(top: Node, bottom: Node): Node {
  if (top.kind !== "map" || bottom.kind !== "map" || top.replace) return top;
  const entries = new Map(bottom.entries);
  for (const [k, v] of top.entries) {
    const b = entries.get(k);
    entries.set(k, b ? merge(v, b) : v);
  }
  // a lower layer's `_inherited_: false` keeps replacing what lies below it
  return { src: top.src, kind: "map", entries, replace: bottom.replace };
}

/** The plain value; `null` entries of mappings are dropped ("unset"). */
export function toPlain(n: Node): unknown {
  if (n.kind === "leaf") return n.value;
  if (n.kind === "list") return n.items.map(toPlain);
  const out: Record<string, unknown> = {};
  for (const [k, v] of n.entries) {
    if (v.kind === "leaf" && v.value === null) continue;
    out[k] = toPlain(v);
  }
  return out;
}

/** The label of the deepest node on `path` (the layer that set the value, or its nearest parent). */
export function sourceOf(root: Node, path: readonly PropertyKey[]): string {
  let n: Node = root;
  for (const seg of path) {
    const next: Node | undefined = n.kind === "map"
      ? n.entries.get(String(seg))
      : n.kind === "list"
      ? n.items[Number(seg)]
      : undefined;
    if (!next) break;
    n = next;
  }
  return n.src;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.length ? path.map(String).join(".") : "(top level)";
}

/**
 * Sets `value` at `path` (an override), creating missing mappings; list items are addressed by index.
 * Returns the new root; the input tree is not modified.
 */
export function setPath(root: Node, path: readonly Seg[], value: unknown, src: string): Node {
  const put = (n: Node | undefined, i: number): Node => {
    if (i === path.length) return annotate(value, src, [...path]);
    const seg = path[i];
    const here = path.slice(0, i);
    if (n === undefined || (n.kind === "leaf" && n.value === null)) {
      if (typeof seg === "number") {
        throw new TreeError(src, path.slice(0, i + 1), `${formatPath(here)} has no list to index`);
      }
      n = { src, kind: "map", entries: new Map(), replace: false };
    }
    if (n.kind === "map") {
      const entries = new Map(n.entries);
      entries.set(String(seg), put(n.entries.get(String(seg)), i + 1));
      return { ...n, entries };
    }
    if (n.kind === "list") {
      if (typeof seg !== "number" || seg >= n.items.length) {
        throw new TreeError(
          src,
          path.slice(0, i + 1),
          `${formatPath(here)} is a list of ${n.items.length} item(s); use an index 0..${n.items.length - 1}`,
        );
      }
      const items = [...n.items];
      items[seg] = put(items[seg], i + 1);
      return { ...n, items };
    }
    throw new TreeError(
      src,
      path.slice(0, i + 1),
      `${formatPath(here)} is a single value, not a mapping or list`,
    );
  };
  return put(root, 0);
}
