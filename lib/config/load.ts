/**
 * Loading: YAML files with PaddleSeg's `_base_` inheritance, then flags and `--opts` overrides,
 * then one validation against the schema.
 *
 * `_base_` is a path or a list of paths relative to the file that names it. With a list, the first
 * base has precedence over later ones and the file itself over all of them (PaddleSeg's order).
 * Every config file and `_base_` must be a regular file of at most 1 MiB (PC_MAX_CONFIG_BYTES):
 * `/dev/zero`, FIFOs and folders are refused with their path before anything is read.
 */
import YAML from "yaml";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { annotate, isPlainObject, merge, type Node, toPlain, TreeError } from "./tree.ts";
import { ConfigError } from "./errors.ts";
import { parseOverrides } from "./overrides.ts";
import { type CliFlags, cliFlagsToOverrides } from "./flags.ts";
import { applyOverrides, validateTree } from "./validate.ts";
import type { Config } from "./schema.ts";
import { FileCheckError, readFileBounded } from "../util/fs.ts";
import { getLimits, raiseHint } from "../util/limits.ts";

const BASE_KEY = "_base_";

export interface LoadOptions {
  /** PaddleSeg `--opts` items, `key.path=value` (applied last). */
  overrides?: readonly string[];
  /** The common flags (`--iters`, `--batch_size`, ...), applied before `overrides`. */
  flags?: CliFlags;
}

interface Named {
  /** The file that names this one, for error messages. */
  by: string;
}

function fail(source: string, path: string, message: string): never {
  throw new ConfigError([{ source, path, message }]);
}

function parseYaml(text: string, source: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = YAML.parse(text, { prettyErrors: true });
  } catch (e) {
    fail(source, "", `YAML syntax error: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (!isPlainObject(doc)) fail(source, "", "the top level must be a mapping of keys");
  return doc;
}

/** Builds the merged tree of one text (its `_base_` files read from disk). */
async function layerFromText(
  text: string,
  display: string,
  chain: { abs: string; display: string }[],
): Promise<Node> {
  const raw = parseYaml(text, display);
  const { [BASE_KEY]: baseSpec, ...own } = raw;
  let ownNode: Node;
  try {
    ownNode = annotate(own, display);
  } catch (e) {
    if (e instanceof TreeError) fail(display, e.path.join("."), e.detail);
    throw e;
  }
  if (baseSpec === undefined || baseSpec === null) return ownNode;
  const bases = typeof baseSpec === "string" ? [baseSpec] : baseSpec;
  if (!Array.isArray(bases) || bases.some((b) => typeof b !== "string" || !b)) {
    fail(display, BASE_KEY, "expected a path or a list of paths");
  }
  let acc: Node | null = null;
  for (const b of [...(bases as string[])].reverse()) {
    const node = await layerFromFile(isAbsolute(b) ? b : join(dirname(display), b), chain, { by: display });
    acc = acc ? merge(node, acc) : node;
  }
  return acc ? merge(ownNode, acc) : ownNode;
}

async function layerFromFile(
  display: string,
  chain: { abs: string; display: string }[],
  named?: Named,
): Promise<Node> {
  const abs = resolve(display);
  if (chain.some((c) => c.abs === abs)) {
    const cycle = [...chain.slice(chain.findIndex((c) => c.abs === abs)).map((c) => c.display), display];
    fail(named?.by ?? display, BASE_KEY, `inheritance cycle: ${cycle.join(" -> ")}`);
  }
  let text: string;
  try {
    const bytes = await readFileBounded(abs, getLimits().configMaxBytes, raiseHint("configMaxBytes"));
    text = new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      if (named) fail(named.by, BASE_KEY, `file not found: ${display}`);
      fail(display, "", "config file not found");
    }
    const why = e instanceof FileCheckError ? e.reason : `cannot be read: ${(e as Error).message}`;
    if (named) fail(named.by, BASE_KEY, `'${display}' ${why}`);
    fail(display, "", `config file ${why}`);
  }
  return await layerFromText(text, display, [...chain, { abs, display }]);
}

function finish(tree: Node, opts: LoadOptions, context: string): Config {
  tree = applyOverrides(tree, [...cliFlagsToOverrides(opts.flags), ...parseOverrides(opts.overrides ?? [])]);
  return validateTree(tree, context);
}

/**
 * Reads a YAML config (resolving `_base_`), applies `flags` then `overrides`, validates once.
 * Throws `ConfigError` whose message names the file (or override) and key path of each problem.
 */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<Config> {
  return finish(await layerFromFile(path, []), opts, path);
}

/**
 * Validates YAML text (e.g. the resolved config stored with a checkpoint). `source` names it in
 * errors and is the reference for relative `_base_` paths.
 */
export async function loadConfigText(
  text: string,
  source = "<config>",
  opts: LoadOptions = {},
): Promise<Config> {
  return finish(await layerFromText(text, source, []), opts, source);
}

/** Validates an already parsed object (e.g. JSON), with the same rules and messages. */
export function validateConfig(raw: unknown, source = "<config>", opts: LoadOptions = {}): Config {
  if (!isPlainObject(raw)) fail(source, "", "the top level must be a mapping of keys");
  let tree: Node;
  try {
    tree = annotate(raw, source);
  } catch (e) {
    if (e instanceof TreeError) fail(source, e.path.join("."), e.detail);
    throw e;
  }
  return finish(tree, opts, source);
}

/**
 * The merged, unvalidated plain object of a file and its `_base_` files (null keys dropped).
 * For tools and tests; training code should use `loadConfig`.
 */
export async function loadRawConfig(path: string): Promise<Record<string, unknown>> {
  return toPlain(await layerFromFile(path, [])) as Record<string, unknown>;
}
