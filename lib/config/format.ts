/** The resolved config as YAML (for logs and checkpoints) and a key-by-key comparison (for resume). */
import YAML from "yaml";
import type { Config } from "./schema.ts";
import { isPlainObject } from "./tree.ts";

/**
 * The resolved config as YAML: every key explicit (defaults and derived values filled in), lists of
 * scalars on one line. `loadConfigText` reads it back to the same object.
 */
export function configToYaml(config: Config, opts: { header?: string } = {}): string {
  const doc = new YAML.Document(JSON.parse(JSON.stringify(config)));
  YAML.visit(doc, {
    Seq(_, node) {
      if (node.items.every((it) => YAML.isScalar(it))) node.flow = true;
    },
  });
  if (opts.header) doc.commentBefore = opts.header.split("\n").map((l) => ` ${l}`).join("\n");
  return doc.toString({ lineWidth: 0 });
}

/**
 * Differences between two configs as `key.path: old -> new` lines (empty when equal). Keys absent on
 * one side show as `(unset)`.
 */
export function configDiff(a: unknown, b: unknown): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (v === undefined ? "(unset)" : JSON.stringify(v));
  const walk = (x: unknown, y: unknown, path: string) => {
    if (isPlainObject(x) && isPlainObject(y)) {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
        walk(x[k], y[k], path ? `${path}.${k}` : k);
      }
    } else if (Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
      x.forEach((xi, i) => walk(xi, y[i], `${path}.${i}`));
    } else if (JSON.stringify(x) !== JSON.stringify(y)) {
      out.push(`${path || "(top level)"}: ${show(x)} -> ${show(y)}`);
    }
  };
  walk(a, b, "");
  return out;
}
