/**
 * Set-up step `python`: a project-local virtual environment `.venv` (python3 -m venv) with the pinned
 * packages of `scripts/requirements.txt` (the official Cityscapes evaluator, notebook tools). Idempotent:
 * a stamp inside `.venv` records the SHA-256 of the requirements file and the interpreter version, so the
 * step re-installs only when the file changes (or the venv is broken) and otherwise costs one process start.
 *
 * The interpreter is `$PC_PYTHON` when set, else `python3` (≥ 3.9). `ensureVenv` is shared with the step
 * `paddle`.
 */
import { join } from "node:path";
import type { SetupContext, SetupStep } from "./steps.ts";

const STAMP = ".pc-setup-stamp.json";

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function output(cmd: string, args: string[]): Promise<{ ok: boolean; text: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, text: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
  } catch (e) {
    return { ok: false, text: (e as Error).message };
  }
}

/** Runs a command, passing progress lines to `log`; throws with the output's tail on failure. */
async function streamed(
  cmd: string,
  args: string[],
  cwd: string,
  log: (line: string) => void,
): Promise<void> {
  const child = new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).spawn();
  const tail: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split(/\r?\n/);
      buf = lines.pop() ?? "";
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        // pip's own progress lines: one per package collected / installed, and the summary
        if (/^(Collecting|Downloading|Installing|Successfully|ERROR|WARNING: Retrying)/.test(line.trim())) {
          log(`  pip: ${line.trim()}`);
        }
      }
    }
    if (buf) tail.push(buf);
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  if (!status.success) {
    throw new Error(`'${cmd} ${args.join(" ")}' failed (exit ${status.code}):\n${tail.join("\n")}`);
  }
}

/** A project-local virtual environment made from a pinned requirements file (see `ensureVenv`). */
export interface VenvSpec {
  /** The set-up step's name, for messages. */
  step: string;
  /** The venv and the requirements file, relative to the project root. */
  venv: string;
  requirements: string;
  /** Python 3.x minor versions accepted, inclusive. */
  minor: [number, number];
  /** Says why a Python outside `minor` will not do (e.g. which versions the wheels exist for). */
  versionHint: string;
  /** How big the first install is, for the progress line. */
  firstTime: string;
  /** After pip: extra files and an import probe; throws when the venv is unusable. Its result is logged. */
  after?: (py: string) => Promise<string | void>;
}

/**
 * Makes sure `spec.venv` holds the packages of `spec.requirements`; returns true when it installed something.
 * Idempotent: a stamp inside the venv records the SHA-256 of the requirements file and the interpreter
 * version, so it re-installs only when the file changes (or the venv is broken) and otherwise costs one
 * process start. The interpreter is `$PC_PYTHON` when set, else `python3`.
 */
export async function ensureVenv(root: string, spec: VenvSpec, log: (msg: string) => void): Promise<boolean> {
  const venv = join(root, spec.venv);
  const reqPath = join(root, spec.requirements);
  const py = join(venv, "bin", "python");
  let reqText: string;
  try {
    reqText = await Deno.readTextFile(reqPath);
  } catch (e) {
    throw new Error(`cannot read ${reqPath}: ${(e as Error).message}`);
  }
  const venvPy = await output(py, ["--version"]);
  const want = { requirements: await sha256(reqText), python: venvPy.ok ? venvPy.text : "" };
  if (venvPy.ok) {
    try {
      const stamp = JSON.parse(await Deno.readTextFile(join(venv, STAMP)));
      if (stamp.requirements === want.requirements && stamp.python === want.python) return false;
    } catch { /* no or unreadable stamp: install */ }
  }
  if (!venvPy.ok) {
    const base = Deno.env.get("PC_PYTHON") ?? "python3";
    const v = await output(base, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
    const [lo, hi] = spec.minor;
    if (!v.ok) {
      throw new Error(`no Python interpreter '${base}' (install Python 3.${lo}-3.${hi} or set PC_PYTHON)`);
    }
    const version = v.text.trim();
    const [maj, min] = version.split(".").map(Number);
    if (maj !== 3 || min < lo || min > hi) {
      throw new Error(`'${base}' is Python ${version}; ${spec.versionHint}`);
    }
    log(`${spec.step}: creating ${spec.venv} with ${base} (Python ${version})`);
    await Deno.remove(venv, { recursive: true }).catch(() => {});
    await streamed(base, ["-m", "venv", venv], root, log);
    want.python = (await output(py, ["--version"])).text;
  }
  log(`${spec.step}: installing ${spec.requirements} into ${spec.venv} (first time: ${spec.firstTime})`);
  await streamed(
    py,
    ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", reqPath],
    root,
    log,
  );
  const said = await spec.after?.(py);
  if (said) log(`${spec.step}: ${said}`);
  const tmp = join(venv, `${STAMP}.${Deno.pid}.tmp`);
  await Deno.writeTextFile(tmp, JSON.stringify(want));
  await Deno.rename(tmp, join(venv, STAMP));
  return true;
}

export const pythonStep: SetupStep = {
  name: "python",
  purposes: ["test"],
  run: (ctx: SetupContext) =>
    ensureVenv(ctx.root, {
      step: "python",
      venv: ".venv",
      requirements: join("scripts", "requirements.txt"),
      minor: [9, 99],
      versionHint: "need ≥ 3.9",
      firstTime: "about a minute",
    }, ctx.log),
};
