/**
 * `deno task lab [jupyter lab options]`: JupyterLab from the project's `.venv` (set-up step `python`) with
 * the project's Deno kernel, on localhost, opened at notebooks/.
 *
 * The kernelspec is the committed notebooks/kernels/pixel-contrast-deno (found through JUPYTER_PATH, so
 * nothing is installed into the user's home); it starts this same Deno (`PC_DENO`) in the project root
 * with NO_COLOR=1. Options after the task name go to `jupyter lab` (e.g. `--port 8890 --no-browser`).
 * Exit codes as every CLI (lib/cli/common.ts); JupyterLab's own code when it stops.
 */
import { runCli } from "../../lib/cli/common.ts";
import { jupyterEnv, KERNEL_NAME, projectRoot, venvTool } from "./project.ts";

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(
      "usage: deno task lab [jupyter lab options]\n\n" +
        "Starts JupyterLab (project .venv) on 127.0.0.1 with the Deno kernel 'Deno 2.9.6 (pixel-contrast)',\n" +
        "opened at notebooks/. Options are passed to `jupyter lab`, e.g. --port 8890 --no-browser.",
    );
    return 0;
  }
  const root = projectRoot();
  const jupyter = venvTool("jupyter", root);
  const args = [
    "lab",
    "--ServerApp.ip=127.0.0.1",
    `--ServerApp.root_dir=${root}`,
    "--LabApp.default_url=/lab/tree/notebooks",
    // new notebooks get the Deno kernel
    `--MappingKernelManager.default_kernel_name=${KERNEL_NAME}`,
    // JupyterLab refuses to run as root without it (containers)
    ...(Deno.uid() === 0 ? ["--allow-root"] : []),
    ...argv,
  ];
  console.error(`starting JupyterLab with the project kernel '${KERNEL_NAME}' (Ctrl-C twice to stop)`);
  const child = new Deno.Command(jupyter, { args, cwd: root, env: jupyterEnv({}, root) }).spawn();
  // Ctrl-C reaches JupyterLab directly (same terminal): it asks for confirmation and shuts its kernels
  // down. Here it must not end this process before the server has stopped.
  const ignore = () => {};
  Deno.addSignalListener("SIGINT", ignore);
  const forward = () => child.kill("SIGTERM");
  Deno.addSignalListener("SIGTERM", forward);
  try {
    const status = await child.status;
    return status.code;
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
    Deno.removeSignalListener("SIGTERM", forward);
  }
}

if (import.meta.main) await runCli(main);
