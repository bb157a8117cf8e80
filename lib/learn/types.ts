/**
 * The contract between the training loop and its callbacks: the events, the
 * narrow `FitControl` a callback gets (never the Learner itself), and the
 * record of one epoch. Every feature of a fit — the schedule, mixing,
 * progressive resizing, the recorder, early stopping, saving the best model,
 * logs — is a callback written against this file alone.
 */
import type { Batch, LoaderSettings } from '../data/types';
import type { NativeMix, NativeParam } from '../native';
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

/** The events of a fit, in the order the loop emits them. */
export const FIT_EVENTS = ['beforeFit', 'beforeEpoch', 'beforeBatch', 'afterBatch', 'afterEpoch', 'afterFit'] as const;
export type FitEvent = (typeof FIT_EVENTS)[number];

/**
 * What a callback sees of a running fit and may change. Fields a callback may
 * set are marked; the loop reads them right after the event that allows it.
 */
export interface FitControl {
  /** 0-based epoch within the fit, and the fit's epoch count. */
  epoch: number;
  readonly epochs: number;
  /** Progressive-resizing phase of the current epoch. */
  phase: number;
  /**
   * Loader settings of the current epoch. Set in `beforeEpoch` (progressive resizing does) to
   * change the size and batch size of the epoch's training and validation batches.
   */
  settings: LoaderSettings;
  /** This process's rank in a data-parallel group, and the group's size (0 and 1 alone). */
  readonly rank: number;
  readonly worldSize: number;
  /** The loaders' epoch index of the current epoch (counted over the learner's life; seeds shuffles and mix draws). */
  readonly dataEpoch: number;
  /** Training steps done in this fit, and the fit's total. */
  step: number;
  readonly totalSteps: number;
  /** Batch index within the current pass. */
  batchIndex: number;
  /** Batches in the current pass (known from the first `beforeBatch` of the pass). */
  batchCount: number;
  /** True during training batches, false during validation batches. */
  training: boolean;
  /** The batch being processed (batch hooks only). */
  batch?: Batch;
  /** The mix of the current training batch. Set in `beforeBatch` (the mix callback does); validation batches never have one. */
  mix?: NativeMix;
  /** lrs and momentum of the current training step. Set in `beforeBatch` (the scheduler does; later callbacks may adjust it). */
  hyper?: StepHyper;
  /** Loss of the last batch (training: before smoothing). */
  loss?: number;
  /** Smoothed training loss so far. */
  smoothLoss: number;
  /** The record of the epoch just finished (afterEpoch only). */
  record?: EpochRecord;
  /** Every record of this fit so far. */
  readonly records: EpochRecord[];
  /** False skips the validation pass of the current epoch (the lr finder trains only). */
  validate: boolean;
  /** Asks the loop to stop after the current batch (the reason is reported in the fit result). */
  stop(reason: string): void;
  /** Saves the learner (weights, optimizer state, settings), as `Learner.save`. */
  save(file: string): Promise<void>;
  /** Restores what `save` wrote, as `Learner.load`. */
  load(file: string): Promise<void>;
  /** Writes the inference model, as `Learner.export`. */
  exportModel(file: string): Promise<void>;
  /** The model's parameters: names, shapes, groups, whether they train. */
  parameters(): NativeParam[];
}

/** The name callbacks were written against before `FitControl`; the same interface. */
export type FitState = FitControl;

/** Hooks are optional; each may be async. */
export interface Callback {
  /** A name for logs and error messages. */
  readonly name?: string;
  /**
   * Callbacks run in ascending order, ties in the order given. The loop's own run first (the
   * scheduler at -20, progressive resizing at -30, mixing at -10); yours default to 0, so they see
   * and may adjust what those decided; the recorder runs at 50, after everything that changes a step.
   */
  readonly order?: number;
  beforeFit?(control: FitControl): void | Promise<void>;
  /** Before the epoch's loader exists: set `control.settings` here to change its size. */
  beforeEpoch?(control: FitControl): void | Promise<void>;
  /** Called for training and validation batches; `control.training` says which. */
  beforeBatch?(control: FitControl): void | Promise<void>;
  afterBatch?(control: FitControl): void | Promise<void>;
  /** Validation is done; `control.record` holds the epoch's line. */
  afterEpoch?(control: FitControl): void | Promise<void>;
  /** Runs also when the fit was stopped early or failed (then `error` is set). */
  afterFit?(control: FitControl, error?: unknown): void | Promise<void>;
}
