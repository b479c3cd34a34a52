/**
 * `deno task bench gpu [--budget S] [--reps N] [--force] [--size WxH] [--configs w18s1-b8,w48-b1,...]`
 *
 * A self-contained GPU check. On a machine with an NVIDIA GPU:
 *   1. reports what the driver says (nvidia-smi) and whether Deno's WebGPU (wgpu, over Vulkan) sees that GPU
 *      or only a software adapter (llvmpipe/lavapipe/SwiftShader), with the Vulkan loader/ICD facts when not;
 *   2. times the FULL contrast train step (lib/train/step.ts: forward, CE + pixel contrast with the anchor
 *      sampler, backward, momentum-SGD update, diagnostics as the trainer logs them) on TensorFlow.js' `webgpu`
 *      backend — HRNet-W18-Small-V1 256x128 batch 8, HRNet-W48 1024x512 batch 1 and 2 — interleaved with
 *      PyTorch on the same GPU (bench/torch_train.py, device cuda) when a Python with CUDA torch + timm is
 *      there; records s/step, images/s and peak memory (ours: the webgpu buffer pool's high-water mark,
 *      PyTorch: torch.cuda.max_memory_allocated).
 * Without an NVIDIA GPU it says so and exits 0 (`--force` runs it anyway, on whatever adapter there is, at a
 * small size: a test of the script itself, e.g. on the project's lavapipe: `. .cache/vulkan/env.sh` first).
 * Stops measuring once `--budget` seconds (default 420) are used.
 *
 * It deliberately avoids lib/backend/mod.ts (which can load the native tensorflow backend) so that
 * `deno bundle --platform=deno bench/gpu.ts` gives one file that a bare machine runs with just a Deno binary.
 * Results: bench/out/gpu.json (and $PC_GPU_OUT/gpu.json when set).
 */
import { parseArgs } from "node:util";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tf } from "../lib/backend/tf.ts";
import { adapterFacts, registerWebGPUBackend } from "../lib/backend/webgpu.ts";
import { registerMissingGradients } from "../lib/backend/gradients.ts";
import { registerResizeBilinearGrad } from "../lib/backend/resize.ts";
import { registerFusedGradients } from "../lib/backend/native_fused.ts";
import { installBackpropMemoryRelease } from "../lib/backend/backprop_memory.ts";
import { buildModel } from "../lib/models/mod.ts";
import { modelOptionsOf } from "../lib/run/options.ts";
import { crossEntropyLoss } from "../lib/losses/mod.ts";
import { MomentumSGD } from "../lib/train/optimizer.ts";
import { trainStep } from "../lib/train/step.ts";
import { Rng } from "../lib/util/rng.ts";
import { baselineEnv, fmtS, LineServer, OUT_DIR, ROOT, stats } from "./_common.ts";
import { GPU_CONFIGS, makeInputs, SEED_LOSS, TRAIN_CONFIGS, type TrainConfig } from "./_workload.ts";

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|swrast|software|microsoft basic render|warp/i;

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { ok: r.success, out: (dec.decode(r.stdout) + dec.decode(r.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The NVIDIA GPU the driver reports, or null. */
async function nvidiaGpu(): Promise<string | null> {
  const r = await sh("nvidia-smi", ["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]);
  if (r.ok && r.out) return r.out.split("\n")[0];
  return existsSync("/dev/nvidia0") ? "NVIDIA device node /dev/nvidia0 (nvidia-smi not available)" : null;
}

/** Why WebGPU may not see the GPU: Vulkan loader and ICD files. */
async function vulkanFacts(): Promise<string> {
  const loader = (await sh("sh", ["-c", "ldconfig -p | grep -m1 libvulkan.so.1"])).out ||
    "no libvulkan.so.1 in ldconfig";
  const icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/nvidia/share/vulkan/icd.d"]
    .filter((d) => existsSync(d))
    .map((d) => `${d}: ${[...Deno.readDirSync(d)].map((e) => e.name).join(", ")}`);
  const env = Deno.env.get("VK_DRIVER_FILES") ?? Deno.env.get("VK_ICD_FILENAMES");
  return `loader: ${loader}; ICDs: ${icds.join("; ") || "none found"}${
    env ? `; VK_DRIVER_FILES=${env}` : ""
  }`;
}

async function torchCuda(): Promise<{ python?: string; note: string }> {
  for (
    const py of [Deno.env.get("PC_TORCH_PYTHON"), "python3", "/usr/bin/python3"].filter((p): p is string =>
      !!p
    )
  ) {
    const r = await sh(py, ["-c", "import torch, timm; print(torch.__version__, torch.cuda.is_available())"]);
    if (r.ok && r.out.trim().endsWith("True")) return { python: py, note: r.out.trim().split("\n").pop()! };
  }
  return { note: "no Python with CUDA-enabled torch and timm" };
}

interface Row {
  contender: string;
  config: string;
  seconds: number[];
  median: number;
  min: number;
  max: number;
  imagesPerSecond: number;
  ratioTorch?: number | null;
  warmupS?: number;
  /** Peak device memory in bytes (see the module comment for what each contender's figure is). */
  peakBytes?: number | null;
  note?: string;
}

export async function run(args: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args,
    options: {
      budget: { type: "string", default: "420" },
      reps: { type: "string", default: "5" },
      force: { type: "boolean", default: false },
      size: { type: "string" },
      configs: { type: "string", default: "w18s1-b8,w48-b1,w48-b2" },
    },
  });
  const t0 = performance.now();
  const budget = Number(v.budget);
  const left = () => budget - (performance.now() - t0) / 1000;
  const result: Record<string, unknown> = { date: new Date().toISOString(), deno: Deno.version.deno };
  const save = () => {
    Deno.mkdirSync(OUT_DIR, { recursive: true });
    const text = JSON.stringify(result, null, 1);
    writeFileSync(join(OUT_DIR, "gpu.json"), text);
    const extra = Deno.env.get("PC_GPU_OUT");
    if (extra) writeFileSync(join(extra, "gpu.json"), text);
  };

  const gpu = await nvidiaGpu();
  result.nvidia = gpu;
  if (!gpu && !v.force) {
    console.log(
      "bench gpu: no NVIDIA GPU on this machine (no nvidia-smi, no /dev/nvidia0): nothing to measure.",
    );
    save();
    return;
  }
  console.log(`bench gpu: driver reports ${gpu ?? "no NVIDIA GPU (--force)"}`);

  // 1. What Deno's WebGPU sees
  const navGpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  let adapter: GPUAdapter | null = null;
  let adapterText = "navigator.gpu is not exposed by this runtime";
  if (navGpu) {
    try {
      adapter = await navGpu.requestAdapter({ powerPreference: "high-performance" });
      adapterText = adapter ? "" : "requestAdapter returned null";
    } catch (e) {
      adapterText = `requestAdapter failed: ${(e as Error).message}`;
    }
  }
  let software = true;
  if (adapter) {
    const i = adapterFacts(adapter);
    adapterText = [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(" / ");
    software = i.isFallbackAdapter || SOFTWARE.test(`${i.description} ${i.device} ${i.architecture}`);
    result.adapterLimits = {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    };
  }
  result.webgpuAdapter = adapterText;
  result.webgpuHardware = !!adapter && !software;
  const seesGpu = !!adapter && !software;
  console.log(
    `  WebGPU adapter: ${adapterText}${
      adapter ? (software ? "  => SOFTWARE adapter: WebGPU does NOT see the GPU" : "  => hardware GPU") : ""
    }`,
  );
  if (!seesGpu) {
    result.vulkan = await vulkanFacts();
    console.log(`  Vulkan: ${result.vulkan}`);
  }

  // 2. Train step: webgpu (if it sees a GPU, or --force) beside PyTorch CUDA
  const tc = gpu ? await torchCuda() : { note: "no GPU" } as { python?: string; note: string };
  result.torch = tc.note;
  console.log(`  PyTorch: ${tc.python ? `${tc.note} (${tc.python})` : tc.note}`);
  const runWebgpu = !!adapter && (seesGpu || v.force);
  if (runWebgpu) {
    // our factory (lib/backend/webgpu.ts; the package's own fails under Deno), on the adapter probed above
    let probed: GPUAdapter | null = adapter;
    registerWebGPUBackend(async () => {
      const a = probed;
      probed = null;
      return a ?? await navGpu!.requestAdapter({ powerPreference: "high-performance" });
    });
    await tf.setBackend("webgpu");
    await tf.ready();
    registerMissingGradients();
    registerFusedGradients();
    installBackpropMemoryRelease();
    registerResizeBilinearGrad("webgpu");
  }
  const size = v.size?.split("x").map(Number);
  const configs: TrainConfig[] = [...GPU_CONFIGS, ...TRAIN_CONFIGS].filter((c) =>
    v.configs!.split(",").includes(c.id)
  )
    .map((c) => size ? { ...c, w: size[0], h: size[1] } : v.force && !gpu ? { ...c, w: 64, h: 32 } : c);
  const rows: Row[] = [];
  result.rows = rows;
  const reps = Math.max(1, Number(v.reps));
  for (const cfg of configs) {
    if (left() < 30) {
      console.log(`  ${cfg.id}: skipped, budget used`);
      continue;
    }
    const label = `${cfg.model} ${cfg.w}x${cfg.h} b${cfg.n}`;
    console.log(`\n  ${label}`);
    const inputs = makeInputs(cfg.n, cfg.h, cfg.w);
    let torch: LineServer | null = null;
    if (tc.python) {
      torch = new LineServer(tc.python, "torch_train.py", baselineEnv(navigator.hardwareConcurrency));
      try {
        await torch.request({
          model: cfg.model,
          n: cfg.n,
          h: cfg.h,
          w: cfg.w,
          device: "cuda",
          inputs: inputs.path,
        });
        await torch.request({ step: 1 });
        await torch.request({ step: 1 });
      } catch (e) {
        console.log(`  PyTorch failed: ${(e as Error).message}`);
        torch.kill();
        torch = null;
      }
    }
    // ours: the full train step (asynchronous: the sampler awaits the predictions, the loss is read once per
    // step). Should it fail, the CE-only step is timed instead, so that the run still says something.
    let ours: { step: () => Promise<number>; dispose: () => void; warmupS: number; kind: string } | null =
      null;
    if (runWebgpu) {
      const rng = new Rng(2021);
      const model = buildModel(
        modelOptionsOf({ backbone: cfg.model, numClasses: 19, projDim: 720 }),
        rng.fork("init"),
      );
      const optimizer = new MomentumSGD({ momentum: 0.9, weightDecay: 2e-4 });
      let iter = 0;
      /** Waits for the GPU to finish what was queued (the update comes after the step's last read). */
      const drain = async () => {
        const w = model.trainableVariables()[0];
        const one = tf.tidy(() => tf.slice(tf.reshape(w, [-1]), [0], [1]));
        await one.data();
        one.dispose();
      };
      const full = async () => {
        const s = performance.now();
        await trainStep([{ image: inputs.image, label: inputs.label, shape: [cfg.n, cfg.h, cfg.w] }], {
          model,
          optimizer,
          loss: SEED_LOSS,
          rng,
          iter: iter++,
          lr: 0.01,
          diagnostics: true,
        });
        await drain();
        return (performance.now() - s) / 1000;
      };
      const ceOnly = async () => {
        const s = performance.now();
        const x = tf.tensor4d(inputs.image, [cfg.n, cfg.h, cfg.w, 3]);
        const y = tf.tensor3d(inputs.label, [cfg.n, cfg.h, cfg.w], "int32");
        const { value, grads } = model.variableGrads(() => {
          const out = model.forward(x, { training: true, rng, embed: false });
          return crossEntropyLoss(out.logitsUp, y, SEED_LOSS.ce);
        });
        model.commitBnUpdates();
        optimizer.step(model.trainableWeights(), grads, 0.01);
        tf.dispose([x, y, ...Object.values(grads)]);
        await value.data(); // queued after the update: resolves once the GPU has done the whole step
        value.dispose();
        return (performance.now() - s) / 1000;
      };
      try {
        const w = await full() + await full();
        ours = {
          step: full,
          warmupS: w,
          dispose: () => (model.dispose(), optimizer.dispose()),
          kind: "full",
        };
      } catch (e) {
        const msg = (e as Error).message;
        result.webgpuFullStepError = msg;
        model.discardBnUpdates();
        console.log((e as Error).stack);
        console.log(`    webgpu: the full trainStep cannot run here: ${msg}`);
        try {
          const w = await ceOnly() + await ceOnly(); // shader compilation happens in the first steps
          ours = {
            step: ceOnly,
            warmupS: w,
            dispose: () => (model.dispose(), optimizer.dispose()),
            kind: "ce",
          };
          console.log(
            `    webgpu: timing the CE-only step instead (warm-up, 2 steps with shader compilation: ${
              fmtS(w)
            } s)`,
          );
        } catch (e2) {
          console.log(`    webgpu CE-only step failed too: ${(e2 as Error).message}`);
          result.webgpuError = (e2 as Error).message;
          model.dispose();
        }
      }
    }
    const ceTorch = ours?.kind === "ce";
    if (torch && ceTorch) await torch.request({ step: 1, ce_only: 1 });
    const tw: number[] = [], tt: number[] = [], ttFull: number[] = [];
    for (let r = 0; r < reps && left() > 15; r++) {
      if (ours) tw.push(await ours.step());
      if (torch) {
        if (ceTorch) tt.push(Number((await torch.request({ step: 1, ce_only: 1 })).seconds));
        ttFull.push(Number((await torch.request({ step: 1 })).seconds));
      }
      console.log(
        `    repeat ${r + 1}: ${ours ? `webgpu${ceTorch ? " (CE only)" : ""} ${fmtS(tw[r])} s` : ""}` +
          `${
            torch
              ? `  pytorch-cuda ${ceTorch ? `CE only ${fmtS(tt[r])} s, ` : ""}full ${fmtS(ttFull[r])} s`
              : ""
          }`,
      );
    }
    const torchMed = ceTorch
      ? (tt.length ? stats(tt).median : null)
      : (ttFull.length ? stats(ttFull).median : null);
    if (ours && tw.length) {
      const s = stats(tw);
      // the webgpu buffer pool only grows (freed buffers are kept for reuse): its size is the step's peak
      const mem = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
      const peak = mem.numBytesAllocatedInGPU ?? null;
      rows.push({
        contender: ceTorch ? "ours/webgpu (CE only)" : "ours/webgpu",
        config: label,
        seconds: tw,
        median: s.median,
        min: s.min,
        max: s.max,
        imagesPerSecond: cfg.n / s.median,
        ratioTorch: torchMed ? torchMed / s.median : null,
        warmupS: ours.warmupS,
        peakBytes: peak,
        note: `${peak !== null ? `GPU buffers ${gib(peak)} GiB (pool high-water mark); ` : ""}` +
          `live tensors ${gib(mem.numBytes)} GiB after the step`,
      });
    }
    ours?.dispose();
    if (torch) {
      const bye = await torch.close();
      const cudaPeak = bye?.cuda_peak ? Number(bye.cuda_peak) : null;
      const peak = cudaPeak !== null ? `CUDA peak ${gib(cudaPeak)} GiB (max_memory_allocated)` : undefined;
      for (const [name, ts] of [["pytorch/cuda (CE only)", tt], ["pytorch/cuda", ttFull]] as const) {
        if (!ts.length) continue;
        const s = stats(ts);
        rows.push({
          contender: name,
          config: label,
          seconds: ts,
          median: s.median,
          min: s.min,
          max: s.max,
          imagesPerSecond: cfg.n / s.median,
          peakBytes: cudaPeak,
          note: peak,
        });
      }
    }
    save();
  }
  console.log(
    `\n  ${"contender".padEnd(24)}${"config".padEnd(30)}${"median s".padStart(10)}${
      "min-max s".padStart(18)
    }${"img/s".padStart(9)}${"x torch".padStart(9)}${"peak GiB".padStart(10)}`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.contender.padEnd(24)}${r.config.padEnd(30)}${fmtS(r.median).padStart(10)}${
        `${fmtS(r.min)}-${fmtS(r.max)}`.padStart(18)
      }` +
        `${r.imagesPerSecond.toFixed(2).padStart(9)}${
          (r.ratioTorch ? r.ratioTorch.toFixed(3) : "-").padStart(9)
        }${(r.peakBytes ? gib(r.peakBytes) : "-").padStart(10)}`,
    );
  }
  save();
  console.log(`results: ${join(OUT_DIR, "gpu.json").replace(ROOT + "/", "")}`);
}

function gib(bytes: number): string {
  return (bytes / 2 ** 30).toFixed(2);
}

if (import.meta.main) await run(Deno.args);
