/** Small synthetic run logs for the viz tests (shapes as the trainer writes them, values made up). */
import type { EvalRecord, TrainRecord } from "../../lib/train/run_record.ts";

export function fakeTrain(iters: number, contrastFrom = 0, classes = 19): TrainRecord[] {
  const out: TrainRecord[] = [];
  for (let it = 10; it <= iters; it += 10) {
    const ce = 2 * Math.exp(-it / 300) + 0.3;
    const contrast = it >= contrastFrom && contrastFrom >= 0 ? 1.2 - it / (10 * iters) : null;
    const loss = ce + 0.1 * (contrast ?? 0);
    out.push({
      type: "train",
      iter: it,
      lr: 0.01 * (1 - it / iters) ** 0.9,
      loss,
      ce,
      contrast,
      time: it * 0.5,
      diagnostics: contrast === null ? null : {
        anchorsPerClass: Array.from({ length: classes }, (_, c) => (c % 4 === 0 ? 0 : 10 + c)),
        hard: 40,
        easy: 60,
        posSim: 0.3,
        negSim: 0.05,
        contrastShare: (0.1 * contrast) / loss,
      },
    });
  }
  return out;
}

export function fakeEvals(iters: number[], classes = 19, mode = "whole"): EvalRecord[] {
  return iters.map((it, k) => {
    const classIoU = Array.from({ length: classes }, (_, c) => 0.3 + 0.5 * ((c * 7 + k) % 10) / 10);
    const confusion = Array.from(
      { length: classes },
      (_, r) => Array.from({ length: classes }, (_, c) => (r === c ? 100 * (r + 1) : (r + c) % 3)),
    );
    return {
      type: "eval",
      iter: it,
      mIoU: classIoU.reduce((a, b) => a + b) / classes,
      acc: 0.9,
      kappa: 0.85,
      classIoU,
      classAcc: classIoU.map((v) => v + 0.05),
      confusion,
      mode,
      valLoss: 0.5 - k * 0.01,
    };
  });
}
