/** Watching one value of the epoch records: which value, which direction is better, and the best so far. */
import type { EpochRecord } from '../types';

/** Which direction is better for a monitored value. */
export type Comparison = 'min' | 'max';

export interface MonitorOptions {
  /** 'valid_loss' (default), 'train_loss', or a metric name such as 'accuracy'. */
  monitor?: string;
  /** Default: 'min' for losses and error rates, 'max' otherwise. */
  comparison?: Comparison;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
}

/** Reads the monitored value from an epoch record: 'valid_loss', 'train_loss' or a metric name. */
export function monitoredValue(record: EpochRecord, monitor: string): number {
  if (monitor === 'valid_loss') return record.validLoss;
  if (monitor === 'train_loss') return record.trainLoss;
  const value = record.metrics[monitor];
  if (value === undefined) {
    const known = ['valid_loss', 'train_loss', ...Object.keys(record.metrics)].join(', ');
    throw new Error(`monitor: unknown value "${monitor}"; known: ${known}`);
  }
  return value;
}

/** Losses are minimised, everything else (accuracy, top-k) maximised, unless told. */
export function defaultComparison(monitor: string): Comparison {
  return /loss|error/.test(monitor) ? 'min' : 'max';
}

/** Tracks whether a monitored value improved by more than minDelta. */
export class Tracker {
  readonly monitor: string;
  readonly comparison: Comparison;
  readonly minDelta: number;
  best: number;

  constructor(options: MonitorOptions) {
    this.monitor = options.monitor ?? 'valid_loss';
    this.comparison = options.comparison ?? defaultComparison(this.monitor);
    this.minDelta = options.minDelta ?? 0;
    this.best = this.comparison === 'min' ? Infinity : -Infinity;
  }

  improved(record: EpochRecord): boolean {
    const value = monitoredValue(record, this.monitor);
    const better = this.comparison === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta;
    if (better) this.best = value;
    return better;
  }
}
