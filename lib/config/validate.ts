/** Validation of a merged raw tree against the schema, with errors located in their source layer. */
import { type Config, configSchema } from "./schema.ts";
import { ConfigError, formatZodIssues } from "./errors.ts";
import { type Node, setPath, sourceOf, toPlain, TreeError } from "./tree.ts";
import { formatPath } from "./tree.ts";
import type { Override } from "./overrides.ts";

/** Applies overrides in order (later wins); structural problems name the override. */
export function applyOverrides(tree: Node, overrides: readonly Override[]): Node {
  for (const ov of overrides) {
    try {
      tree = setPath(tree, ov.path, ov.value, ov.label);
    } catch (e) {
      if (e instanceof TreeError) {
        throw new ConfigError([{ source: ov.label, path: formatPath(e.path), message: e.detail }]);
      }
      throw e;
    }
  }
  return tree;
}

/** Validates the tree once; returns plain data or throws a `ConfigError` listing every problem. */
export function validateTree(tree: Node, context: string): Config {
  const plain = toPlain(tree);
  const r = configSchema.safeParse(plain);
  if (r.success) return r.data;
  const issues = formatZodIssues(r.error.issues, configSchema, plain, (p) => sourceOf(tree, p));
  throw new ConfigError(issues, context);
}
