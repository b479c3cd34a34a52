/** Temporary folders for the data tests, removed when the test module's isolate unloads. */
const made: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const d of made) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* already gone */ }
  }
});

export async function tmpDir(prefix: string): Promise<string> {
  const d = await Deno.makeTempDir({ prefix });
  made.push(d);
  return d;
}
