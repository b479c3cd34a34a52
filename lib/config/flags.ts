/**
 * The common command-line flags of PaddleSeg's train.py / val.py / predict.py, each mapped onto one
 * config key, plus a small argv parser for them (node's parseArgs cannot take `--crop_size W H`).
 *
 *   const args = parseConfigArgs(Deno.args, { model_path: { type: "string" } });
 *   const cfg = await loadConfig(args.config!, { flags: args.flags, overrides: args.opts });
 *
 * Precedence (lowest first): `_base_` files, the config file, flags, `--opts` (as PaddleSeg).
 */
import { annotate, type Seg } from "./tree.ts";
import { ConfigError, suggest } from "./errors.ts";
import { type Override, parseOverrides } from "./overrides.ts";
import { applyOverrides, validateTree } from "./validate.ts";
import {
  type BackendChoice,
  BACKENDS,
  type Config,
  GRAPH_MODES,
  type GraphChoice,
  type PrecisionChoice,
  PRECISIONS,
} from "./schema.ts";

type Kind = "int" | "number" | "string" | "bool" | "pair" | "numbers" | "choice";

interface FlagSpec {
  path: Seg[];
  kind: Kind;
  doc: string;
  aliases?: string[];
  /** kind "choice": the accepted values, and what one is called in the error message. */
  choices?: readonly string[];
  noun?: string;
}

/** Flag name -> config key. Names follow PaddleSeg's scripts. */
export const CONFIG_FLAGS = {
  iters: { path: ["iters"], kind: "int", doc: "optimizer steps" },
  batch_size: { path: ["batch_size"], kind: "int", doc: "images per micro-batch" },
  learning_rate: { path: ["lr_scheduler", "learning_rate"], kind: "number", doc: "base learning rate" },
  backend: {
    path: ["backend"],
    kind: "choice",
    choices: BACKENDS,
    noun: "backend",
    doc: `TensorFlow.js backend: ${BACKENDS.join("|")}`,
  },
  precision: {
    path: ["train", "precision"],
    kind: "choice",
    choices: PRECISIONS,
    noun: "precision",
    doc: `compute precision of convolutions and matmuls: ${PRECISIONS.join("|")}`,
  },
  graph: {
    path: ["train", "graph"],
    kind: "choice",
    choices: GRAPH_MODES,
    noun: "graph mode",
    doc: `forward and backward as one TensorFlow graph: ${GRAPH_MODES.join("|")}`,
  },
  seed: { path: ["seed"], kind: "int", doc: "random seed" },
  save_dir: { path: ["train", "save_dir"], kind: "string", doc: "output folder" },
  log_iters: {
    path: ["train", "log_iters"],
    kind: "int",
    doc: "log every N iterations",
    aliases: ["log_iter"],
  },
  save_interval: { path: ["train", "save_interval"], kind: "int", doc: "checkpoint every N iterations" },
  keep_checkpoint_max: { path: ["train", "keep_checkpoint_max"], kind: "int", doc: "checkpoints kept" },
  do_eval: { path: ["train", "do_eval"], kind: "bool", doc: "evaluate during training" },
  eval_interval: { path: ["train", "eval_interval"], kind: "int", doc: "evaluate every N iterations" },
  grad_accum: { path: ["train", "grad_accum"], kind: "int", doc: "micro-batches per optimizer step" },
  resume_model: { path: ["train", "resume_model"], kind: "string", doc: "checkpoint folder to resume from" },
  aug_eval: { path: ["test_config", "aug_eval"], kind: "bool", doc: "multi-scale / flip evaluation" },
  scales: { path: ["test_config", "scales"], kind: "numbers", doc: "scales for aug_eval" },
  flip_horizontal: {
    path: ["test_config", "flip_horizontal"],
    kind: "bool",
    doc: "horizontal flip for aug_eval",
    aliases: ["flip"],
  },
  flip_vertical: { path: ["test_config", "flip_vertical"], kind: "bool", doc: "vertical flip for aug_eval" },
  is_slide: { path: ["test_config", "is_slide"], kind: "bool", doc: "sliding-window evaluation" },
  crop_size: { path: ["test_config", "crop_size"], kind: "pair", doc: "sliding window W H" },
  stride: { path: ["test_config", "stride"], kind: "pair", doc: "sliding-window stride W H" },
} as const satisfies Record<string, FlagSpec>;

/** Typed values of the common flags (unset = keep the config's value). */
export interface CliFlags {
  iters?: number;
  batch_size?: number;
  learning_rate?: number;
  backend?: BackendChoice;
  precision?: PrecisionChoice;
  graph?: GraphChoice;
  seed?: number;
  save_dir?: string;
  log_iters?: number;
  save_interval?: number;
  keep_checkpoint_max?: number;
  do_eval?: boolean;
  eval_interval?: number;
  grad_accum?: number;
  resume_model?: string;
  aug_eval?: boolean;
  scales?: number[];
  flip_horizontal?: boolean;
  flip_vertical?: boolean;
  is_slide?: boolean;
  crop_size?: [number, number];
  stride?: [number, number];
}

type FlagName = keyof typeof CONFIG_FLAGS;

function label(name: string, v: unknown): string {
  if (v === true) return `--${name}`;
  return `--${name} ${Array.isArray(v) ? v.join(" ") : String(v)}`;
}

/** The flags as overrides (in table order); `undefined` values are skipped. */
export function cliFlagsToOverrides(flags: CliFlags = {}): Override[] {
  const out: Override[] = [];
  for (const [name, spec] of Object.entries(CONFIG_FLAGS) as [FlagName, FlagSpec][]) {
    const v = flags[name];
    if (v === undefined) continue;
    out.push({ key: spec.path.join("."), path: [...spec.path], value: v, label: label(name, v) });
  }
  const unknown = Object.keys(flags).filter((k) => !(k in CONFIG_FLAGS));
  if (unknown.length) {
    throw new ConfigError(unknown.map((k) => ({
      source: `--${k}`,
      path: "",
      message: `unknown flag${suggest(k, Object.keys(CONFIG_FLAGS))}`,
    })));
  }
  return out;
}

/**
 * Applies flags to an already loaded config and validates the result. Prefer passing `flags` to
 * `loadConfig`; this exists for configs that did not come from a file (e.g. read from a checkpoint).
 * `train.eval_interval` follows a changed `save_interval` when it equalled the old one (its default).
 */
export function applyCliFlags(config: Config, flags: CliFlags): Config {
  const f = { ...flags };
  if (
    f.save_interval !== undefined && f.eval_interval === undefined &&
    config.train.eval_interval === config.train.save_interval
  ) f.eval_interval = f.save_interval;
  const tree = applyOverrides(annotate(structuredClone(config), "(loaded config)"), cliFlagsToOverrides(f));
  return validateTree(tree, "config with command-line flags");
}

// ---------------------------------------------------------------------------------------------------
// argv parsing

export interface ExtraFlag {
  type: "string" | "boolean" | "number" | "strings";
  doc?: string;
}

export interface ParsedConfigArgs {
  /** `--config PATH` */
  config?: string;
  flags: CliFlags;
  /** `--opts key=value ...` items, for `loadConfig(path, {overrides})`. */
  opts: string[];
  /** Values of the caller's own flags (`extra`). */
  extra: Record<string, string | boolean | number | string[]>;
  positionals: string[];
}

function argError(flag: string, message: string): ConfigError {
  return new ConfigError([{ source: `--${flag}`, path: "", message }]);
}

function toNumber(flag: string, s: string, integer: boolean): number {
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw argError(flag, `expected ${integer ? "an integer" : "a number"}, got '${s}'`);
  }
  return n;
}

/**
 * Parses argv: `--config`, the common flags (`--name value`, `--name=value`, dashes or underscores),
 * `--opts k=v ...`, and the caller's `extra` flags. Unknown flags are errors naming the flag.
 */
export function parseConfigArgs(
  argv: readonly string[],
  extra: Record<string, ExtraFlag> = {},
): ParsedConfigArgs {
  const aliases = new Map<string, FlagName>();
  for (const [name, spec] of Object.entries(CONFIG_FLAGS) as [FlagName, FlagSpec][]) {
    aliases.set(name, name);
    for (const a of spec.aliases ?? []) aliases.set(a, name);
  }
  const out: ParsedConfigArgs = { flags: {}, opts: [], extra: {}, positionals: [] };
  const flags = out.flags as Record<string, unknown>;
  const known = ["config", "opts", ...aliases.keys(), ...Object.keys(extra)];
  let i = 0;
  const isFlag = (t: string | undefined) => t !== undefined && /^--[A-Za-z]/.test(t);
  const takeMany = (inline: string | undefined): string[] => {
    const vals = inline !== undefined ? [inline] : [];
    while (i < argv.length && !isFlag(argv[i])) vals.push(argv[i++]);
    return vals;
  };
  const takeOne = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    if (i >= argv.length || isFlag(argv[i])) throw argError(flag, "needs a value");
    return argv[i++];
  };
  const takeBool = (flag: string, inline: string | undefined): boolean => {
    if (inline === undefined) return true;
    if (/^(true|1|yes)$/i.test(inline)) return true;
    if (/^(false|0|no)$/i.test(inline)) return false;
    throw argError(flag, `expected true or false, got '${inline}'`);
  };
  while (i < argv.length) {
    const tok = argv[i++];
    if (!isFlag(tok)) {
      out.positionals.push(tok);
      continue;
    }
    const eq = tok.indexOf("=");
    const rawName = (eq < 0 ? tok.slice(2) : tok.slice(2, eq)).replaceAll("-", "_");
    const inline = eq < 0 ? undefined : tok.slice(eq + 1);
    if (rawName === "config") {
      out.config = takeOne("config", inline);
    } else if (rawName === "opts") {
      const items = takeMany(inline);
      if (!items.length) throw argError("opts", "needs key=value items");
      out.opts.push(...items);
    } else if (aliases.has(rawName)) {
      const name = aliases.get(rawName)!;
      const spec: FlagSpec = CONFIG_FLAGS[name];
      switch (spec.kind) {
        case "bool":
          flags[name] = takeBool(rawName, inline);
          break;
        case "int":
        case "number":
          flags[name] = toNumber(rawName, takeOne(rawName, inline), spec.kind === "int");
          break;
        case "string":
          flags[name] = takeOne(rawName, inline);
          break;
        case "choice": {
          const v = takeOne(rawName, inline), choices = spec.choices!;
          if (!choices.includes(v)) {
            throw argError(
              rawName,
              `unknown ${spec.noun} '${v}'${suggest(v, choices)}; expected one of: ${choices.join(", ")}`,
            );
          }
          flags[name] = v;
          break;
        }
        case "pair": {
          const vals = inline !== undefined
            ? inline.split(/[,x ]+/).filter(Boolean)
            : [takeOne(rawName, undefined), takeOne(rawName, undefined)];
          if (vals.length !== 2) {
            throw argError(rawName, `expected two integers W H, got '${vals.join(" ")}'`);
          }
          flags[name] = vals.map((v) => toNumber(rawName, v, true));
          break;
        }
        case "numbers": {
          const vals = takeMany(inline).flatMap((v) => v.split(",")).filter(Boolean);
          if (!vals.length) throw argError(rawName, "needs one or more numbers");
          flags[name] = vals.map((v) => toNumber(rawName, v, false));
          break;
        }
      }
    } else if (rawName in extra) {
      const spec = extra[rawName];
      if (spec.type === "boolean") out.extra[rawName] = takeBool(rawName, inline);
      else if (spec.type === "number") {
        out.extra[rawName] = toNumber(rawName, takeOne(rawName, inline), false);
      } else if (spec.type === "strings") out.extra[rawName] = takeMany(inline);
      else out.extra[rawName] = takeOne(rawName, inline);
    } else {
      throw argError(rawName, `unknown option${suggest(rawName, known)}`);
    }
  }
  return out;
}

/** Help lines for the common flags (for a CLI's --help). */
export function configFlagsHelp(): string {
  const rows: [string, string][] = [
    ["--config PATH", "YAML config (PaddleSeg format, `_base_` inheritance)"],
    [
      "--opts k=v [k=v ...]",
      "set single config keys, e.g. --opts loss.coef=[1,0.2] model.backbone.type=HRNet_W18",
    ],
  ];
  for (const [name, spec] of Object.entries(CONFIG_FLAGS) as [FlagName, FlagSpec][]) {
    const arg =
      { int: " N", number: " X", string: " S", bool: "", pair: " W H", numbers: " X [X ...]", choice: " V" }[
        spec.kind
      ];
    const al = spec.aliases?.length ? ` (or --${spec.aliases.join(", --")})` : "";
    rows.push([`--${name}${arg}`, `${spec.doc} -> ${spec.path.join(".")}${al}`]);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join("\n");
}

export { parseOverrides };
