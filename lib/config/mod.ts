/**
 * Configuration: PaddleSeg-format YAML with `_base_` inheritance, validated once against a typed
 * schema; command-line flags and `--opts key=value` overrides. Imports nothing else from lib/ but the
 * leaf utilities of lib/util (bounded file reads).
 *
 *   import { loadConfig, parseConfigArgs } from "../config/mod.ts";
 *   const args = parseConfigArgs(Deno.args, { model_path: { type: "string" } });
 *   const cfg = await loadConfig(args.config ?? DEFAULT, { flags: args.flags, overrides: args.opts });
 *   console.log(configToYaml(cfg));
 *
 * Every key, its type, default and meaning: `describeConfigKeys()` (or read schema.ts).
 */
import { describeKeys, type KeyDoc } from "./introspect.ts";
import { configSchema } from "./schema.ts";

export { loadConfig, loadConfigText, type LoadOptions, loadRawConfig, validateConfig } from "./load.ts";
export { type Override, parseOverrides } from "./overrides.ts";
export {
  applyCliFlags,
  type CliFlags,
  cliFlagsToOverrides,
  CONFIG_FLAGS,
  configFlagsHelp,
  type ExtraFlag,
  parseConfigArgs,
  type ParsedConfigArgs,
} from "./flags.ts";
export { configDiff, configToYaml } from "./format.ts";
export { ConfigError, type ConfigIssue } from "./errors.ts";
export type { KeyDoc } from "./introspect.ts";
export {
  type BackboneConfig,
  type BackboneType,
  type BackendChoice,
  BACKENDS,
  CE_WEIGHT_PRESET_SIZES,
  CITYSCAPES_IGNORE_INDEX,
  CITYSCAPES_NUM_CLASSES,
  type Config,
  type ConfigInput,
  configSchema,
  type CrossEntropyLossConfig,
  type DatasetConfig,
  HRNET_CONCAT_CHANNELS,
  type LossConfig,
  type LossTermConfig,
  type LrSchedulerConfig,
  type MemoryBankConfig,
  type ModelConfig,
  type OptimizerConfig,
  type PixelContrastLossConfig,
  type TestConfig,
  type TrainConfig,
  type TransformConfig,
} from "./schema.ts";

/** Every config key with type, default and documentation (from the schema's `.describe()` texts). */
export function describeConfigKeys(): KeyDoc[] {
  return describeKeys(configSchema);
}
