/**
 * Project set-up: everything the README's two commands need, idempotent and cached under `.cache/`
 * (never system-wide). Each step is a small module under `scripts/setup/` that checks a stamp first,
 * so a second run costs well under a second.
 *
 *   deno run -A scripts/setup.ts [--for train|test|all] [--quiet] [--gpu] [--only STEP[,STEP...]]
 */
import { parseArgs } from "node:util";
import { type SetupContext, type SetupStep, steps } from "./setup/steps.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    for: { type: "string", default: "all" },
    quiet: { type: "boolean", default: false },
    gpu: { type: "boolean", default: false },
    only: { type: "string" },
  },
});

const purpose = values.for as SetupContext["purpose"];
if (!["train", "test", "all"].includes(purpose)) {
  console.error(`setup: --for must be train, test or all (got '${values.for}')`);
  Deno.exit(2);
}
const ctx: SetupContext = {
  root: new URL("..", import.meta.url).pathname.replace(/\/$/, ""),
  purpose,
  quiet: values.quiet,
  gpu: values.gpu,
  log: (msg: string) => console.error(`[setup] ${msg}`),
};

const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
const unknown = only?.filter((n) => !steps.some((s) => s.name === n)) ?? [];
if (unknown.length) {
  console.error(
    `setup: unknown step(s) ${unknown.join(", ")} (steps: ${steps.map((s) => s.name).join(", ")})`,
  );
  Deno.exit(2);
}
const chosen: SetupStep[] = steps.filter((
  s,
) => (only ? only.includes(s.name) : purpose === "all" || s.purposes.includes(purpose)));
for (const step of chosen) {
  const t0 = performance.now();
  try {
    const did = await step.run(ctx);
    if (did || !ctx.quiet) {
      ctx.log(
        `${step.name}: ${did ? "done" : "up to date"} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (step.optional) {
      ctx.log(`${step.name}: skipped: ${msg}`);
    } else {
      console.error(`[setup] ${step.name} failed: ${msg}`);
      Deno.exit(1);
    }
  }
}
