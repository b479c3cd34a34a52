/**
 * The `webgpu` backend on Mesa's software Vulkan driver (lavapipe; `deno task setup`, step vulkan, puts it in
 * .cache/vulkan): the train step and the evaluation agree with the native backend, the trainer CLI trains,
 * evaluates and checkpoints with `--backend webgpu` and `val` evaluates its checkpoint, and `auto` never picks
 * the software adapter. Each runs in a child process started with the driver's environment
 * (lib/backend/software_vulkan.ts): the Vulkan loader is found through LD_LIBRARY_PATH at process start.
 *
 * Tolerances of the step comparison (_webgpu_parity.ts: the same weights before each of 3 steps), with what
 * was measured on lavapipe (Mesa 22.3.6, LLVM 15; Deno 2.9.6) in brackets:
 *   loss, CE, contrast: relative 1e-5 [3e-7]; the same number of anchors [equal];
 *   gradients: relative L2 over all parameters 1e-4 [9e-6], per parameter tensor 1e-3 [3.4e-5];
 *   weights after the momentum-SGD update: relative L2 1e-4 [6e-6];
 *   evaluation (whole; slide + two scales + flip): at most 0.1% of the pixels in a different confusion
 *   cell [0], mIoU within 1e-3 [equal].
 * A missing driver FAILS these tests (CI provisions it); PC_ALLOW_WEBGPU_SKIP=1 skips them instead.
 */
import { assert, assertEquals } from "../_helpers/assert.ts";
import { join } from "node:path";
import { softwareVulkan } from "../../lib/backend/software_vulkan.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OUT = "tests/out/webgpu";
const vk = softwareVulkan();
const skip = !vk.ok && Deno.env.get("PC_ALLOW_WEBGPU_SKIP") === "1";
if (skip) console.log(`webgpu_test: SKIPPED (PC_ALLOW_WEBGPU_SKIP=1): ${!vk.ok ? vk.why : ""}`);

function env(): Record<string, string> {
  if (!vk.ok) throw new Error(`no software Vulkan driver for the webgpu tests: ${vk.why}`);
  const e: Record<string, string> = { ...Deno.env.toObject(), ...vk.value.env, NO_COLOR: "1" };
  delete e.PC_BACKEND;
  return e;
}

async function child(args: string[], extraEnv: Record<string, string> = env()) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: extraEnv,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

interface Diff {
  overall: number;
  worst: number;
  worstName: string;
  tensors: number;
}
interface StepDiff {
  loss: [number, number];
  ce: [number, number];
  contrast: [number, number];
  anchors: [number, number];
  grad: Diff;
  weightsAfter: Diff;
}
interface EvalDiff {
  mIoU: [number, number];
  pixels: number;
  disagree: number;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), 1e-12);

Deno.test({
  name: "webgpu (lavapipe) train step and evaluation agree with the native backend",
  ignore: skip,
  async fn() {
    const r = await child(["run", "-A", "tests/backend/_webgpu_parity.ts"]);
    assertEquals(r.code, 0, r.stderr.slice(-3000));
    const d = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert(/llvmpipe|lavapipe/i.test(d.webgpu), `not on lavapipe: ${d.webgpu}`);
    assertEquals(d.steps.length, 3);
    (d.steps as StepDiff[]).forEach((s, k) => {
      for (const key of ["loss", "ce", "contrast"] as const) {
        assert(
          rel(s[key][0], s[key][1]) <= 1e-5,
          `step ${k} ${key}: native ${s[key][0]}, webgpu ${s[key][1]}`,
        );
      }
      assert(s.anchors[0] > 0, `step ${k}: no anchors, the contrast term was not exercised`);
      assertEquals(s.anchors[1], s.anchors[0], `step ${k}: anchors`);
      assert(s.grad.overall <= 1e-4, `step ${k}: gradients differ by ${s.grad.overall} (relative L2)`);
      assert(s.grad.worst <= 1e-3, `step ${k}: ${s.grad.worstName} differs by ${s.grad.worst}`);
      assertEquals(s.grad.tensors, 170, `step ${k}: gradient tensors`);
      assert(
        s.weightsAfter.overall <= 1e-4,
        `step ${k}: updated weights differ by ${s.weightsAfter.overall}`,
      );
    });
    for (const [mode, e] of Object.entries(d.evals as Record<string, EvalDiff>)) {
      assert(e.pixels > 7000, `${mode}: ${e.pixels} pixels evaluated`);
      assert(e.disagree <= 0.001 * e.pixels, `${mode}: ${e.disagree} of ${e.pixels} pixels differ`);
      assert(Math.abs(e.mIoU[0] - e.mIoU[1]) <= 1e-3, `${mode}: mIoU ${e.mIoU}`);
    }
  },
});

Deno.test({
  name:
    "deno task train --backend webgpu trains, evaluates and checkpoints on lavapipe; val reads the checkpoint",
  ignore: skip,
  async fn() {
    await Deno.remove(join(ROOT, OUT), { recursive: true }).catch(() => {});
    const common = [
      "--config",
      "configs/tests/tiny_contrast_synthetic.yml",
      "--iters",
      "2",
      "--log_iters",
      "1",
    ];
    const wg = await child([
      "run",
      "-A",
      "lib/cli/train.ts",
      ...common,
      "--backend",
      "webgpu",
      "--save_dir",
      `${OUT}/webgpu`,
    ]);
    assertEquals(wg.code, 0, wg.stderr.slice(-3000));
    assert(/on webgpu/.test(wg.stdout), wg.stdout.slice(-500));
    const recs = (await Deno.readTextFile(join(ROOT, OUT, "webgpu", "metrics.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l));
    const train = recs.filter((r) => r.type === "train"), evals = recs.filter((r) => r.type === "eval");
    assertEquals(train.map((r) => r.iter), [1, 2]);
    assert(train.every((r) => Number.isFinite(r.loss) && r.contrast > 0), JSON.stringify(train));
    assertEquals(evals.map((r) => r.iter), [2]);
    const total = evals[0].confusion.flat().reduce((a: number, b: number) => a + b, 0);
    assert(total > 0.5 * 2 * 64 * 32 && total <= 2 * 64 * 32, `${total} pixels counted in 2 images of 64x32`);
    for (const dir of ["iter_2", "best_model"]) {
      const st = await Deno.stat(join(ROOT, OUT, "webgpu", dir, "model.safetensors"));
      assert(st.size > 1000, `${dir}/model.safetensors`);
    }
    // the first step from the same initial weights on the native backend: the same loss
    const nat = await child(
      [
        "run",
        "-A",
        "lib/cli/train.ts",
        ...common,
        "--iters",
        "1",
        "--backend",
        "tensorflow",
        "--save_dir",
        `${OUT}/native`,
        "--opts",
        "train.do_eval=false",
      ],
    );
    assertEquals(nat.code, 0, nat.stderr.slice(-2000));
    const first = JSON.parse(
      (await Deno.readTextFile(join(ROOT, OUT, "native", "metrics.jsonl"))).split("\n")[0],
    );
    assert(
      rel(first.loss, train[0].loss) <= 1e-5,
      `iteration 1: native ${first.loss}, webgpu ${train[0].loss}`,
    );
    // deno task val on webgpu with the checkpoint: the in-training evaluation's mIoU
    const val = await child([
      "run",
      "-A",
      "lib/cli/val.ts",
      "--config",
      common[1],
      "--model_path",
      `${OUT}/webgpu/iter_2`,
      "--backend",
      "webgpu",
    ]);
    assertEquals(val.code, 0, val.stderr.slice(-2000));
    const m = /mIoU: ([0-9.]+)/.exec(val.stdout);
    assert(m, val.stdout.slice(-1000));
    assert(Math.abs(Number(m[1]) - evals[0].mIoU) < 1e-4, `val mIoU ${m[1]} vs in-training ${evals[0].mIoU}`);
  },
});

Deno.test({
  name: "auto never picks the software adapter: with lavapipe the only GPU and native refused, auto -> wasm",
  ignore: skip,
  async fn() {
    // touching WebGPU first makes the native backend refuse to load (lib/backend/mod.ts), so auto has to
    // choose between lavapipe and wasm
    const code = `
      import { initBackend, probeBackend } from "./lib/backend/mod.ts";
      const gpu = await probeBackend("webgpu");
      const info = await initBackend("auto", { quiet: true });
      console.log(JSON.stringify({ gpu, name: info.name, reason: info.reason }));`;
    const r = await child(["eval", "--ext=ts", code]);
    assertEquals(r.code, 0, r.stderr.slice(-2000));
    const d = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert(d.gpu.available && !d.gpu.autoEligible, JSON.stringify(d.gpu));
    assert(/software adapter/.test(d.gpu.detail), d.gpu.detail);
    assertEquals(d.name, "wasm", d.reason);
    assert(/webgpu: software adapter/.test(d.reason), d.reason);
  },
});

Deno.test({
  name:
    "webgpu: a synchronous read of GPU data fails with a clear error (Deno has no 2D canvas); async reads work",
  ignore: skip,
  async fn() {
    const code = `
      import { initBackend } from "./lib/backend/mod.ts";
      import { tf } from "./lib/backend/tf.ts";
      await initBackend("webgpu", { quiet: true });
      const onCpu = Array.from(tf.tensor1d([1, 2, 3]).dataSync()); // an upload not yet used on the GPU
      const y = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64]));
      let error = "";
      try { y.dataSync(); } catch (e) { error = e.message; }
      console.log(JSON.stringify({ onCpu, error, asyncFirst: (await y.data())[0] }));`;
    const r = await child(["eval", "--ext=ts", code]);
    assertEquals(r.code, 0, r.stderr.slice(-2000));
    const d = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assertEquals(d.onCpu, [1, 2, 3]);
    assert(/synchronous read-back.*await tensor\.data\(\)/.test(d.error), d.error);
    assertEquals(d.asyncFirst, 64);
  },
});
