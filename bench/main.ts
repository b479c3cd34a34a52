/**
 * `deno task bench [name ...]`: runs the named benchmarks (all when none is named). Each benchmark is a
 * module `bench/<name>.ts` exporting `run(args: string[]): Promise<void>`, which measures our code beside
 * its baseline in the same run and prints the ratios.
 */
const available = ["backends", "loss", "data", "train", "eval", "gpu"];
const [first, ...rest] = Deno.args;
const names = first && !first.startsWith("-") ? [first] : available;
const args = first && !first.startsWith("-") ? rest : Deno.args;
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`bench: unknown benchmark '${name}'. Available: ${available.join(", ")}`);
    Deno.exit(2);
  }
  const mod = await import(`./${name}.ts`).catch((e) => {
    if (names.length > 1) return null; // not written yet: skip in "all" mode
    throw e;
  });
  if (!mod) {
    console.error(`bench: '${name}' is not available yet, skipped`);
    continue;
  }
  await mod.run(args);
}
