/**
 * Config errors: every problem names its source (the YAML file, or the command-line override that set
 * the value) and the dotted key path, e.g. `configs/x.yml: model.backbone.typo: unknown key`.
 */
import type { z } from "zod";
import { allowedKeysAt, schemaAt, unionDiscriminator } from "./introspect.ts";
import { formatPath } from "./tree.ts";

export interface ConfigIssue {
  /** The file (or `--opts key=value`, `--iters 5`, ...) at fault. */
  source: string;
  /** Dotted key path (`loss.types.1.temperature`); empty for file-level problems. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[], context?: string) {
    const lines = issues.map((
      i,
    ) => (i.path ? `${i.source}: ${i.path}: ${i.message}` : `${i.source}: ${i.message}`));
    super(
      lines.length === 1
        ? lines[0]
        : `${lines.length} problems${context ? ` in ${context}` : ""}:\n${
          lines.map((l) => `  ${l}`).join("\n")
        }`,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** A short rendering of a received value. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `a list [${v.length > 6 ? "..." : v.map(show).join(", ")}]`;
  if (v !== null && typeof v === "object") return "a mapping";
  return String(v);
}

function kindName(expected: string): string {
  return ({
    object: "a mapping",
    array: "a list",
    tuple: "a list",
    number: "a number",
    int: "an integer",
  } as Record<
    string,
    string
  >)[expected] ?? `a ${expected}`;
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

export function suggest(word: string, options: readonly string[]): string {
  let best = "";
  let bestD = Infinity;
  for (const o of options) {
    const dd = distance(word.toLowerCase(), o.toLowerCase());
    if (dd < bestD) [best, bestD] = [o, dd];
  }
  return best && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean '${best}'?)` : "";
}

/** One zod issue -> one or more located messages. `sourceOf` maps a key path to the layer that set it. */
export function formatZodIssues(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
  data: unknown,
  sourceOf: (path: readonly PropertyKey[]) => string,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const at = (path: readonly PropertyKey[], message: string) =>
    out.push({ source: sourceOf(path), path: formatPath(path), message });
  for (const issue of issues) {
    const path = issue.path;
    const got = valueAt(data, path);
    switch (issue.code) {
      case "unrecognized_keys": {
        const allowed = allowedKeysAt(schema, path, data);
        for (const k of issue.keys) {
          at(
            [...path, k],
            `unknown key${suggest(k, allowed)}${
              allowed.length ? `; allowed here: ${allowed.join(", ")}` : ""
            }`,
          );
        }
        break;
      }
      case "invalid_type":
        at(
          path,
          got === undefined
            ? `missing (required, ${kindName(issue.expected)})`
            : `expected ${kindName(issue.expected)}, got ${show(got)}`,
        );
        break;
      case "invalid_union": {
        // a discriminated union reports the path of its `type` key; the union sits at the parent path
        const union = "discriminator" in issue && issue.discriminator
          ? schemaAt(schema, path.slice(0, -1), data)
          : null;
        const disc = union ? unionDiscriminator(union) : null;
        if (disc) {
          at(
            path,
            got === undefined
              ? `missing; expected one of: ${disc.values.join(", ")}`
              : `unknown ${disc.key} ${show(got)}${suggest(String(got), disc.values)}; expected one of: ${
                disc.values.join(", ")
              }`,
          );
        } else {
          const alts = issue.errors.map((errs) => {
            const e = errs[0];
            if (!e) return "?";
            if (e.code === "invalid_type") return kindName(e.expected);
            if (e.code === "invalid_value") return `one of ${e.values.map((v) => String(v)).join(", ")}`;
            return e.message;
          });
          at(path, `expected ${[...new Set(alts)].join(" or ")}, got ${show(got)}`);
        }
        break;
      }
      case "invalid_value":
        at(
          path,
          `${got === undefined ? "missing" : `got ${show(got)}`}${
            issue.values.length === 1 ? "" : suggest(String(got), issue.values.map(String))
          }; expected ${issue.values.length === 1 ? "" : "one of: "}${
            issue.values.map((v) => String(v)).join(", ")
          }`,
        );
        break;
      case "too_small":
      case "too_big": {
        const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
        const op = issue.code === "too_small"
          ? (issue.inclusive ? ">=" : ">")
          : (issue.inclusive ? "<=" : "<");
        if (issue.origin === "array" || issue.origin === "string") {
          const what = issue.origin === "array" ? "item(s)" : "character(s)";
          at(
            path,
            `needs ${issue.code === "too_small" ? "at least" : "at most"} ${bound} ${what}, got ${show(got)}`,
          );
        } else at(path, `must be ${op} ${bound}, got ${show(got)}`);
        break;
      }
      case "custom":
        at(path, issue.message);
        break;
      default:
        at(path, `${issue.message}${got === undefined ? "" : `, got ${show(got)}`}`);
    }
  }
  return out;
}
