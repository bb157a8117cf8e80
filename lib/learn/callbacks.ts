/**
 * Callbacks: small objects with named hooks that the Learner calls around a
 * fit, each epoch and each batch. Behaviour such as early stopping, keeping
 * the best weights or writing a CSV log is built on them, not on flags inside
 * the training loop.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { NativeMix } from '../native';
import type { Batch, LoaderSettings } from '../data/types';
import type { Learner } from './learner';
import type { StepHyper } from './schedule';

/** One line of the training table: what happened in one epoch. */
export interface EpochRecord {
  /** 0-based epoch index within the fit. */
  epoch: number;
  /** Progressive-resizing phase (0 when the fit has one). */
  phase: number;
  /** Image size and batch size of the epoch's training batches. */
  size: number;
  bs: number;
  /** Smoothed training loss at the end of the epoch (beta 0.98, debiased, over the whole fit). */
  trainLoss: number;
  /** Mean validation loss over all validation items; NaN when validation was skipped. */
  validLoss: number;
  /** Metric name -> value on the validation set. */
  metrics: Record<string, number>;
  /** Wall time of the epoch (training and validation) in seconds. */
  seconds: number;
}

/** The state shared with every hook during a fit. */
export interface FitState {
  readonly learner: Learner;
  /** 0-based epoch within the fit, and the fit's epoch count. */
  epoch: number;
  readonly epochs: number;
  /** Progressive-resizing phase of the current epoch. */
  phase: number;
  /** Loader settings of the current epoch. */
  settings: LoaderSettings;
  /** Training steps done in this fit, and the fit's total. */
  step: number;
  readonly totalSteps: number;
  /** Batch index within the current pass. */
  batchIndex: number;
  /** Batches in the current pass. */
  batchCount: number;
  /** True during training batches, false during validation batches. */
  training: boolean;
  /** The batch being processed (batch hooks only). */
  batch?: Batch;
  /** The mix applied to the current training batch, if any (validation batches never have one). */
  mix?: NativeMix;
  /** lrs and momentum of the current training step. */
  hyper?: StepHyper;
  /** Loss of the last batch (training: before smoothing). */
  loss?: number;
  /** Smoothed training loss so far. */
  smoothLoss: number;
  /** The record of the epoch just finished (afterEpoch only). */
  record?: EpochRecord;
  /** Every record of this fit so far. */
  readonly records: EpochRecord[];
  /** Asks the learner to stop after the current batch (the reason is reported in the fit result). */
  stop(reason: string): void;
}

/** Hooks are optional; each may be async. */
export interface Callback {
  /** A name for logs and error messages. */
  readonly name?: string;
  beforeFit?(state: FitState): void | Promise<void>;
  beforeEpoch?(state: FitState): void | Promise<void>;
  /** Called for training and validation batches; `state.training` says which. */
  beforeBatch?(state: FitState): void | Promise<void>;
  afterBatch?(state: FitState): void | Promise<void>;
  /** Validation is done; `state.record` holds the epoch's line. */
  afterEpoch?(state: FitState): void | Promise<void>;
  /** Runs also when the fit was stopped early or failed (then `error` is set). */
  afterFit?(state: FitState, error?: unknown): void | Promise<void>;
}

/** Which direction is better for a monitored value. */
export type Comparison = 'min' | 'max';

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
class Tracker {
  best: number;

  constructor(
    readonly monitor: string,
    readonly comparison: Comparison,
    readonly minDelta: number,
  ) {
    this.best = comparison === 'min' ? Infinity : -Infinity;
  }

  improved(record: EpochRecord): boolean {
    const value = monitoredValue(record, this.monitor);
    const better =
      this.comparison === 'min' ? value < this.best - this.minDelta : value > this.best + this.minDelta;
    if (better) this.best = value;
    return better;
  }
}

export interface MonitorOptions {
  /** 'valid_loss' (default), 'train_loss', or a metric name such as 'accuracy'. */
  monitor?: string;
  /** Default: 'min' for losses and error rates, 'max' otherwise. */
  comparison?: Comparison;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
}

/** Stops the fit when the monitored value has not improved for `patience` epochs. */
export class EarlyStopping implements Callback {
  readonly name = 'EarlyStopping';
  private tracker!: Tracker;
  private wait = 0;

  constructor(private readonly options: MonitorOptions & { /** Default 1. */ patience?: number } = {}) {}

  beforeFit(): void {
    const monitor = this.options.monitor ?? 'valid_loss';
    this.tracker = new Tracker(monitor, this.options.comparison ?? defaultComparison(monitor), this.options.minDelta ?? 0);
    this.wait = 0;
  }

  afterEpoch(state: FitState): void {
    if (!state.record) return;
    if (this.tracker.improved(state.record)) {
      this.wait = 0;
      return;
    }
    this.wait++;
    if (this.wait >= (this.options.patience ?? 1)) {
      state.stop(`early stopping: no improvement in ${this.tracker.monitor} for ${this.wait} epochs`);
    }
  }
}

/** Saves the learner whenever the monitored value improves; by default reloads the best weights at the end. */
export class SaveBestModel implements Callback {
  readonly name = 'SaveBestModel';
  private tracker!: Tracker;
  /** Epoch of the best record so far (-1 before any). */
  bestEpoch = -1;

  constructor(
    private readonly file: string,
    private readonly options: MonitorOptions & { /** Reload the best weights after the fit. Default true. */ loadAtEnd?: boolean } = {},
  ) {}

  get best(): number {
    return this.tracker?.best ?? NaN;
  }

  beforeFit(): void {
    const monitor = this.options.monitor ?? 'valid_loss';
    this.tracker = new Tracker(monitor, this.options.comparison ?? defaultComparison(monitor), this.options.minDelta ?? 0);
    this.bestEpoch = -1;
  }

  async afterEpoch(state: FitState): Promise<void> {
    if (!state.record || !this.tracker.improved(state.record)) return;
    this.bestEpoch = state.record.epoch;
    await state.learner.save(this.file);
  }

  async afterFit(state: FitState, error?: unknown): Promise<void> {
    if (error === undefined && (this.options.loadAtEnd ?? true) && this.bestEpoch >= 0) {
      await state.learner.load(this.file);
    }
  }
}

/** Appends one CSV line per epoch: epoch, train_loss, valid_loss, metrics..., time (seconds). */
export class CsvLogger implements Callback {
  readonly name = 'CsvLogger';
  private wroteHeader = false;

  constructor(
    private readonly file: string,
    private readonly options: { /** Keep an existing file's lines. Default false. */ append?: boolean } = {},
  ) {}

  beforeFit(): void {
    fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
    this.wroteHeader = (this.options.append ?? false) && fs.existsSync(this.file);
    if (!this.wroteHeader) fs.writeFileSync(this.file, '');
  }

  async afterEpoch(state: FitState): Promise<void> {
    const r = state.record;
    if (!r) return;
    const names = Object.keys(r.metrics);
    let text = '';
    if (!this.wroteHeader) {
      text += ['epoch', 'phase', 'size', 'train_loss', 'valid_loss', ...names, 'time'].join(',') + '\n';
      this.wroteHeader = true;
    }
    const cells = [r.epoch, r.phase, r.size, r.trainLoss, r.validLoss, ...names.map((n) => r.metrics[n]), r.seconds.toFixed(3)];
    text += cells.join(',') + '\n';
    await fs.promises.appendFile(this.file, text);
  }
}
