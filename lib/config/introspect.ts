/**
 * Reading the zod schema itself: which keys a mapping allows (for "did you mean" hints), which
 * `type` values a union accepts, and the documented key list (`describeConfigKeys`).
 *
 * Uses zod v4's public `_zod.def` structure (types: object, pipe, default, prefault, optional,
 * nullable, array, tuple, union, enum, literal, number, string, boolean).
 */
import type { z } from "zod";

// deno-lint-ignore no-explicit-any
type AnyDef = any;
type Schema = z.ZodType;

function def(s: Schema): AnyDef {
  return (s as unknown as { _zod: { def: AnyDef } })._zod.def;
}

function propValues(s: Schema): Record<string, Set<unknown>> | undefined {
  return (s as unknown as { _zod: { propValues?: Record<string, Set<unknown>> } })._zod.propValues;
}

/** Strips wrappers (default, optional, pipes into transforms, ...); returns the core schema. */
export function unwrap(s: Schema): Schema {
  for (;;) {
    const d = def(s);
    if (["default", "prefault", "optional", "nullable", "readonly", "catch"].includes(d.type)) {
      s = d.innerType;
    } else if (d.type === "pipe") s = d.in;
    else return s;
  }
}

/** The first description found on the wrapper chain. */
export function docOf(s: Schema): string | undefined {
  for (;;) {
    if (s.description) return s.description;
    const d = def(s);
    if (["default", "prefault", "optional", "nullable", "readonly", "catch"].includes(d.type)) {
      s = d.innerType;
    } else if (d.type === "pipe") s = d.in;
    else return undefined;
  }
}

/** The default value on the wrapper chain, if any. */
function defaultOf(s: Schema): { has: boolean; value?: unknown } {
  for (;;) {
    const d = def(s);
    if (d.type === "default") return { has: true, value: d.defaultValue };
    if (["prefault", "optional", "nullable", "readonly", "catch"].includes(d.type)) s = d.innerType;
    else if (d.type === "pipe") s = d.in;
    else return { has: false };
  }
}

function isOptional(s: Schema): boolean {
  for (;;) {
    const d = def(s);
    if (["default", "prefault", "optional"].includes(d.type)) return true;
    if (["nullable", "readonly", "catch"].includes(d.type)) s = d.innerType;
    else if (d.type === "pipe") s = d.in;
    else return false;
  }
}

/** For a union with a discriminator: its key and the accepted values. */
export function unionDiscriminator(s: Schema): { key: string; values: string[] } | null {
  const d = def(unwrap(s));
  if (d.type !== "union" || !d.discriminator) return null;
  const values: string[] = [];
  for (const o of d.options as Schema[]) {
    for (const v of propValues(o)?.[d.discriminator] ?? []) values.push(String(v));
  }
  return { key: d.discriminator, values };
}

/**
 * The schema at `path` inside `root`, choosing union members by the discriminator found in `data`
 * (the raw input at the same place). Returns null when the path leaves the schema.
 */
export function schemaAt(root: Schema, path: readonly PropertyKey[], data: unknown): Schema | null {
  let s: Schema = root;
  let v: unknown = data;
  for (const seg of path) {
    const picked = pickMember(s, v);
    if (!picked) return null;
    const d = def(picked);
    if (d.type === "object") {
      const child = d.shape[seg as string] as Schema | undefined;
      if (!child) return null;
      s = child;
    } else if (d.type === "array") s = d.element;
    else if (d.type === "tuple") {
      const child = d.items[Number(seg)] as Schema | undefined;
      if (!child) return null;
      s = child;
    } else return null;
    v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[seg] : undefined;
  }
  return s;
}

/** Unwraps `s` and, for a discriminated union, picks the member that `value`'s discriminator names. */
function pickMember(s: Schema, value: unknown): Schema | null {
  const core = unwrap(s);
  const d = def(core);
  if (d.type !== "union") return core;
  if (!d.discriminator) return null;
  const tag = value !== null && typeof value === "object"
    ? (value as Record<string, unknown>)[d.discriminator]
    : undefined;
  for (const o of d.options as Schema[]) {
    if (propValues(o)?.[d.discriminator]?.has(tag)) return unwrap(o);
  }
  return null;
}

/** Keys allowed in the mapping at `path` (empty when unknown). */
export function allowedKeysAt(root: Schema, path: readonly PropertyKey[], data: unknown): string[] {
  const s = schemaAt(root, path, data);
  if (!s) return [];
  let v: unknown = data;
  for (const seg of path) {
    v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[seg] : undefined;
  }
  const picked = pickMember(s, v);
  if (!picked) return [];
  const d = def(picked);
  return d.type === "object" ? Object.keys(d.shape) : [];
}

/** A short type name for documentation. */
function typeName(s: Schema): string {
  const d = def(unwrap(s));
  switch (d.type) {
    case "enum":
      return Object.values(d.entries as Record<string, string>).map((e) => JSON.stringify(e)).join(" | ");
    case "literal":
      return (d.values as unknown[]).map((e) => JSON.stringify(e)).join(" | ");
    case "array":
      return `list of ${typeName(d.element)}`;
    case "tuple":
      return `[${(d.items as Schema[]).map(typeName).join(", ")}]`;
    case "union":
      return d.discriminator ? "mapping" : (d.options as Schema[]).map(typeName).join(" | ");
    case "object":
      return "mapping";
    case "number": {
      const checks = (d.checks ?? []) as { _zod: { def: AnyDef } }[];
      return checks.some((c) => c._zod.def.format === "safeint") ? "integer" : "number";
    }
    default:
      return d.type;
  }
}

export interface KeyDoc {
  /** Dotted key path; union members appear as `key[type=Name]`, list items as `key[]`. */
  path: string;
  type: string;
  required: boolean;
  default?: unknown;
  doc?: string;
}

/** Every key of the schema with its type, default and documentation (depth first, schema order). */
export function describeKeys(root: Schema): KeyDoc[] {
  const out: KeyDoc[] = [];
  const visit = (s: Schema, path: string) => {
    const core = unwrap(s);
    const d = def(core);
    if (d.type === "object") {
      for (const [k, child] of Object.entries(d.shape as Record<string, Schema>)) {
        const p = path ? `${path}.${k}` : k;
        const dflt = defaultOf(child);
        out.push({
          path: p,
          type: typeName(child),
          required: !isOptional(child),
          ...(dflt.has ? { default: dflt.value } : {}),
          doc: docOf(child),
        });
        visit(child, p);
      }
    } else if (d.type === "array") {
      visit(d.element, `${path}[]`);
    } else if (d.type === "union" && d.discriminator) {
      for (const o of d.options as Schema[]) {
        const tags = [...(propValues(o)?.[d.discriminator] ?? [])].map(String);
        visit(o, `${path}[${d.discriminator}=${tags[0]}]`);
      }
    }
  };
  visit(root, "");
  return out;
}
