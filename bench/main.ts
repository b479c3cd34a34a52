/**
 * `deno task bench [name ...] [flags]`: runs one benchmark (`deno task bench train --quick`), or all of them
 * and then writes bench/RESULTS.md (`deno task bench`, optionally with `--quick`).
 *
 * Each benchmark is a module `bench/<name>.ts` exporting `run(args: string[])`, which measures our code beside
 * its baseline in the same run and prints the ratios. `deno task bench precision` (bf16 vs fp32 accuracy of the
 * default config, 2 seeds, ~50 min) and `deno task bench ceiling` (libtensorflow's own graph route beside PyTorch,
 * bench/ceiling.ts) run only when named. In "all" mode each runs in its own Deno process (the
 * native backend must load before anything touches WebGPU, and memory is returned between benchmarks), its
 * output is shown and kept in bench/out/<name>.log, and the first ones provision the Python baselines
 * (`--install`: timm into .cache/bench-torch, paddlepaddle + paddleseg into .cache/paddle). Then
 * bench/report.ts writes bench/RESULTS.md. `deno task bench report` rewrites it from the last results.
 */
import { join } from "node:path";

const ALL = ["train", "eval", "loss", "data", "backends", "gpu"];
// `precision` trains the default config 4 times (~50 min): run on its own, not in "all"
// `ceiling` needs Python TensorFlow (--install: ~0.6 GB once): run on its own too
const available = [...ALL, "precision", "ceiling", "report"];
const [first, ...rest] = Deno.args;
const root = new URL("..", import.meta.url).pathname;

if (first && !first.startsWith("-")) {
  if (!available.includes(first)) {
    console.error(`bench: unknown benchmark '${first}'. Available: ${available.join(", ")}`);
    Deno.exit(2);
  }
  const mod = await import(`./${first}.ts`);
  await mod.run(rest);
} else {
  const quick = Deno.args.includes("--quick");
  const unknown = Deno.args.filter((a) => a !== "--quick");
  if (unknown.length) {
    console.error(`bench: in "all" mode only --quick is accepted (got ${unknown.join(" ")})`);
    Deno.exit(2);
  }
  const argsFor: Record<string, string[]> = {
    train: ["--install", ...(quick ? ["--quick"] : [])],
    eval: ["--install", ...(quick ? ["--quick"] : [])],
    backends: quick ? ["--quick"] : [],
  };
  Deno.mkdirSync(join(root, "bench", "out"), { recursive: true });
  for (const name of ALL) {
    console.log(`\n=== bench ${name} ===`);
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(root, "bench", "main.ts"), name, ...(argsFor[name] ?? [])],
      stdout: "piped",
      stderr: "inherit",
      env: { PC_PADDLE_VENV: join(root, ".cache", "paddle") },
    }).spawn();
    const log = await Deno.open(join(root, "bench", "out", `${name}.log`), {
      write: true,
      create: true,
      truncate: true,
    });
    for await (const chunk of child.stdout) {
      await Deno.stdout.write(chunk);
      await log.write(chunk);
    }
    log.close();
    const st = await child.status;
    const took = ((performance.now() - t0) / 60000).toFixed(1);
    console.log(`=== bench ${name}: ${st.success ? "done" : `FAILED (exit ${st.code})`} in ${took} min ===`);
  }
  const report = await import("./report.ts");
  await report.run([]);
}
