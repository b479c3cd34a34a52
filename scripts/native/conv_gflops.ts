/**
 * Quick figure: conv2d forward + backward throughput (GFLOP/s) of the native `tensorflow` backend vs the pure-JS
 * `cpu` backend on the same shapes (the full comparison with PyTorch lives in `deno task bench backends`).
 *
 *   deno run -A scripts/native/conv_gflops.ts [--reps 5]
 *
 * FLOPs per step: forward 2*N*Ho*Wo*Cout*kh*kw*Cin, backward twice that (dx and dw), so 3x forward in all.
 */
import { parseArgs } from "node:util";
import { loadNativeBackend } from "../../lib/backend/native.ts";
import { tf } from "../../lib/backend/tf.ts";

const { values } = parseArgs({ args: Deno.args, options: { reps: { type: "string", default: "5" } } });
const reps = Number(values.reps);

interface Shape {
  name: string;
  x: [number, number, number, number];
  w: [number, number, number, number];
  /** the cpu backend takes minutes on the big shapes: native only */
  nativeOnly?: boolean;
}
const SHAPES: Shape[] = [
  { name: "small 1x32x32x32 k3 32->32", x: [1, 32, 32, 32], w: [3, 3, 32, 32] },
  { name: "HRNet-W48 branch 2x64x64x48 k3 48->48", x: [2, 64, 64, 48], w: [3, 3, 48, 48], nativeOnly: true },
  { name: "HRNet stem 2x128x128x64 k3 64->64", x: [2, 128, 128, 64], w: [3, 3, 64, 64], nativeOnly: true },
];

async function measure(backend: string, s: Shape): Promise<{ ms: number; gflops: number }> {
  await tf.setBackend(backend);
  const x = tf.randomNormal(s.x) as tf.Tensor4D;
  const w = tf.randomNormal(s.w) as tf.Tensor4D;
  const step = tf.grads((x: tf.Tensor, w: tf.Tensor) =>
    tf.sum(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, "same"))
  );
  const run = () => tf.tidy(() => step([x, w]).forEach((g) => g.dataSync()));
  run(); // warm-up (kernel selection, allocation)
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  const ms = (performance.now() - t0) / reps;
  x.dispose();
  w.dispose();
  const [n, h, wd] = s.x;
  const [kh, kw, cin, cout] = s.w;
  const flops = 3 * 2 * n * h * wd * cout * kh * kw * cin;
  return { ms, gflops: flops / ms / 1e6 };
}

const info = await loadNativeBackend();
console.log(
  `libtensorflow ${info.libtensorflowVersion} on ${info.devices.join(", ")}; ${reps} reps after 1 warm-up`,
);
for (const s of SHAPES) {
  const nat = await measure("tensorflow", s);
  let line = `${s.name}: tensorflow ${nat.ms.toFixed(1)} ms = ${nat.gflops.toFixed(1)} GFLOP/s`;
  if (!s.nativeOnly) {
    const cpu = await measure("cpu", s);
    line += `; cpu ${cpu.ms.toFixed(1)} ms = ${cpu.gflops.toFixed(2)} GFLOP/s; speed-up ${
      (cpu.ms / nat.ms).toFixed(0)
    }x`;
  }
  console.log(line);
}
