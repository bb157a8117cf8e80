/**
 * Seeded randomness for everything the data pipeline and training decide:
 * shuffles, crop boxes, augmentation draws, mixup partners.
 *
 * One generator family (SplitMix32-style seeding feeding an sfc32 state) with
 * independent streams derived from a seed and a path of keys, e.g.
 * `Random.stream(seed, 'train', epoch, 'augment')`. Two streams with different
 * keys never share state, so adding a draw in one place does not shift the
 * draws of another (the shuffle of epoch 3 does not depend on how many crops
 * epoch 2 sampled).
 */

/** A key in a stream path: a purpose name or a number (epoch, pass, batch index). */
export type StreamKey = string | number;

/** Mixes a 32-bit value into a well-spread 32-bit hash (murmur3 finaliser). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes one key into a running 32-bit state. */
function absorb(state: number, key: StreamKey): number {
  if (typeof key === 'number') {
    if (!Number.isFinite(key)) throw new Error(`Random: stream key must be finite, got ${key}`);
    // Split into two 32-bit halves so seeds above 2^32 still differ.
    const lo = key >>> 0;
    const hi = Math.floor(key / 4294967296) >>> 0;
    state = fmix32((state ^ lo) + 0x9e3779b9);
    return fmix32((state ^ hi) + 0x7f4a7c15);
  }
  state = fmix32(state ^ 0x5bd1e995 ^ key.length);
  for (let i = 0; i < key.length; i++) state = fmix32((state ^ key.charCodeAt(i)) + 0x9e3779b9);
  return state;
}

/**
 * A seeded pseudo-random generator (sfc32: small, fast, passes PractRand to
 * large sizes, and reproducible across platforms because it uses only 32-bit
 * integer operations).
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  /** A second normal from the last Box-Muller draw, or NaN when none is pending. */
  private spareNormal = NaN;

  /** A generator for `seed` alone. Prefer `Random.stream` to name what it is for. */
  constructor(seed: number) {
    const s = absorb(0x6a09e667, seed);
    this.a = fmix32(s ^ 0x243f6a88);
    this.b = fmix32(s ^ 0x85a308d3);
    this.c = fmix32(s ^ 0x13198a2e);
    this.d = 1;
    // Warm up so close seeds diverge fully.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** An independent stream for (seed, ...keys): e.g. `Random.stream(42, 'train', epoch, 'shuffle')`. */
  static stream(seed: number, ...keys: StreamKey[]): Random {
    let state = absorb(0x3c6ef372, seed);
    for (const key of keys) state = absorb(state, key);
    // Feed the path hash and the seed's own hash so (seed, keys) -> one 53-bit seed.
    return new Random(state * 2097152 + (absorb(state, 'x') & 0x1fffff));
  }

  /** Next raw 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). Defaults: [0, 1). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer uniform in [lo, hi) (hi exclusive), unbiased. */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) {
      throw new Error(`Random.int: expected integers lo < hi, got [${lo}, ${hi})`);
    }
    const span = hi - lo;
    if (span <= 4294967296) {
      // Rejection sampling on 32 bits avoids modulo bias.
      const limit = 4294967296 - (4294967296 % span);
      for (;;) {
        const r = this.nextUint32();
        if (r < limit) return lo + (r % span);
      }
    }
    return lo + Math.floor(this.next() * span);
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box-Muller, with the second value kept for the next call), scaled to N(mean, std^2). */
  normal(mean = 0, std = 1): number {
    if (!Number.isNaN(this.spareNormal)) {
      const z = this.spareNormal;
      this.spareNormal = NaN;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang; shape < 1 uses the boost u^(1/shape). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new Error(`Random.gamma: shape must be > 0, got ${shape}`);
    if (shape < 1) {
      let u = 0;
      while (u === 0) u = this.next();
      return this.gamma(shape + 1) * Math.pow(u, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(alpha, beta) as X/(X+Y) with X ~ Gamma(alpha), Y ~ Gamma(beta). beta defaults to alpha. */
  beta(alpha: number, beta = alpha): number {
    const x = this.gamma(alpha);
    const y = this.gamma(beta);
    return x + y === 0 ? 0.5 : x / (x + y);
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0) throw new Error(`Random.permutation: n must be a non-negative integer, got ${n}`);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = out[i];
      out[i] = out[j];
      out[j] = t;
    }
    return out;
  }
}
