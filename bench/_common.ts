/**
 * Shared pieces of the benchmarks that compare against Python baselines (bench/train.ts, eval.ts, gpu.ts):
 * statistics, machine facts, peak-RSS bookkeeping, provisioning of the PyTorch (+timm) and PaddleSeg
 * environments, and a line-JSON child process for the baseline servers (bench/torch_train.py,
 * bench/paddle_train.py), so their steps can be interleaved with ours repeat by repeat.
 *
 * Environments (project-local, never system-wide):
 *   .cache/bench-torch-2.15.0  venv with torch==2.15.0 + timm==1.0.31 from PyPI: what a user installs today
 *                        (`pip install torch timm`). PyPI has no CPU-only torch for Linux x86_64: its wheel is the
 *                        CUDA 13 build, whose libraries (libtorch.so -> libtorch_cuda.so, and libtorch_cpu.so
 *                        itself) link libcudart, libcupti, cuBLAS, cuDNN, NCCL ... so `import torch` fails without
 *                        the nvidia-* / cuda-toolkit wheels it requires (tried: `pip install --no-deps torch`
 *                        stops at "libcublasLt.so.*[0-9] not found"). The install is therefore the plain one:
 *                        about 3.4 GB downloaded, 5.5 GB on disk, once. The CUDA libraries are loaded and unused.
 *   .cache/paddle        paddlepaddle 2.6.2 + paddleseg 2.8.0 (CPU wheels from PyPI, the versions the loss
 *                        fixtures were made with): the set-up's `paddle` step (scripts/setup/paddle.ts), shared
 *                        with the PaddleSeg tests, so there is one provisioning path.
 * `bench backends` (convolution micro-benchmark) takes the first Python that imports torch: $PC_TORCH_PYTHON,
 * the venv above, .venv, /usr/bin/python3, python3.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensurePaddleEnv as provisionPaddle, PADDLE_VENV, paddlePython } from "../scripts/setup/paddle.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const OUT_DIR = join(ROOT, "bench", "out");

/** The PyTorch baseline: the newest torch and timm on PyPI when this was written (2026-12). */
export const TORCH_VERSION = "2.15.0";
export const TIMM_VERSION = "1.0.31";
export const TORCH_PINS = [`torch==${TORCH_VERSION}`, `timm==${TIMM_VERSION}`];
export const TORCH_VENV = join(ROOT, ".cache", `bench-torch-${TORCH_VERSION}`);
/** The PaddleSeg venv (absolute), as the set-up step `paddle` makes it. */
export const PADDLE_VENV_DIR = join(ROOT, PADDLE_VENV);

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: med, min: s[0], max: s[s.length - 1], n: s.length };
}

export const log = (msg: string) => console.log(msg);

/** Seconds as text with 3 significant digits. */
export function fmtS(s: number): string {
  return Number.isFinite(s) ? s.toPrecision(3) : "-";
}

export function gb(bytes: number | null | undefined): string {
  return bytes == null || !Number.isFinite(bytes) ? "-" : `${(bytes / 2 ** 30).toFixed(2)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Machine and process facts

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  os: string;
  loadAvg: number[];
  deno: string;
}

export function machineInfo(): MachineInfo {
  let cpu = "unknown CPU";
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch { /* not Linux */ }
  let os = `${Deno.build.os} ${Deno.build.arch}`;
  try {
    const m = readFileSync("/etc/os-release", "utf8").match(/^PRETTY_NAME="?([^"\n]+)"?$/m);
    if (m) os = `${m[1]} (${Deno.build.arch})`;
  } catch { /* not Linux */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    os,
    loadAvg: Deno.loadavg(),
    deno: Deno.version.deno,
  };
}

/** Resets the kernel's peak-RSS mark of this process (Linux >= 4.0); false where unsupported. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** A `Key:   N kB` field of a /proc file, in bytes; null where /proc or the field is missing. */
function procKiB(file: string, key: string): number | null {
  try {
    const m = readFileSync(file, "utf8").match(new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Peak RSS (VmHWM) of this process in bytes since start or the last `resetPeakRss`. */
export function peakRss(): number | null {
  return procKiB("/proc/self/status", "VmHWM");
}

/** Available memory (MemAvailable) in bytes, or null. */
export function availableMemory(): number | null {
  return procKiB("/proc/meminfo", "MemAvailable");
}

// ---------------------------------------------------------------------------------------------------------
// Python environments

async function runOk(cmd: string, args: string[], env?: Record<string, string>): Promise<boolean> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null", env }).output();
    return r.success;
  } catch {
    return false;
  }
}

async function runStreaming(cmd: string, args: string[], what: string): Promise<void> {
  log(`[bench] ${what}: ${cmd} ${args.join(" ")}`);
  const r = await new Deno.Command(cmd, {
    args,
    stdout: "inherit",
    stderr: "inherit",
    env: { DEBIAN_FRONTEND: "noninteractive", PIP_PROGRESS_BAR: "on" },
  }).output();
  if (!r.success) throw new Error(`${what} failed (exit ${r.code})`);
}

/**
 * A Python that imports torch: $PC_TORCH_PYTHON, the bench's PyPI venv, .venv, /usr/bin/python3, python3 — the first that
 * works, and what was tried before it (for the "not measured" line).
 */
export async function findTorchPython(): Promise<{ python?: string; tried: string[] }> {
  const candidates = [
    Deno.env.get("PC_TORCH_PYTHON"),
    join(TORCH_VENV, "bin", "python"),
    join(ROOT, ".venv", "bin", "python"),
    "/usr/bin/python3",
    "python3",
  ]
    .filter((p): p is string => !!p);
  const tried: string[] = [];
  for (const python of candidates) {
    try {
      const r = await new Deno.Command(python, {
        args: ["-c", "import torch"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (r.success) return { python, tried };
      tried.push(`${python} (no torch)`);
    } catch {
      tried.push(`${python} (not found)`);
    }
  }
  return { tried };
}

export interface PyEnv {
  python?: string;
  /** Why it is missing, or what it is. */
  note: string;
  versions?: Record<string, string>;
}

/** A bench-provisioned venv of pinned PyPI packages (`.cache/<dir>`), and the messages that name it. */
interface PinnedVenv {
  venv: string;
  pins: string[];
  /** `python -c` code that exits 0 when the pinned versions import. */
  probe: string;
  /** What it holds, e.g. "PyTorch 2.15.0 + timm 1.0.31". */
  what: string;
  /** Why it is missing when `install` is off, and what installing it costs. */
  missing: string;
  /** The pip line's description; extra pip options. */
  installing: string;
  pipOptions?: string[];
  /** What failed when the probe fails after the install. */
  broken: string;
}

/** Returns the venv's Python when its probe passes; with `install`, creates it / pip-installs the pins first. */
async function ensurePinnedVenv(env: PinnedVenv, install: boolean): Promise<PyEnv> {
  const py = join(env.venv, "bin", "python");
  const probe = ["-c", env.probe];
  if (existsSync(py) && await runOk(py, probe)) return { python: py, note: "" };
  if (!install) return { note: env.missing };
  const dir = env.venv.slice(ROOT.length + 1);
  try {
    if (!existsSync(py)) await runStreaming("python3", ["-m", "venv", env.venv], `creating ${dir}`);
    await runStreaming(py, ["-m", "pip", "install", ...(env.pipOptions ?? []), ...env.pins], env.installing);
  } catch (e) {
    return { note: `${env.what} could not be installed: ${(e as Error).message}` };
  }
  return await runOk(py, probe) ? { python: py, note: "" } : { note: env.broken };
}

/**
 * torch 2.15.0 + timm 1.0.31 from PyPI in .cache/bench-torch-2.15.0 for the CPU baselines; with `install` it is
 * created when missing or on other versions (`pip install torch==2.15.0 timm==1.0.31`, ~3.4 GB once: see the
 * module comment for why the CUDA wheels come along).
 */
export function ensureTorchEnv(install: boolean): Promise<PyEnv> {
  const what = `PyTorch ${TORCH_VERSION} + timm ${TIMM_VERSION}`;
  return ensurePinnedVenv({
    venv: TORCH_VENV,
    pins: TORCH_PINS,
    probe: `import torch, timm, sys; sys.exit(0 if (torch.__version__.split("+")[0], timm.__version__) == ` +
      `("${TORCH_VERSION}", "${TIMM_VERSION}") else 1)`,
    what,
    missing:
      `${what} unavailable (.cache/bench-torch-${TORCH_VERSION} missing or on other versions; run with ` +
      "--install: pip from PyPI, ~3.4 GB once with the CUDA runtime wheels PyPI's torch requires)",
    installing: `installing ${
      TORCH_PINS.join(" ")
    } into .cache/bench-torch-${TORCH_VERSION} (about 3.4 GB once)`,
    pipOptions: ["--progress-bar", "on"],
    broken: `${what} installed but \`import torch, timm\` fails or reports other versions`,
  }, install);
}

/** TensorFlow for `bench ceiling`: the release whose libtensorflow the native backend loads (PyPI CPU wheel). */
export const TF_PY_PINS = ["tensorflow-cpu==2.21.0"];
export const TF_VENV = join(ROOT, ".cache", "bench-tf-2.21.0");

/** tensorflow-cpu 2.21.0 in .cache/bench-tf-2.21.0 (with `install`: created when missing, ~0.6 GB once). */
export function ensureTfEnv(install: boolean): Promise<PyEnv> {
  return ensurePinnedVenv({
    venv: TF_VENV,
    pins: TF_PY_PINS,
    probe: `import tensorflow as tf, sys; sys.exit(0 if tf.__version__ == "2.21.0" else 1)`,
    what: "TensorFlow",
    missing: "TensorFlow 2.21.0 (Python) unavailable (.cache/bench-tf-2.21.0 missing; run with --install)",
    installing: `installing ${TF_PY_PINS.join(" ")}`,
    broken: "tensorflow-cpu installed but `import tensorflow` fails or reports another version",
  }, install);
}

/**
 * PaddlePaddle (CPU) + PaddleSeg in .cache/paddle (scripts/setup/paddle.ts; `deno task test` installs it too).
 * With `install`, a missing or outdated environment is installed (about 1.3 GB).
 */
export async function ensurePaddleEnv(install: boolean): Promise<PyEnv> {
  const py = paddlePython(ROOT);
  // cv2 first: importing paddle before cv2 segfaults in zlib (inflateReset2) with these wheels
  const probe = ["-c", "import cv2, paddle, paddleseg"];
  if (!install) {
    return existsSync(py) && await runOk(py, probe)
      ? { python: py, note: "" }
      : { note: "PaddleSeg unavailable (.cache/paddle missing; run with --install or `deno task setup`)" };
  }
  try {
    await provisionPaddle(ROOT, (msg) => log(`[bench] ${msg}`));
  } catch (e) {
    return { note: `PaddleSeg could not be installed: ${(e as Error).message}` };
  }
  return await runOk(py, probe)
    ? { python: py, note: "" }
    : { note: "paddlepaddle installed but `import cv2, paddle, paddleseg` fails in .cache/paddle" };
}

// ---------------------------------------------------------------------------------------------------------
// Line-JSON child processes

/** Environment for the baselines: both cores, threads that sleep instead of spinning when they wait. */
export function baselineEnv(threads: number): Record<string, string> {
  return {
    OMP_NUM_THREADS: String(threads),
    MKL_NUM_THREADS: String(threads),
    // libgomp's default busy-waiting made PyTorch 2 threads 3.5x slower on a shared 2-core machine
    OMP_WAIT_POLICY: "PASSIVE",
    KMP_BLOCKTIME: "0",
    PYTHONUNBUFFERED: "1",
  };
}

export class LineServer {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #reader: ReadableStreamDefaultReader<string>;
  #buf = "";
  #stderr: string[] = [];

  constructor(python: string, script: string, env: Record<string, string>) {
    this.#child = new Deno.Command(python, {
      args: [join(ROOT, "bench", script)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env,
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const errStream = this.#child.stderr;
    (async () => {
      const r = errStream.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        this.#stderr.push(value);
        if (this.#stderr.length > 200) this.#stderr.shift();
      }
    })();
  }

  async request(obj: unknown): Promise<Record<string, unknown>> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(obj) + "\n"));
    while (!this.#buf.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) {
        const tail = this.#stderr.join("").trim().split("\n").slice(-3).join(" | ");
        throw new Error(`baseline process exited${tail ? `: ${tail}` : ""}`);
      }
      this.#buf += value;
    }
    const i = this.#buf.indexOf("\n");
    const line = this.#buf.slice(0, i);
    this.#buf = this.#buf.slice(i + 1);
    const r = JSON.parse(line) as Record<string, unknown>;
    if (r.error) throw new Error(String(r.error));
    return r;
  }

  /** Sends quit, returns the final reply (peak memory), and waits for the process. */
  async close(): Promise<Record<string, unknown> | null> {
    let last: Record<string, unknown> | null = null;
    try {
      last = await this.request({ quit: 1 });
    } catch { /* already gone */ }
    try {
      await this.#writer.close();
    } catch { /* closed */ }
    await this.#child.status;
    return last;
  }

  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

/** Writes a benchmark's structured result for bench/report.ts. */
export function writeResult(name: string, data: unknown): string {
  const p = join(OUT_DIR, `${name}.json`);
  Deno.mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(p, JSON.stringify(data, null, 1));
  return p;
}
