/**
 * Segmentation metrics from a confusion matrix, exactly as docs/method.md §8 (PaddleSeg `utils/metrics.py`):
 *   intersect_c = M[c][c], pred_area_c = Σ_l M[l][c] (column), label_area_c = Σ_p M[c][p] (row);
 *   IoU_c = intersect / (pred_area + label_area − intersect), 0 when the union is 0;
 *   mIoU = plain mean over ALL classes (absent classes count as 0 — unlike the official Cityscapes script,
 *   which averages only the classes with a non-empty union);
 *   class Acc = intersect / pred_area (precision, 0 when nothing was predicted), recall = intersect /
 *   label_area (0 when the class is absent), Acc = Σ intersect / Σ pred_area,
 *   Kappa = (p_o − p_e) / (1 − p_e) with p_o = Σ intersect / total, p_e = Σ pred_area·label_area / total².
 * Everything in float64.
 */
import type { ConfusionMatrix } from "./confusion.ts";

export interface SegMetrics {
  numClasses: number;
  classNames: string[];
  /** Non-ignored pixels counted. */
  numPixels: number;
  mIoU: number;
  /** Overall pixel accuracy. */
  acc: number;
  kappa: number;
  /** Per class, index = class id. */
  classIoU: number[];
  /** Per-class precision ("Class Acc" in PaddleSeg's log). */
  classAcc: number[];
  classRecall: number[];
  intersect: number[];
  predArea: number[];
  labelArea: number[];
}

/** Metrics from a confusion matrix (or anything with `numClasses` and row-major [label][pred] `counts`). */
export function computeMetrics(
  cm: Pick<ConfusionMatrix, "numClasses" | "counts">,
  classNames?: readonly string[],
): SegMetrics {
  const C = cm.numClasses;
  if (cm.counts.length !== C * C) {
    throw new Error(`computeMetrics: counts has ${cm.counts.length} entries, expected ${C}x${C}`);
  }
  if (classNames && classNames.length !== C) {
    throw new Error(`computeMetrics: ${classNames.length} class names for ${C} classes`);
  }
  const intersect = new Array<number>(C).fill(0);
  const predArea = new Array<number>(C).fill(0);
  const labelArea = new Array<number>(C).fill(0);
  for (let l = 0; l < C; l++) {
    for (let p = 0; p < C; p++) {
      const v = cm.counts[l * C + p];
      labelArea[l] += v;
      predArea[p] += v;
      if (l === p) intersect[l] += v;
    }
  }
  const div0 = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const classIoU = intersect.map((i, c) => div0(i, predArea[c] + labelArea[c] - i));
  const classAcc = intersect.map((i, c) => div0(i, predArea[c]));
  const classRecall = intersect.map((i, c) => div0(i, labelArea[c]));
  const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
  const total = sum(labelArea);
  const sumI = sum(intersect);
  const po = div0(sumI, total);
  const pe = div0(sum(predArea.map((p, c) => p * labelArea[c])), total * total);
  // p_e = 1 only when prediction and label are one and the same single class everywhere (then p_o = 1):
  // PaddleSeg would print nan there; we report perfect agreement.
  const kappa = total === 0 ? 0 : pe === 1 ? 1 : (po - pe) / (1 - pe);
  return {
    numClasses: C,
    classNames: classNames ? [...classNames] : Array.from({ length: C }, (_, c) => `class ${c}`),
    numPixels: total,
    mIoU: sum(classIoU) / C,
    acc: div0(sumI, sum(predArea)),
    kappa,
    classIoU,
    classAcc,
    classRecall,
    intersect,
    predArea,
    labelArea,
  };
}

/**
 * A printable summary in PaddleSeg's style, with the evaluation mode beside the numbers, e.g.
 *   [EVAL whole] #Images: 500 mIoU: 0.8247 Acc: 0.9612 Kappa: 0.9493
 * followed (unless `perClass` is false) by one line per class: IoU, Acc (precision), recall.
 */
export function formatMetrics(
  m: SegMetrics,
  mode: string,
  opts: { numImages?: number; perClass?: boolean; digits?: number } = {},
): string {
  const d = opts.digits ?? 4;
  const f = (v: number) => v.toFixed(d);
  const head = `[EVAL ${mode}]` + (opts.numImages !== undefined ? ` #Images: ${opts.numImages}` : "") +
    ` mIoU: ${f(m.mIoU)} Acc: ${f(m.acc)} Kappa: ${f(m.kappa)}`;
  if (opts.perClass === false) return head;
  const w = Math.max(5, ...m.classNames.map((n) => n.length));
  const lines = [head, `  ${"class".padEnd(w)}  IoU     Acc     Recall  (${mode})`];
  for (let c = 0; c < m.numClasses; c++) {
    const absent = m.labelArea[c] === 0 ? "  (absent from labels)" : "";
    lines.push(
      `  ${m.classNames[c].padEnd(w)}  ${f(m.classIoU[c])}  ${f(m.classAcc[c])}  ${
        f(m.classRecall[c])
      }${absent}`,
    );
  }
  return lines.join("\n");
}
