/**
 * A private headless JupyterLab for the browser check: 127.0.0.1 on a free port, a random token, its own
 * config, data, runtime, settings and workspace folders in a temporary folder (nothing in the user's home),
 * the notebooks copied into its root and signed (trusted) in its own data folder, the notebook windowing
 * off so that every cell renders, and optionally the jupyterlab-plotly renderer disabled.
 */
import { basename, join } from "node:path";
import { jupyterEnv, projectRoot, venvTool } from "./project.ts";

export interface LabServerOptions {
  /** Notebooks to copy into the server's root. */
  notebooks: string[];
  /** Sign them so that JupyterLab trusts them (default true; false shows what untrusted users get). */
  trust?: boolean;
  /** Disable the jupyterlab-plotly extension (figures then render through their own HTML part). */
  withoutPlotlyExtension?: boolean;
  /** Seconds to wait for the server to answer (default 60). */
  startTimeoutS?: number;
}

export interface LabServer {
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** File names of the notebooks in the server's root, in the given order. */
  names: string[];
  /** The server's copy of a notebook. */
  path(name: string): string;
  /** The URL that opens a notebook (fresh workspace, with the token). */
  url(name: string): string;
  /** Seconds the server took to answer. */
  startSeconds: number;
  /** Stops the server (and the kernels it started) and removes its folders. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Reads a child's stream into `sink` (its last 200 lines, kept for error messages). */
function pump(stream: ReadableStream<Uint8Array>, sink: string[]): void {
  (async () => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        sink.push(line);
        if (sink.length > 200) sink.shift();
      }
    }
  })().catch(() => {});
}

/** Starts the server and waits until it answers; throws with its last log lines when it does not. */
export async function startLabServer(o: LabServerOptions): Promise<LabServer> {
  const root = projectRoot();
  const jupyter = venvTool("jupyter", root);
  const tmp = await Deno.makeTempDir({ prefix: "pc-nbcheck-" });
  const dirs = Object.fromEntries(
    ["work", "config", "data", "runtime", "settings", "workspaces"].map((d) => [d, join(tmp, d)]),
  );
  for (const d of Object.values(dirs)) await Deno.mkdir(d, { recursive: true });
  const env = jupyterEnv({
    JUPYTER_CONFIG_DIR: dirs.config,
    JUPYTER_DATA_DIR: dirs.data,
    JUPYTER_RUNTIME_DIR: dirs.runtime,
  }, root);
  const token = crypto.randomUUID().replaceAll("-", "");
  let lab: Deno.ChildProcess | null = null;
  let port = 0;
  const close = async () => {
    if (port) {
      await fetch(`http://127.0.0.1:${port}/api/shutdown?token=${token}`, { method: "POST" })
        .then((r) => r.body?.cancel(), () => {});
    }
    if (lab) {
      const done = await Promise.race([lab.status.then(() => true), sleep(10_000).then(() => false)]);
      if (!done) {
        try {
          lab.kill("SIGKILL");
        } catch { /* gone */ }
        await lab.status;
      }
    }
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  try {
    // the notebooks, signed in the private data folder
    const names: string[] = [];
    for (const nb of o.notebooks) {
      const name = basename(nb);
      await Deno.copyFile(nb, join(dirs.work, name));
      if (o.trust ?? true) {
        const t = await new Deno.Command(jupyter, { args: ["trust", join(dirs.work, name)], env }).output();
        if (!t.success) {
          throw new Error(`jupyter trust ${name} failed: ${new TextDecoder().decode(t.stderr)}`);
        }
      }
      names.push(name);
    }
    // no announcements pop-up; optionally no plotly extension; every cell rendered
    const disabled: Record<string, boolean> = { "@jupyterlab/apputils-extension:announcements": true };
    if (o.withoutPlotlyExtension) {
      // the package, and its MIME renderer plugin (whose id names another package)
      disabled["jupyterlab-plotly"] = true;
      disabled["@jupyterlab/plotly-extension:factory"] = true;
    }
    await Deno.mkdir(join(dirs.config, "labconfig"), { recursive: true });
    await Deno.writeTextFile(
      join(dirs.config, "labconfig", "page_config.json"),
      JSON.stringify({ disabledExtensions: disabled }),
    );
    await Deno.mkdir(join(dirs.settings, "@jupyterlab", "notebook-extension"), { recursive: true });
    await Deno.writeTextFile(
      join(dirs.settings, "@jupyterlab", "notebook-extension", "tracker.jupyterlab-settings"),
      JSON.stringify({ windowingMode: "none" }),
    );
    port = freePort();
    const labLog: string[] = [];
    lab = new Deno.Command(jupyter, {
      args: [
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        `--ServerApp.port=${port}`,
        "--ServerApp.port_retries=0",
        `--IdentityProvider.token=${token}`,
        `--ServerApp.root_dir=${dirs.work}`,
        `--LabApp.user_settings_dir=${dirs.settings}`,
        `--LabApp.workspaces_dir=${dirs.workspaces}`,
        "--LabApp.news_url=",
        ...(Deno.uid() === 0 ? ["--allow-root"] : []),
      ],
      cwd: dirs.work,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    pump(lab.stdout, labLog);
    pump(lab.stderr, labLog);
    const base = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    let labExit: number | null = null;
    lab.status.then((st) => (labExit = st.code));
    for (;;) {
      if (labExit !== null) {
        throw new Error(`JupyterLab exited (code ${labExit}):\n${labLog.slice(-30).join("\n")}`);
      }
      const ok = await fetch(`${base}/api/status?token=${token}`).then((r) => {
        r.body?.cancel();
        return r.ok;
      }, () => false);
      if (ok) break;
      if (performance.now() - t0 > (o.startTimeoutS ?? 60) * 1000) {
        throw new Error(
          `JupyterLab did not answer on ${base} within ${o.startTimeoutS ?? 60} s:\n${
            labLog.slice(-30).join("\n")
          }`,
        );
      }
      await sleep(250);
    }
    return {
      base,
      names,
      path: (name) => join(dirs.work, name),
      url: (name) => `${base}/lab/tree/${encodeURIComponent(name)}?reset&token=${token}`,
      startSeconds: (performance.now() - t0) / 1000,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
