/**
 * `deno task bench backends [--reps N] [--backends a,b] [--no-torch] [--install-torch] [--quick] [--step-budget S]`
 *
 * Convolution forward + backward (y = conv2d(x, w); dx and dW from dy) throughput on HRNet-W48-like shapes, for
 * every available TensorFlow.js backend and for PyTorch CPU on the same shapes in the same run. Steps are
 * interleaved repeat by repeat (PyTorch 1 thread, PyTorch all cores, then each backend), so load from other
 * processes hits every contender alike. Reports median and spread (min-max) per contender, GFLOP/s and the ratio
 * to PyTorch at the same thread count and at all cores. Results also go to bench/out/backends-<time>.json.
 *
 * FLOPs: forward 2·N·Ho·Wo·Ci·Co·KH·KW; forward + backward = 3x that (dx and dW cost one forward each).
 */
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tf } from "../lib/backend/tf.ts";
import { type BackendName, initBackend, probeBackend } from "../lib/backend/mod.ts";
import { ensureTorchEnv, findTorchPython, ROOT, TORCH_VERSION } from "./_common.ts";

interface Shape {
  name: string;
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  /** symmetric zero padding, as PyTorch/PaddleSeg's `padding=` */
  pad: number;
}

/** HRNet-W48 at a 512x1024 crop: branch 1 is 128x256x48, branch 4 is 16x32x384. */
const SHAPES: Shape[] = [
  {
    name: "3x3 s1 48->48 @128x256 (branch-1 block)",
    n: 1,
    h: 128,
    w: 256,
    cin: 48,
    cout: 48,
    k: 3,
    stride: 1,
    pad: 1,
  },
  {
    name: "3x3 s2 48->96 @128x256 (downsample)",
    n: 1,
    h: 128,
    w: 256,
    cin: 48,
    cout: 96,
    k: 3,
    stride: 2,
    pad: 1,
  },
  { name: "1x1 s1 96->48 @64x128 (fuse)", n: 1, h: 64, w: 128, cin: 96, cout: 48, k: 1, stride: 1, pad: 0 },
  {
    name: "3x3 s1 384->384 @16x32 (branch-4 block)",
    n: 1,
    h: 16,
    w: 32,
    cin: 384,
    cout: 384,
    k: 3,
    stride: 1,
    pad: 1,
  },
];

function outSize(s: Shape): [number, number] {
  return [
    Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1,
    Math.floor((s.w + 2 * s.pad - s.k) / s.stride) + 1,
  ];
}

function flops(s: Shape): number {
  const [ho, wo] = outSize(s);
  return 3 * 2 * s.n * ho * wo * s.cin * s.cout * s.k * s.k;
}

/** Spatially scaled-down copy (for the pure-JS cpu backend, which would take minutes per step). */
function shrink(s: Shape, f: number): Shape {
  return { ...s, h: Math.max(s.k, Math.round(s.h / f)), w: Math.max(s.k, Math.round(s.w / f)) };
}

// ----------------------------------------------------------------------------------------------------------
// PyTorch side

interface TorchServer {
  version: string;
  maxThreads: number;
  step(shape: number, threads: number): Promise<number>;
  close(): Promise<void>;
}

async function startTorch(python: string, shapes: Shape[]): Promise<TorchServer> {
  const child = new Deno.Command(python, {
    args: [join(ROOT, "bench", "torch_conv.py")],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const readLine = async (): Promise<Record<string, unknown>> => {
    while (!buf.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("PyTorch helper exited");
      buf += value;
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return JSON.parse(line);
  };
  const send = (o: unknown) => writer.write(new TextEncoder().encode(JSON.stringify(o) + "\n"));
  await send({ shapes });
  const hello = await readLine();
  if (hello.error) throw new Error(String(hello.error));
  return {
    version: String(hello.torch),
    maxThreads: Number(hello.max_threads),
    async step(shape, threads) {
      await send({ shape, threads });
      return Number((await readLine()).seconds);
    },
    async close() {
      await send({ quit: true });
      await writer.close();
      await child.status;
    },
  };
}

// ----------------------------------------------------------------------------------------------------------
// TensorFlow.js side

interface TfCase {
  shape: Shape;
  x: tf.Tensor4D;
  dy: tf.Tensor4D;
  wValues: Float32Array;
  grad: (xs: tf.Tensor[], dy: tf.Tensor) => tf.Tensor[];
}

function makeCase(s: Shape): TfCase {
  const [ho, wo] = outSize(s);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [s.pad, s.pad],
    [s.pad, s.pad],
    [0, 0],
  ];
  return {
    shape: s,
    x: tf.randomNormal([s.n, s.h, s.w, s.cin], 0, 1, "float32", 1),
    dy: tf.randomNormal([s.n, ho, wo, s.cout], 0, 1, "float32", 2),
    wValues: tf.tidy(() =>
      tf.randomNormal([s.k, s.k, s.cin, s.cout], 0, 0.05, "float32", 3).dataSync() as Float32Array
    ),
    grad: tf.grads((x: tf.Tensor, w: tf.Tensor) =>
      tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, s.stride, pad)
    ),
  };
}

/** One forward + backward step with freshly uploaded weights (as after an optimizer update); waits for it. */
async function tfStep(c: TfCase): Promise<number> {
  const t0 = performance.now();
  const sync = tf.tidy(() => {
    const w = tf.tensor4d(c.wValues, [c.shape.k, c.shape.k, c.shape.cin, c.shape.cout]);
    const [dx, dw] = c.grad([c.x, w], c.dy);
    return tf.add(tf.sum(dx), tf.sum(dw)); // a scalar that depends on both results: reading it waits for them
  });
  await sync.data();
  sync.dispose();
  return (performance.now() - t0) / 1000;
}

// ----------------------------------------------------------------------------------------------------------

interface Contender {
  label: string;
  threads: number;
  kind: "torch" | "tfjs";
  backend?: BackendName;
  /** per shape: the shape actually measured (may be shrunk) */
  shapes: Shape[];
  cases?: TfCase[];
  times: number[][];
}

/** Repeats for contenders that had to be measured on a smaller input (the pure-JS cpu backend, software GPUs). */
const SLOW_REPS = 3;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: med, min: s[0], max: s[s.length - 1] };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      reps: { type: "string", default: "7" },
      backends: { type: "string" },
      "no-torch": { type: "boolean", default: false },
      "install-torch": { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      "step-budget": { type: "string", default: "5" },
    },
  });
  const reps = Math.max(1, Number(values.reps));
  const shapes = values.quick ? SHAPES.slice(0, 2) : SHAPES;
  const cores = navigator.hardwareConcurrency;
  console.log(
    `bench backends: conv2d forward+backward, ${reps} repeats, ${cores} CPU cores, Deno ${Deno.version.deno}`,
  );

  // --- PyTorch
  let torch: TorchServer | undefined;
  let torchNote = "";
  if (!values["no-torch"]) {
    let found = await findTorchPython();
    if (!found.python && values["install-torch"]) {
      // the same PyPI torch + timm as bench train (project-local venv)
      const env = await ensureTorchEnv(true);
      if (env.note) console.log(`[bench] ${env.note}`);
      found = await findTorchPython();
    }
    if (found.python) {
      try {
        torch = await startTorch(found.python, shapes);
        torchNote = `PyTorch ${torch.version} (${found.python})`;
      } catch (e) {
        torchNote = `PyTorch baseline unavailable: ${(e as Error).message}`;
      }
    } else {
      torchNote = `PyTorch baseline unavailable (tried ${found.tried.join(", ")}). ` +
        `Run with --install-torch (PyTorch ${TORCH_VERSION} from PyPI into .cache/bench-torch-${TORCH_VERSION}), ` +
        "or set PC_TORCH_PYTHON to a Python that imports torch";
    }
  } else torchNote = "PyTorch baseline skipped (--no-torch)";
  console.log(torchNote);

  // --- TF.js backends: tensorflow must load before anything touches WebGPU, so webgpu goes last
  const wanted = (values.backends?.split(",") ?? ["tensorflow", "wasm", "cpu", "webgpu"]) as BackendName[];
  const order = (["tensorflow", "wasm", "cpu", "webgpu"] as BackendName[]).filter((b) => wanted.includes(b));
  const contenders: Contender[] = [];
  const allCores = torch ? Math.min(torch.maxThreads, cores) : cores;
  if (torch) {
    contenders.push({ label: "pytorch", threads: 1, kind: "torch", shapes, times: shapes.map(() => []) });
    if (allCores > 1) {
      contenders.push({
        label: "pytorch",
        threads: allCores,
        kind: "torch",
        shapes,
        times: shapes.map(() => []),
      });
    }
  }
  const skipped: string[] = [];
  for (const b of order) {
    const p = await probeBackend(b);
    if (!p.available) {
      skipped.push(`${b}: ${p.detail}`);
      continue;
    }
    try {
      const info = await initBackend(b, { quiet: true });
      const threads = b === "tensorflow" ? cores : b === "webgpu" ? 0 : 1;
      contenders.push({
        label: b,
        threads,
        kind: "tfjs",
        backend: b,
        shapes: [],
        times: shapes.map(() => []),
      });
      console.log(`  ${b}: ${info.detail}`);
    } catch (e) {
      skipped.push(`${b}: ${(e as Error).message}`);
    }
  }
  for (const s of skipped) console.log(`  not measured: ${s}`);

  // size each tfjs contender's shapes: a probe at 1/8 of the height and width bounds the full-size step time
  // (from above: fixed per-step costs are scaled up too); if that exceeds the budget, measure a smaller input
  const budget = Number(values["step-budget"]);
  for (const c of contenders.filter((c) => c.kind === "tfjs")) {
    await tf.setBackend(c.backend!);
    c.cases = [];
    // only the pure-JS cpu backend and WebGPU (possibly a software adapter) can be too slow for full size
    const mayShrink = c.backend === "cpu" || c.backend === "webgpu";
    for (const s of shapes) {
      let est = 0;
      if (mayShrink) {
        const probe = makeCase(shrink(s, 8));
        await tfStep(probe); // warm-up (kernel compilation on webgpu)
        est = (await tfStep(probe)) * (s.h * s.w) / (probe.shape.h * probe.shape.w);
        tf.dispose([probe.x, probe.dy]);
      }
      const use = est <= budget
        ? s
        : shrink(s, Math.min(16, Math.max(2, Math.ceil(Math.sqrt(est / budget)))));
      const tc = makeCase(use);
      await tfStep(tc); // warm-up at the measured size
      c.cases.push(tc);
      c.shapes.push(use);
    }
  }

  // interleaved repeats
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < shapes.length; i++) {
      for (const c of contenders) {
        if (c.kind === "torch") c.times[i].push(await torch!.step(i, c.threads));
        else if (c.shapes[i] !== shapes[i] && r >= SLOW_REPS) continue; // shrunk = slow: fewer repeats
        else {
          await tf.setBackend(c.backend!);
          c.times[i].push(await tfStep(c.cases![i]));
        }
      }
    }
    Deno.stdout.writeSync(new TextEncoder().encode(`\r  repeat ${r + 1}/${reps}`));
  }
  console.log("");
  await torch?.close();

  // --- report
  const results: Record<string, unknown>[] = [];
  const gf = (s: Shape, t: number) => flops(s) / t / 1e9;
  for (let i = 0; i < shapes.length; i++) {
    const s = shapes[i];
    console.log(`\n${s.name}: N=${s.n}, fwd+bwd ${(flops(s) / 1e9).toFixed(2)} GFLOP`);
    console.log(
      `  ${"contender".padEnd(22)}${"threads".padStart(8)}${"median ms".padStart(11)}${
        "min-max ms".padStart(17)
      }` +
        `${"GFLOP/s".padStart(9)}${"x torch(same thr)".padStart(19)}${"x torch(all)".padStart(14)}`,
    );
    const torchGf = (threads: number) => {
      const t = contenders.find((c) => c.kind === "torch" && c.threads === threads);
      return t ? gf(s, stats(t.times[i]).median) : undefined;
    };
    for (const c of contenders) {
      const st = stats(c.times[i]);
      const m = c.shapes[i] ?? s;
      const g = gf(m, st.median);
      const same = c.threads > 0 ? torchGf(Math.min(c.threads, allCores)) : undefined;
      const all = torchGf(allCores) ?? torchGf(1);
      const shrunk = m.h !== s.h ? ` @${m.h}x${m.w}*` : "";
      const thr = c.threads === 0
        ? "gpu"
        : c.label === "tensorflow"
        ? `all(${c.threads})`
        : String(c.threads);
      console.log(
        `  ${(c.label + shrunk).padEnd(22)}${thr.padStart(8)}${(st.median * 1000).toFixed(1).padStart(11)}` +
          `${`${(st.min * 1000).toFixed(1)}-${(st.max * 1000).toFixed(1)}`.padStart(17)}${
            g.toFixed(2).padStart(9)
          }` +
          `${(same ? (g / same).toFixed(3) : "-").padStart(19)}${
            (all ? (g / all).toFixed(3) : "-").padStart(14)
          }`,
      );
      results.push({
        shape: s.name,
        measuredAt: `${m.h}x${m.w}`,
        contender: c.label,
        threads: c.threads,
        seconds: c.times[i],
        medianGflops: g,
        ratioTorchSameThreads: same ? g / same : null,
        ratioTorchAllCores: all ? g / all : null,
      });
    }
  }
  console.log(
    `\nthreads: pytorch as set by torch.set_num_threads; wasm runs XNNPACK single-threaded (tfjs-backend-wasm has` +
      ` no threads under Deno); tensorflow uses libtensorflow's default intra-op pool (all ${cores} cores).` +
      `\n'*' = measured on a spatially smaller input because one full-size step would exceed ${budget} s;` +
      ` GFLOP/s are for the size measured. ${torchNote}`,
  );
  const out = join(ROOT, "bench", "out", `backends-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ cores, reps, torch: torchNote, results }, null, 1));
  console.log(`results: ${out}`);
}

if (import.meta.main) await run(Deno.args);
