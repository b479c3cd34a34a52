/**
 * Seeded, serialisable pseudo-random generator (xoshiro128**, seeded by splitmix32).
 *
 * One generator is owned by the trainer and passed to the data pipeline and the anchor sampler,
 * so that a run is reproducible from its seed and resumable from `getState()`.
 */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h >>> 0;
}

export class Rng {
  #s: Uint32Array;

  constructor(seed: number | RngState = 0) {
    this.#s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.setState(seed);
    } else {
      if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
      const sm = splitmix32(Math.floor(seed));
      for (let i = 0; i < 4; i++) this.#s[i] = sm();
      if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
    }
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n) without modulo bias. */
  int(n: number): number {
    if (!(n >= 1) || !Number.isInteger(n) || n > 4294967296) {
      throw new Error(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Standard normal sample (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** In-place Fisher-Yates shuffle; returns the same array. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array | Float32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  /** An independent generator derived from this one's current state and a label (does not advance this one). */
  fork(label: string): Rng {
    const h = hashString(label);
    const s = this.#s;
    const sm = splitmix32((s[0] ^ h ^ Math.imul(s[1], 31) ^ Math.imul(s[2], 17) ^ s[3]) >>> 0);
    return new Rng([sm(), sm(), sm(), sm()] as RngState);
  }

  getState(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  setState(state: RngState): void {
    if (
      !Array.isArray(state) || state.length !== 4 ||
      state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    ) {
      throw new Error(`Rng.setState: expected 4 uint32 values, got ${JSON.stringify(state)}`);
    }
    if (state.every((v) => v === 0)) throw new Error("Rng.setState: the all-zero state is invalid");
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
