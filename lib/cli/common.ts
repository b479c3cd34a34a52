/**
 * Small shared pieces of the CLI entry points: the default config and uniform exit codes.
 *
 * Every entry point (lib/cli/*.ts, and the notebook tools' `deno task lab` / `deno task nb:check`) runs its
 * `main(args)` through {@link runCli}, so all of them exit alike:
 *
 *   0  success (also `--help`);
 *   1  the command ran and failed: an error while working (the message is printed as `error: ...`, the stack
 *      with PC_DEBUG=1), or a check that found problems (`check-data` on bad labels, `nb:check` when a plot
 *      did not render, `info` when no backend loads);
 *   2  the command line or the config is wrong: a config error (`ConfigError`, naming the file and key), an
 *      unknown or malformed flag, or a missing argument (`UsageError`). Nothing was run.
 *
 * A `main` returns its code (0, 1 or 2) or throws; it never calls `Deno.exit` itself.
 */
import { ConfigError } from "../config/mod.ts";

/** `deno task train` without `--config` trains this (the embedded synthetic dataset, CPU-sized). */
export const DEFAULT_CONFIG = "configs/synthetic/hrnet_w18_small_v1_contrast_synthetic_256x128_1.5k.yml";

/** A wrong or missing command-line argument: {@link runCli} prints the message and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The exit code for an error thrown by a CLI main (see the module comment). */
export function exitCodeFor(e: unknown): 1 | 2 {
  if (e instanceof ConfigError || e instanceof UsageError) return 2;
  // node:util parseArgs: unknown option, missing value, unexpected positional
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) return 2;
  return 1;
}

/**
 * Runs a CLI main function and exits with its code; a thrown error prints its message (stack with
 * PC_DEBUG=1) and exits with {@link exitCodeFor}.
 */
export async function runCli(main: (args: string[]) => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${err.message}`);
    if (Deno.env.get("PC_DEBUG")) console.error(err.stack);
    Deno.exit(exitCodeFor(e));
  }
}
