/**
 * Mixup and CutMix decisions: TypeScript draws lambda, the partner permutation
 * and the CutMix box; the native step blends images and targets and mixes the
 * loss (lambda * L(pred, y) + (1 - lambda) * L(pred, y[perm])). Training only.
 */
import { MIX_ALPHA } from '../defaults';
import type { NativeMix } from '../native';

/** The random draws mixing needs (lib/data/random.ts provides a seeded one). */
export interface MixRandom {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** A draw from Beta(a, b). */
  beta(a: number, b: number): number;
  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array | number[];
}

/** Which mixing to apply to training batches. */
export type MixOptions =
  | { kind: 'mixup'; /** Beta(alpha, alpha). Default 0.4. */ alpha?: number }
  | { kind: 'cutmix'; /** Beta(alpha, alpha). Default 1.0. */ alpha?: number };

export const MIXUP_ALPHA = MIX_ALPHA.mixup;
export const CUTMIX_ALPHA = MIX_ALPHA.cutmix;

function checkAlpha(alpha: number): void {
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`mix alpha: expected a number > 0, got ${alpha}`);
}

function toInt32(perm: Int32Array | number[]): Int32Array {
  return perm instanceof Int32Array ? perm : Int32Array.from(perm);
}

/** Mixup for a batch of n: per-sample lambda ~ Beta(alpha, alpha), kept >= 0.5, and a random partner. */
export function sampleMixup(n: number, alpha: number, rng: MixRandom): NativeMix {
  checkAlpha(alpha);
  const lambda = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const l = rng.beta(alpha, alpha);
    // The sample itself always carries the larger weight, so its label stays the main one.
    lambda[i] = Math.max(l, 1 - l);
  }
  return { perm: toInt32(rng.permutation(n)), lambda };
}

/** A CutMix box [x0, y0, x1, y1) and the lambda corrected to the box's real (clamped) area. */
export interface CutBox {
  box: [number, number, number, number];
  lambda: number;
}

/**
 * The CutMix box for an image of w x h given a drawn lambda: sides of
 * round(w sqrt(1 - lambda)) and round(h sqrt(1 - lambda)), centre uniform over
 * the image, clamped to it; lambda becomes 1 - area / (w h).
 */
export function cutBox(w: number, h: number, lambda: number, rng: Pick<MixRandom, 'uniform'>): CutBox {
  const cutRatio = Math.sqrt(1 - lambda);
  const cutW = Math.round(w * cutRatio);
  const cutH = Math.round(h * cutRatio);
  const cx = Math.floor(rng.uniform() * w);
  const cy = Math.floor(rng.uniform() * h);
  const x0 = clamp(cx - Math.floor(cutW / 2), 0, w);
  const y0 = clamp(cy - Math.floor(cutH / 2), 0, h);
  const x1 = clamp(cx + Math.floor(cutW / 2), 0, w);
  const y1 = clamp(cy + Math.floor(cutH / 2), 0, h);
  const area = (x1 - x0) * (y1 - y0);
  return { box: [x0, y0, x1, y1], lambda: 1 - area / (w * h) };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** CutMix for a batch of n images of w x h: one lambda ~ Beta(alpha, alpha) per batch, one box. */
export function sampleCutMix(n: number, w: number, h: number, alpha: number, rng: MixRandom): NativeMix {
  checkAlpha(alpha);
  const drawn = rng.beta(alpha, alpha);
  const perm = toInt32(rng.permutation(n));
  const { box, lambda } = cutBox(w, h, drawn, rng);
  return { perm, lambda: new Float32Array(n).fill(lambda), box };
}

/** The mix for one training batch under `options` (w, h: the size the model sees). */
export function sampleMix(options: MixOptions, n: number, w: number, h: number, rng: MixRandom): NativeMix {
  if (options.kind === 'mixup') return sampleMixup(n, options.alpha ?? MIXUP_ALPHA, rng);
  return sampleCutMix(n, w, h, options.alpha ?? CUTMIX_ALPHA, rng);
}

/**
 * The soft targets a mix stands for: row i is lambda_i * onehot(y_i) + (1 - lambda_i) * onehot(y_perm_i),
 * optionally label-smoothed ((1 - eps) * t + eps / c). The native loss computes the same
 * weighting directly; this is the readable statement of it (used by tests and reports).
 */
export function mixedTargets(labels: Int32Array, mix: NativeMix, numClasses: number, smoothing = 0): Float32Array {
  const n = labels.length;
  const out = new Float32Array(n * numClasses);
  for (let i = 0; i < n; i++) {
    const row = i * numClasses;
    const l = mix.lambda[i];
    out[row + labels[i]] += l;
    out[row + labels[mix.perm[i]]] += 1 - l;
    if (smoothing > 0) {
      for (let k = 0; k < numClasses; k++) out[row + k] = (1 - smoothing) * out[row + k] + smoothing / numClasses;
    }
  }
  return out;
}
