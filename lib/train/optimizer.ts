/**
 * Momentum SGD with coupled L2 weight decay, as Paddle's `Momentum(weight_decay=float)` used by the seed:
 *
 *   g' = g + wd * p;   v = mu * v + g';   p = p - lr * v
 *
 * applied to every parameter (BN affine and biases too). The learning rate is passed per step, so any
 * schedule works, and the velocity buffers are named after the parameters, so they go into checkpoints.
 */
import { tf } from "../backend/tf.ts";

export interface MomentumOptions {
  momentum: number;
  weightDecay: number;
}

export class MomentumSGD {
  readonly momentum: number;
  readonly weightDecay: number;
  /** Velocity per parameter name (created lazily, zero-initialised like Paddle). */
  readonly velocity = new Map<string, tf.Variable>();

  constructor(o: MomentumOptions) {
    if (!(o.momentum >= 0 && o.momentum < 1)) {
      throw new Error(`optimizer.momentum must be in [0, 1), got ${o.momentum}`);
    }
    if (!(o.weightDecay >= 0)) throw new Error(`optimizer.weight_decay must be >= 0, got ${o.weightDecay}`);
    this.momentum = o.momentum;
    this.weightDecay = o.weightDecay;
  }

  /**
   * One update. `params` and `grads` are keyed by parameter name; every gradient must have a parameter.
   * Parameters without a gradient (e.g. BN running statistics) are simply not passed.
   */
  step(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    tf.tidy(() => {
      const mu = tf.scalar(this.momentum);
      const wd = tf.scalar(this.weightDecay);
      const negLr = tf.scalar(-lr);
      for (const [name, g] of Object.entries(grads)) {
        const p = params.get(name);
        if (!p) throw new Error(`optimizer: gradient for unknown parameter '${name}'`);
        if (!g.shape.every((d, i) => d === p.shape[i]) || g.rank !== p.rank) {
          throw new Error(`optimizer: gradient shape [${g.shape}] != parameter '${name}' shape [${p.shape}]`);
        }
        let v = this.velocity.get(name);
        if (!v) {
          v = tf.variable(tf.zerosLike(p), false);
          this.velocity.set(name, v);
        }
        const gd = this.weightDecay > 0 ? tf.add(g, tf.mul(wd, p)) : g;
        const vNew = tf.add(tf.mul(mu, v), gd);
        v.assign(vNew);
        p.assign(tf.add(p, tf.mul(negLr, vNew)));
      }
    });
  }

  /** Velocity tensors by parameter name (for checkpoints). */
  state(): Map<string, tf.Tensor> {
    return new Map(this.velocity);
  }

  /** Restores velocities (from a checkpoint); shapes must match the parameters. */
  loadState(state: Map<string, tf.Tensor>, params: Map<string, tf.Variable>): void {
    for (const [name, t] of state) {
      const p = params.get(name);
      if (!p) throw new Error(`optimizer state: velocity for unknown parameter '${name}'`);
      if (t.shape.join() !== p.shape.join()) {
        throw new Error(`optimizer state: '${name}' has shape [${t.shape}], parameter has [${p.shape}]`);
      }
      const old = this.velocity.get(name);
      if (old) old.assign(t);
      else this.velocity.set(name, tf.variable(t.clone(), false));
    }
  }

  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}
