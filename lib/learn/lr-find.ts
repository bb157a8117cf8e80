/**
 * The learning-rate finder's pure parts: the debiased loss smoother (also used
 * for the smoothed training loss of every fit) and the 'valley' suggestion.
 */

/** Exponential moving average of the loss, debiased: value = avg / (1 - beta^count). */
export class SmoothedLoss {
  private average = 0;
  private count = 0;

  constructor(readonly beta = 0.98) {}

  reset(): void {
    this.average = 0;
    this.count = 0;
  }

  add(loss: number): number {
    this.count++;
    this.average = this.beta * this.average + (1 - this.beta) * loss;
    return this.value;
  }

  get value(): number {
    return this.count === 0 ? NaN : this.average / (1 - Math.pow(this.beta, this.count));
  }

  /** For checkpoints: resuming continues the same average. */
  toJSON(): { average: number; count: number; beta: number } {
    return { average: this.average, count: this.count, beta: this.beta };
  }

  static fromJSON(json: { average: number; count: number; beta: number }): SmoothedLoss {
    const s = new SmoothedLoss(json.beta);
    s.average = json.average;
    s.count = json.count;
    return s;
  }
}

/** Options of `Learner.lrFind`. */
export interface LrFindOptions {
  /** First lr of the sweep. Default 1e-7. */
  startLr?: number;
  /** Last lr of the sweep. Default 10. */
  endLr?: number;
  /** Steps of the sweep. Default 100. */
  numIt?: number;
  /** Stop once the smoothed loss exceeds 4x the best one. Default true. */
  stopDiv?: boolean;
}

export { LR_FIND_DEFAULTS } from '../defaults';

/** What the finder measured and what it suggests. */
export interface LrFindResult {
  /** lr of every step taken. */
  lrs: number[];
  /** Smoothed loss after every step. */
  losses: number[];
  /** The 'valley' suggestion. */
  valley: number;
  /** Index into lrs/losses of the suggestion. */
  valleyIndex: number;
}

/**
 * The 'valley' suggestion: the longest strictly decreasing subsequence of the
 * loss curve, and the point start + floor(len/3) + floor(len/6) of it, where
 * start = end - len (the reference's arithmetic: roughly the middle of the
 * steep descent). The ends are
 * trimmed first as the reference does (the first 10% of numIt and the last 5
 * points are noise from the warm start and the divergence).
 */
export function valley(lrs: readonly number[], losses: readonly number[], numIt = lrs.length): { lr: number; index: number } {
  if (lrs.length !== losses.length || lrs.length === 0) {
    throw new Error(`valley: expected equal, non-empty lr and loss lists, got ${lrs.length} and ${losses.length}`);
  }
  let offset = Math.floor(numIt / 10);
  let end = lrs.length - 5;
  if (end - offset < 2) {
    // Too short a sweep to trim: use all of it.
    offset = 0;
    end = lrs.length;
  }
  const curve = losses.slice(offset, end);
  const { start, stop } = longestDecreasingRun(curve);
  const third = (stop - start) / 3;
  const index = Math.min(lrs.length - 1, Math.max(0, offset + start + Math.floor(third) + Math.floor(third / 2)));
  return { lr: lrs[index], index };
}

/**
 * Start and end index of the longest strictly decreasing subsequence, where
 * start is the end index minus the subsequence's length (as the reference counts it).
 */
function longestDecreasingRun(losses: readonly number[]): { start: number; stop: number } {
  const n = losses.length;
  const lengthEndingAt = new Array<number>(n).fill(1);
  let stop = 0;
  let start = 0;
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i] < losses[j] && lengthEndingAt[i] < lengthEndingAt[j] + 1) lengthEndingAt[i] = lengthEndingAt[j] + 1;
      if (lengthEndingAt[stop] < lengthEndingAt[i]) {
        stop = i;
        start = stop - lengthEndingAt[stop];
      }
    }
  }
  return { start, stop };
}
