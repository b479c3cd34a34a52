/**
 * Where the notebook tools find the project and its Jupyter: the repository root, the programs of the
 * project's `.venv` (set-up step `python`: JupyterLab, nbclient, plotly), and the environment every Jupyter
 * process gets (the committed kernelspec first on JUPYTER_PATH, this Deno as the kernel's Deno).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (notebooks/tools/ is two folders below it). */
export function projectRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");
}

/** Name of the committed kernelspec (notebooks/kernels/<name>/kernel.json). */
export const KERNEL_NAME = "pixel-contrast-deno";

/** A program of the project's virtual environment; throws with the set-up command when it is missing. */
export function venvTool(name: string, root = projectRoot()): string {
  const path = join(root, ".venv", "bin", name);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: the notebook tools live in the project's .venv; create it with ` +
        "`deno task setup --only python` (installs scripts/requirements.txt: JupyterLab, nbclient, plotly)",
    );
  }
  return path;
}

/**
 * Environment for Jupyter processes: the project's kernelspec first on JUPYTER_PATH, this Deno as the
 * kernel's Deno, plus `extra`.
 */
export function jupyterEnv(extra: Record<string, string> = {}, root = projectRoot()): Record<string, string> {
  const env = Deno.env.toObject();
  const paths = [join(root, "notebooks"), ...(env.JUPYTER_PATH ? [env.JUPYTER_PATH] : [])];
  return { ...env, JUPYTER_PATH: paths.join(":"), PC_DENO: Deno.execPath(), ...extra };
}
