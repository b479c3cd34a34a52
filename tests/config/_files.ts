/** Writes small YAML trees into a fresh temporary folder for config tests. */
import { dirname, join } from "node:path";

/** Writes `{relativePath: text}` and returns the folder. */
export async function writeFiles(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "config_test_" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, name)), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

/** A minimal valid config (CE-only model, no dataset), as YAML lines. */
export const MINIMAL = `
iters: 10
model:
  type: HRNetW48
  backbone:
    type: HRNet_W18
  num_classes: 3
loss:
  types:
    - type: CrossEntropyLoss
  coef: [1]
`;
