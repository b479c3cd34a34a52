/** Small shared pieces of the CLI entry points: the default config and uniform error reporting. */
import { ConfigError } from "../config/mod.ts";

/** `deno task train` without `--config` trains this (the embedded synthetic dataset, CPU-sized). */
export const DEFAULT_CONFIG = "configs/synthetic/hrnet_w18_small_v1_contrast_synthetic_256x128_1.5k.yml";

/**
 * Runs a CLI main function: config and argument errors print their message and exit 2, other errors
 * print the message (stack with PC_DEBUG=1) and exit 1.
 */
export async function runCli(main: (args: string[]) => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${err.message}`);
    if (Deno.env.get("PC_DEBUG")) console.error(err.stack);
    Deno.exit(e instanceof ConfigError ? 2 : 1);
  }
}
