/**
 * PaddleSeg's `--opts key.path=value [key=value ...]`: single keys set from the command line.
 * Values are parsed as YAML (`iters=100`, `model.backbone.pretrained=null`, `loss.coef=[1,0.2]`);
 * a bare comma list of numbers is a list, as in PaddleSeg (`test_config.scales=0.75,1.0,1.25`).
 * List items are addressed by index (`loss.types.1.temperature=0.2`).
 */
import YAML from "yaml";
import { ConfigError } from "./errors.ts";
import type { Seg } from "./tree.ts";

export interface Override {
  /** The dotted key as written. */
  key: string;
  path: Seg[];
  value: unknown;
  /** Names the override in error messages, e.g. `--opts iters=100` or `--iters 100`. */
  label: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const INDEX = /^\d+$/;

/** Splits a dotted key; numeric segments become list indices. Throws naming `label` on a malformed key. */
export function parseKeyPath(key: string, label: string): Seg[] {
  const segs = key.split(".");
  if (!key || segs.some((s) => !NAME.test(s) && !INDEX.test(s))) {
    throw new ConfigError([{
      source: label,
      path: "",
      message:
        `bad key '${key}': expected a dotted key path such as model.backbone.type or loss.types.1.coef`,
    }]);
  }
  return segs.map((s) => (INDEX.test(s) ? Number(s) : s));
}

function parseValue(raw: string, label: string, key: string): unknown {
  let v: unknown;
  try {
    v = YAML.parse(raw);
  } catch (e) {
    throw new ConfigError([{
      source: label,
      path: key,
      message: `bad value '${raw}': ${(e as Error).message.split("\n")[0]}`,
    }]);
  }
  if (typeof v === "string" && raw.includes(",") && !/[[\]{}]/.test(raw)) {
    try {
      const list = YAML.parse(`[${raw}]`);
      if (Array.isArray(list) && list.every((x) => typeof x === "number")) return list;
    } catch {
      // not a number list: keep the string
    }
  }
  return v === undefined ? null : v;
}

/** Parses `key=value` items (PaddleSeg `--opts`). */
export function parseOverrides(items: readonly string[]): Override[] {
  return items.map((item) => {
    const label = `--opts ${item}`;
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError([{
        source: label,
        path: "",
        message: "expected key=value, e.g. --opts batch_size=1 test_config.scales=0.75,1.0,1.25",
      }]);
    }
    const key = item.slice(0, eq).trim();
    const path = parseKeyPath(key, label);
    return { key, path, value: parseValue(item.slice(eq + 1), label, key), label };
  });
}
