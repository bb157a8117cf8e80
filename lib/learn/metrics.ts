/**
 * Validation metrics. Each metric accumulates over the batches of one
 * validation pass and then reports a single number.
 */

/** What a metric sees of one evaluated batch. */
export interface EvalBatch {
  n: number;
  labels: Int32Array;
  /** Samples whose arg-max equals the label (computed natively). */
  correct: number;
  /** n*numClasses softmax probabilities; present when some metric `needsProbs`. */
  probs?: Float32Array;
  numClasses: number;
}

export interface Metric {
  readonly name: string;
  /** Whether `accumulate` needs the probabilities (they cost a copy from native memory). */
  readonly needsProbs: boolean;
  reset(): void;
  accumulate(batch: EvalBatch): void;
  value(): number;
  /**
   * Data-parallel validation: the accumulated state as numbers that add up across ranks, and
   * `setSums` to take the sums over every rank before `value()`. A metric without them cannot be
   * used by a Learner in a group of more than one process.
   */
  sums?(): number[];
  setSums?(sums: readonly number[]): void;
}

/** A metric that is a fraction of samples; `hits` counts them per batch. */
class FractionMetric implements Metric {
  private hitCount = 0;
  private total = 0;

  constructor(
    readonly name: string,
    readonly needsProbs: boolean,
    private readonly hits: (batch: EvalBatch) => number,
    private readonly complement = false,
  ) {}

  reset(): void {
    this.hitCount = 0;
    this.total = 0;
  }

  accumulate(batch: EvalBatch): void {
    this.hitCount += this.hits(batch);
    this.total += batch.n;
  }

  sums(): number[] {
    return [this.hitCount, this.total];
  }

  setSums([hits, total]: readonly number[]): void {
    this.hitCount = hits;
    this.total = total;
  }

  value(): number {
    if (this.total === 0) return NaN;
    const fraction = this.hitCount / this.total;
    return this.complement ? 1 - fraction : fraction;
  }
}

/** Fraction of samples whose most probable class is the label. */
export function accuracy(): Metric {
  return new FractionMetric('accuracy', false, (b) => b.correct);
}

/** 1 - accuracy. */
export function errorRate(): Metric {
  return new FractionMetric('error_rate', false, (b) => b.correct, true);
}

/** Fraction of samples whose label is among the k most probable classes. */
export function topK(k = 5): Metric {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topK: expected an integer k >= 1, got ${k}`);
  return new FractionMetric(`top_${k}_accuracy`, true, (b) => {
    if (!b.probs) throw new Error('topK: the batch has no probabilities');
    return countTopK(b.probs, b.labels, b.numClasses, k);
  });
}

/** Samples whose label's probability is beaten by fewer than k other classes. */
export function countTopK(probs: Float32Array, labels: Int32Array, numClasses: number, k: number): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = i * numClasses;
    const target = probs[row + labels[i]];
    let higher = 0;
    for (let c = 0; c < numClasses; c++) if (probs[row + c] > target) higher++;
    if (higher < k) hits++;
  }
  return hits;
}

/** Index of the largest value in each row of an n x numClasses array. */
export function argmaxRows(probs: Float32Array, numClasses: number): Int32Array {
  const n = probs.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[i * numClasses + c] > probs[i * numClasses + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Fraction of rows whose arg-max equals the label. */
export function accuracyOf(probs: Float32Array, labels: Int32Array, numClasses: number): number {
  if (labels.length === 0) return NaN;
  const predicted = argmaxRows(probs, numClasses);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

/** Counts per (actual, predicted) pair: row = actual class, column = predicted. */
export function confusionMatrix(probs: Float32Array, labels: Int32Array, numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  const predicted = argmaxRows(probs, numClasses);
  for (let i = 0; i < labels.length; i++) m[labels[i]][predicted[i]]++;
  return m;
}
