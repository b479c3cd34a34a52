/**
 * Learning-rate schedules, as PaddleSeg builds them (`lr_scheduler: {type: PolynomialDecay, ...}`).
 *
 * PolynomialDecay: lr_k = (base - end) * (1 - k / decaySteps)^power + end, k = optimizer steps done.
 * With `warmupIters` > 0 PaddleSeg wraps it in Paddle's LinearWarmup: the first `warmupIters` steps go
 * linearly from `warmupStartLr` to `base`, after which the polynomial runs over the remaining
 * `iters - warmupIters` steps.
 */
export interface PolyLrOptions {
  learningRate: number;
  endLr: number;
  power: number;
  /** Total optimizer steps of the run. */
  iters: number;
  warmupIters?: number;
  warmupStartLr?: number;
}

export function polyLr(k: number, o: PolyLrOptions): number {
  const warm = o.warmupIters ?? 0;
  if (warm > 0 && k < warm) {
    const start = o.warmupStartLr ?? 0;
    return start + (o.learningRate - start) * (k / warm);
  }
  const decaySteps = Math.max(1, o.iters - warm);
  const t = Math.min(Math.max(k - warm, 0), decaySteps);
  return (o.learningRate - o.endLr) * Math.pow(1 - t / decaySteps, o.power) + o.endLr;
}
