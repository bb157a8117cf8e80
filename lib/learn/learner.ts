/**
 * The Learner: orchestrates a DataLoaders (lib/data) and a native Learner
 * (model, optimizer, loss on its own thread). Every decision is made here:
 * the lr and momentum of each step, the mix partners, when to validate, when
 * to stop; every tensor stays native.
 *
 * All training entry points (fit, fitOneCycle, fineTune, fitPhases) compile to
 * one plan: a list of stages, each with its frozen groups, its schedule and its
 * epochs (image size and batch size per epoch). A plan and a position in it are
 * plain data, so an interrupted fit can be saved and resumed at the same step.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { announceDevice, native, type NativeBatch, type NativeLearner, type NativeMix } from '../native';
import type { Batch, DataLoaders, LoaderSettings } from '../data/types';
import { Random } from '../data/random';
import { IMAGENET_STATS, checkStats } from '../data/stats';
import type { Callback, EpochRecord, FitState } from './callbacks';
import { SmoothedLoss, valley, LR_FIND_DEFAULTS, type LrFindOptions, type LrFindResult } from './lr-find';
import { accuracy, accuracyOf, type Metric } from './metrics';
import { sampleMix, type MixOptions } from './mixup';
import {
  ConstantSchedule,
  ExponentialSchedule,
  OneCycleSchedule,
  fineTuneStages,
  groupLrs,
  scheduleFromJSON,
  type LrSpec,
  type OneCycleOptions,
  type ScheduleJSON,
  type StepHyper,
} from './schedule';
import { combineTta, TTA_DEFAULTS, type TtaOptions } from './tta';

/** How inputs are normalised on the device: the data's stats, ImageNet's, explicit ones, or none (x/255 only). */
export type LearnerNormalize = 'data' | 'imagenet' | { mean: number[]; std: number[] } | null;

/** The training loss: plain cross entropy or label-smoothed cross entropy (eps default 0.1). */
export type LossOption = 'crossEntropy' | { kind: 'labelSmoothing'; eps?: number };

export const LABEL_SMOOTHING_EPS = 0.1;

/** Optimizer settings; defaults are the reference's Adam (decoupled weight decay). */
export interface OptimizerOptions {
  /** Default 'adamw'. */
  kind?: 'adamw' | 'sgd';
  /** Default 0.01; never applied to biases and norm parameters. */
  weightDecay?: number;
  /** Adam beta2 ("sqr_mom"). Default 0.99. */
  beta2?: number;
  /** Adam epsilon. Default 1e-5. */
  eps?: number;
}

export interface LearnerOptions {
  /** Training and validation data. */
  data: DataLoaders;
  /** A model name from `native().modelNames()`, e.g. 'xresnet18', 'resnet34'. Default 'xresnet50'. */
  arch?: string;
  /** Class names; default `data.classes`. */
  classes?: readonly string[];
  /** 'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N'. Default 'auto'. */
  device?: string;
  /** Mixed precision on CUDA. Default 'none'. */
  amp?: 'none' | 'bf16' | 'fp16';
  /** Default 'data' (the loaders' stats; none when they have none). */
  normalize?: LearnerNormalize;
  /** Default 'crossEntropy'. */
  lossFn?: LossOption;
  /** Mixup or CutMix on training batches. Default none. */
  mix?: MixOptions | null;
  /** Validation metrics. Default [accuracy()]. */
  metrics?: Metric[];
  callbacks?: Callback[];
  /** Seeds the initial weights, native randomness and mix draws. Default 0. (Shuffles and
   * augmentation are seeded by the DataLoaders' own seed.) */
  seed?: number;
  /** Image size and batch size used when a call does not give them. Defaults 224 and 64. */
  size?: number;
  bs?: number;
  optimizer?: OptimizerOptions;
}

/** Where the loaders' settings come from for one call. */
export interface SettingsOptions {
  /** Default: the size of the last fit, or the learner's `size`. */
  size?: number;
  /** Default: the batch size of the last fit, or the learner's `bs`. */
  bs?: number;
}

/** One progressive-resizing phase. */
export interface Phase {
  size: number;
  epochs: number;
  /** Default: the learner's current batch size. */
  bs?: number;
  /** Peak lr of this phase's own cycle ('perPhase' only). Default: the fitPhases lr. */
  lr?: LrSpec;
  /** Run this phase as fineTune instead of fitOneCycle ('perPhase' only). */
  fineTune?: boolean | FineTuneOptions;
}

export interface FineTuneOptions {
  /** Epochs with every group but the head frozen. Default 1. */
  freezeEpochs?: number;
  /** The stem's lr is baseLr / lrMult after unfreezing. Default 100. */
  lrMult?: number;
  /** Warm-up fraction of the unfrozen cycle. Default 0.3. */
  pctStart?: number;
  /** div of the unfrozen cycle. Default 5. */
  div?: number;
}

export interface FitPhasesOptions extends OneCycleOptions {
  /** 'span': one cycle over the steps of all phases (default); 'perPhase': a fresh cycle (or fineTune) per phase. */
  cycle?: 'span' | 'perPhase';
}

/** What a fit returns. */
export interface FitResult {
  records: EpochRecord[];
  /** Why the fit stopped before its end (SIGINT, early stopping...), if it did. */
  stopped?: string;
  /** The resumable checkpoint written when it stopped, if one was asked for. */
  checkpoint?: string;
}

/** Validation loss, metrics, and the inputs of a confusion matrix. */
export interface ValidationResult {
  loss: number;
  metrics: Record<string, number>;
  /** n*numClasses probabilities in loader order (present when asked for with `probs: true`). */
  probs?: Float32Array;
  /** n labels in loader order. */
  targets: Int32Array;
  /** Dataset indices (into data.validItems) in loader order. */
  indices: Int32Array;
}

export interface TtaResult {
  /** n*numClasses combined probabilities, in the order of `indices`. */
  probs: Float32Array;
  targets: Int32Array;
  indices: Int32Array;
  accuracy: number;
}

export interface PredictResult {
  /** n*numClasses softmax probabilities. */
  probs: Float32Array;
  /** Most probable class index per image. */
  predicted: Int32Array;
  /** Its name. */
  labels: string[];
}

/** Pixels to predict on: n images, h x w, uint8 RGB NHWC (what lib/data produces). */
export type PredictInput = Pick<NativeBatch, 'images' | 'n' | 'h' | 'w' | 'augment'>;

/** Training history of the last fit, for plots. */
export interface History {
  /** lr per group at every step. */
  lrs: number[][];
  moms: number[];
  /** Raw and smoothed training loss at every step. */
  losses: number[];
  smoothLosses: number[];
  records: EpochRecord[];
}

interface EpochPlan {
  size: number;
  bs: number;
  phase: number;
}

interface StagePlan {
  /** Freeze parameter groups [0, freezeTo) for this stage. */
  freezeTo: number;
  schedule: ScheduleJSON;
  epochs: EpochPlan[];
}

interface Position {
  stage: number;
  epochInStage: number;
  /** Training batches of the current epoch already done. */
  batch: number;
  stepInStage: number;
  fitEpoch: number;
  fitStep: number;
}

const START: Position = { stage: 0, epochInStage: 0, batch: 0, stepInStage: 0, fitEpoch: 0, fitStep: 0 };

/** What a checkpoint's meta holds. */
interface CheckpointMeta {
  format: 'torchts-learner' | 'torchts-export';
  version: 1;
  arch: string;
  classes: string[];
  normalize: { mean: number[]; std: number[] } | null;
  size: number;
  frozenTo: number;
  dataEpoch: number;
  resume?: {
    stages: StagePlan[];
    position: Position;
    smooth: { average: number; count: number; beta: number };
    history: History;
  };
}

const FORMAT_VERSION = 1;

function emptyHistory(): History {
  return { lrs: [], moms: [], losses: [], smoothLosses: [], records: [] };
}

/** The mutable state handed to callbacks. */
class FitStateImpl implements FitState {
  epoch = 0;
  phase = 0;
  step = 0;
  batchIndex = 0;
  batchCount = 0;
  training = true;
  batch?: Batch;
  mix?: NativeMix;
  hyper?: StepHyper;
  loss?: number;
  record?: EpochRecord;
  stopReason?: string;

  constructor(
    readonly learner: Learner,
    readonly epochs: number,
    readonly totalSteps: number,
    public settings: LoaderSettings,
    private readonly smooth: SmoothedLoss,
    readonly records: EpochRecord[],
  ) {}

  get smoothLoss(): number {
    return this.smooth.value;
  }

  stop(reason: string): void {
    this.stopReason ??= reason;
  }
}

export class Learner {
  readonly data: DataLoaders;
  readonly arch: string;
  readonly classes: readonly string[];
  readonly seed: number;
  readonly metrics: Metric[];
  readonly callbacks: Callback[];
  readonly mix: MixOptions | null;
  /** Normalisation applied on the device (null: x/255 only). */
  readonly normalize: { mean: number[]; std: number[] } | null;
  /** The native learner (for what this class does not wrap, e.g. `loadTorchvision`). */
  readonly model: NativeLearner;
  /** Loader settings of the last fit (validate, tta and lrFind use them by default). */
  settings: LoaderSettings;
  /** History of the last fit. */
  history: History = emptyHistory();

  private frozenTo = 0;
  /** Training epochs run over the learner's life: the loaders' epoch index, so no two epochs share a shuffle. */
  private dataEpoch = 0;
  private busy = false;
  private pendingStop?: { reason: string; checkpoint?: string };
  private currentState?: FitStateImpl;

  constructor(options: LearnerOptions) {
    if (!options || !options.data) throw new Error('Learner: options.data (a DataLoaders) is required');
    this.data = options.data;
    this.arch = options.arch ?? 'xresnet50';
    this.classes = [...(options.classes ?? options.data.classes)];
    if (this.classes.length < 2) throw new Error(`Learner: expected at least 2 classes, got ${this.classes.length}`);
    this.seed = options.seed ?? 0;
    this.metrics = options.metrics ?? [accuracy()];
    this.callbacks = [...(options.callbacks ?? [])];
    this.mix = options.mix ?? null;
    this.normalize = resolveNormalize(options.normalize ?? 'data', options.data);
    this.settings = { size: options.size ?? 224, bs: options.bs ?? 64 };
    checkSettings(this.settings);
    const binding = native();
    if (!binding.modelNames().includes(this.arch)) {
      throw new Error(`Learner: unknown arch "${this.arch}"; known: ${binding.modelNames().join(', ')}`);
    }
    const opt = options.optimizer ?? {};
    binding.manualSeed(this.seed);
    this.model = new binding.Learner({
      arch: this.arch,
      numClasses: this.classes.length,
      device: announceDevice(options.device ?? 'auto'),
      optimizer: opt.kind ?? 'adamw',
      weightDecay: opt.weightDecay ?? 0.01,
      beta2: opt.beta2 ?? 0.99,
      eps: opt.eps ?? 1e-5,
      labelSmoothing: labelSmoothingOf(options.lossFn ?? 'crossEntropy'),
      mean: this.normalize?.mean ?? null,
      std: this.normalize?.std ?? null,
      amp: options.amp ?? 'none',
      seed: this.seed,
    });
  }

  /** Parameter groups (stem, body, head). */
  get groupCount(): number {
    return this.model.groupCount;
  }

  addCallback(callback: Callback): void {
    this.callbacks.push(callback);
  }

  removeCallback(callback: Callback): void {
    const i = this.callbacks.indexOf(callback);
    if (i >= 0) this.callbacks.splice(i, 1);
  }

  /**
   * Asks a running fit to stop after the current batch (safe from a SIGINT
   * handler). With `checkpoint`, the learner is saved there with its position
   * in the schedule, and `resume(checkpoint)` continues at the next batch.
   * Returns false (and does nothing) when no fit is running.
   */
  requestStop(reason = 'stopped', options: { checkpoint?: string } = {}): boolean {
    // Outside a fit there is nothing to stop; a stale request must not cut the next fit short.
    if (!this.currentState) return false;
    this.pendingStop ??= { reason, checkpoint: options.checkpoint };
    this.currentState.stop(reason);
    return true;
  }

  private stopRequest(): { reason: string; checkpoint?: string } | undefined {
    return this.pendingStop;
  }

  /** Freezes parameter groups [0, upTo) (default: all but the head), and clears the optimizer state. */
  freeze(upTo = this.groupCount - 1): void {
    this.setFrozen(upTo);
  }

  unfreeze(): void {
    this.setFrozen(0);
  }

  private setFrozen(upTo: number): void {
    if (!Number.isInteger(upTo) || upTo < 0 || upTo >= this.groupCount) {
      throw new Error(`freeze: expected an integer in [0, ${this.groupCount - 1}], got ${upTo}`);
    }
    if (upTo === this.frozenTo) return;
    this.model.freeze(upTo);
    this.model.resetOptimizer();
    this.frozenTo = upTo;
  }

  /** `epochs` epochs at constant lr(s) and momentum 0.9. */
  fit(epochs: number, lr: LrSpec = 1e-3, options: SettingsOptions & { mom?: number } = {}): Promise<FitResult> {
    const settings = this.resolveSettings(options);
    const epochPlans = repeatEpochs(epochs, settings, 0);
    const lrs = groupLrs(lr, this.groupCount);
    const schedule = new ConstantSchedule(this.countSteps(epochPlans), lrs, options.mom ?? 0.9);
    return this.runPlan([{ freezeTo: this.frozenTo, schedule: schedule.toJSON(), epochs: epochPlans }], START);
  }

  /** The one-cycle policy over `epochs` epochs (defaults: pctStart 0.25, div 25, divFinal 1e5, moms 0.95/0.85/0.95). */
  fitOneCycle(epochs: number, lrMax: LrSpec = 1e-3, options: OneCycleOptions & SettingsOptions = {}): Promise<FitResult> {
    const settings = this.resolveSettings(options);
    const epochPlans = repeatEpochs(epochs, settings, 0);
    return this.runPlan([this.oneCycleStage(epochPlans, lrMax, options, this.frozenTo)], START);
  }

  /**
   * Transfer learning as the reference does it: `freezeEpochs` one-cycle epochs
   * with only the head training (pctStart 0.99), then all groups for `epochs`
   * with lrs from baseLr/2/lrMult (stem) to baseLr/2 (head), pctStart 0.3, div 5.
   */
  fineTune(epochs: number, baseLr = 2e-3, options: FineTuneOptions & SettingsOptions = {}): Promise<FitResult> {
    const settings = this.resolveSettings(options);
    return this.runPlan(this.fineTunePlan(epochs, baseLr, options, settings, 0), START);
  }

  /**
   * Progressive resizing: phases of image size, batch size and epochs. With
   * cycle 'span' one one-cycle runs over the steps of every phase; with
   * 'perPhase' each phase gets its own cycle (or fineTune), the book's shape.
   * The loaders switch sizes between phases without rebuilding the dataset.
   */
  fitPhases(phases: readonly Phase[], lrMax: LrSpec = 1e-3, options: FitPhasesOptions = {}): Promise<FitResult> {
    if (phases.length === 0) throw new Error('fitPhases: expected at least one phase');
    const epochPlans = phases.map((phase, i) => {
      const settings = { size: phase.size, bs: phase.bs ?? this.settings.bs };
      checkSettings(settings);
      return repeatEpochs(phase.epochs, settings, i);
    });
    const cycle = options.cycle ?? 'span';
    if (cycle === 'span') {
      if (phases.some((p) => p.lr !== undefined || p.fineTune)) {
        throw new Error("fitPhases: per-phase lr and fineTune need cycle: 'perPhase'");
      }
      return this.runPlan([this.oneCycleStage(epochPlans.flat(), lrMax, options, this.frozenTo)], START);
    }
    const stages: StagePlan[] = [];
    let frozenTo = this.frozenTo;
    phases.forEach((phase, i) => {
      const lr = phase.lr ?? lrMax;
      if (phase.fineTune) {
        if (typeof lr !== 'number') throw new Error(`fitPhases: phase ${i} runs fineTune and needs one number as lr`);
        const ft = typeof phase.fineTune === 'object' ? phase.fineTune : {};
        const settings = { size: phase.size, bs: phase.bs ?? this.settings.bs };
        stages.push(...this.fineTunePlan(phase.epochs, lr, ft, settings, i));
      } else {
        stages.push(this.oneCycleStage(epochPlans[i], lr, options, frozenTo));
      }
      frozenTo = stages[stages.length - 1].freezeTo;
    });
    return this.runPlan(stages, START);
  }

  /** Continues the fit saved in `file` (by `requestStop` with a checkpoint) at the step where it stopped. */
  async resume(file: string): Promise<FitResult> {
    const meta = await this.loadMeta(file);
    if (!meta.resume) throw new Error(`resume: ${file} holds no interrupted fit (it was saved outside a fit)`);
    this.frozenTo = meta.frozenTo;
    this.dataEpoch = meta.dataEpoch;
    this.history = meta.resume.history;
    const smooth = SmoothedLoss.fromJSON(meta.resume.smooth);
    return this.runPlan(meta.resume.stages, meta.resume.position, smooth);
  }

  private oneCycleStage(epochs: EpochPlan[], lrMax: LrSpec, options: OneCycleOptions, freezeTo: number): StagePlan {
    const schedule = new OneCycleSchedule(this.countSteps(epochs), groupLrs(lrMax, this.groupCount), {
      pctStart: options.pctStart,
      div: options.div,
      divFinal: options.divFinal,
      moms: options.moms,
    });
    return { freezeTo, schedule: schedule.toJSON(), epochs };
  }

  private fineTunePlan(
    epochs: number,
    baseLr: number,
    options: FineTuneOptions,
    settings: LoaderSettings,
    phase: number,
  ): StagePlan[] {
    return fineTuneStages(epochs, baseLr, this.groupCount, options).map((stage) =>
      this.oneCycleStage(repeatEpochs(stage.epochs, settings, phase), stage.lr, stage.options, stage.freezeTo),
    );
  }

  /** Training steps of a list of epochs (each loader drops its last partial batch). */
  private countSteps(epochs: readonly EpochPlan[]): number {
    const perSettings = new Map<string, number>();
    let total = 0;
    for (const e of epochs) {
      const key = `${e.size}x${e.bs}`;
      let n = perSettings.get(key);
      if (n === undefined) {
        n = this.data.train({ size: e.size, bs: e.bs }, 0).length;
        perSettings.set(key, n);
      }
      total += n;
    }
    if (total < 1) {
      throw new Error(
        `fit: the training set (${this.data.trainItems.length} items) is smaller than one batch; lower bs`,
      );
    }
    return total;
  }

  private resolveSettings(options: SettingsOptions): LoaderSettings {
    const settings = { size: options.size ?? this.settings.size, bs: options.bs ?? this.settings.bs };
    checkSettings(settings);
    return settings;
  }

  private async runPlan(stages: StagePlan[], from: Position, smooth = new SmoothedLoss(0.98)): Promise<FitResult> {
    this.enter();
    const allEpochs = stages.flatMap((s) => s.epochs);
    const totalSteps = stages.reduce((sum, s) => sum + scheduleFromJSON(s.schedule).totalSteps, 0);
    if (from === START) this.history = emptyHistory();
    this.pendingStop = undefined;
    const records = this.history.records;
    const state = new FitStateImpl(this, allEpochs.length, totalSteps, { ...this.settings }, smooth, records);
    state.step = from.fitStep;
    this.currentState = state;
    let error: unknown;
    let checkpoint: string | undefined;
    try {
      await this.emit('beforeFit', state);
      const pos = { ...from };
      for (; pos.stage < stages.length; pos.stage++, pos.epochInStage = 0, pos.stepInStage = 0) {
        const stage = stages[pos.stage];
        // Each stage is one fit of the reference (fine_tune's two, one per phase with 'perPhase'),
        // and its recorder restarts the smoothed loss at every fit.
        if (pos.epochInStage === 0 && pos.batch === 0) smooth.reset();
        this.setFrozen(stage.freezeTo);
        const schedule = scheduleFromJSON(stage.schedule);
        for (; pos.epochInStage < stage.epochs.length; pos.epochInStage++, pos.batch = 0) {
          const plan = stage.epochs[pos.epochInStage];
          const settings = { size: plan.size, bs: plan.bs };
          this.settings = { ...settings };
          state.settings = settings;
          state.phase = plan.phase;
          state.epoch = pos.fitEpoch;
          const finished = await this.runEpoch(state, schedule, pos, smooth);
          if (!finished) break;
          pos.fitEpoch++;
          this.dataEpoch++;
          if (state.stopReason) {
            pos.epochInStage++;
            pos.batch = 0;
            if (pos.epochInStage >= stage.epochs.length) {
              pos.stage++;
              pos.epochInStage = 0;
              pos.stepInStage = 0;
            }
            break;
          }
        }
        if (state.stopReason) break;
      }
      // Read through a method: TypeScript narrowed the field to undefined at the reset above.
      const requested = this.stopRequest();
      if (state.stopReason && requested?.checkpoint && pos.stage < stages.length) {
        checkpoint = requested.checkpoint;
        await this.saveWith(checkpoint, 'torchts-learner', {
          stages,
          position: pos,
          smooth: smooth.toJSON(),
          history: this.history,
        });
      }
    } catch (err) {
      error = err;
    }
    try {
      await this.emit('afterFit', state, error);
    } finally {
      this.currentState = undefined;
      this.pendingStop = undefined;
      this.leave();
    }
    if (error !== undefined) throw error;
    return { records: [...records], stopped: state.stopReason, checkpoint };
  }

  /** One training pass and its validation; false when stopped mid-epoch. */
  private async runEpoch(state: FitStateImpl, schedule: ReturnType<typeof scheduleFromJSON>, pos: Position, smooth: SmoothedLoss): Promise<boolean> {
    const started = performance.now();
    const loader = this.data.train(state.settings, this.dataEpoch);
    state.training = true;
    state.batchCount = loader.length;
    state.record = undefined;
    await this.emit('beforeEpoch', state);
    let index = 0;
    for await (const batch of loader) {
      if (index < pos.batch) {
        // Resuming: these batches were trained before the interruption.
        index++;
        continue;
      }
      const mix = this.mixFor(batch, this.dataEpoch, index);
      const hyper = schedule.at(pos.stepInStage);
      Object.assign(state, { batch, mix, hyper, batchIndex: index, loss: undefined, training: true });
      await this.emit('beforeBatch', state);
      const { loss } = await this.model.trainStep(toNative(batch, mix), hyper);
      smooth.add(loss);
      this.recordStep(hyper, loss, smooth.value);
      state.loss = loss;
      pos.stepInStage++;
      pos.fitStep++;
      state.step = pos.fitStep;
      index++;
      pos.batch = index;
      await this.emit('afterBatch', state);
      if (state.stopReason) return false;
    }
    const valid = await this.runValidation(state.settings, this.metrics.some((m) => m.needsProbs), state);
    const record: EpochRecord = {
      epoch: state.epoch,
      phase: state.phase,
      size: state.settings.size,
      bs: state.settings.bs,
      trainLoss: smooth.value,
      validLoss: valid.loss,
      metrics: valid.metrics,
      seconds: (performance.now() - started) / 1000,
    };
    state.records.push(record);
    state.record = record;
    state.batch = undefined;
    state.mix = undefined;
    await this.emit('afterEpoch', state);
    return true;
  }

  /** Mix draws come from a stream per (seed, epoch, batch), so resuming mid-epoch draws the same ones. */
  private mixFor(batch: Batch, epoch: number, index: number): NativeMix | undefined {
    if (!this.mix) return undefined;
    const size = batch.augment?.size ?? batch.w;
    const rng = Random.stream(this.seed, 'mix', epoch, index);
    return sampleMix(this.mix, batch.n, size, batch.augment?.size ?? batch.h, rng);
  }

  private recordStep(hyper: StepHyper, loss: number, smoothLoss: number): void {
    this.history.lrs.push([...hyper.lrs]);
    this.history.moms.push(hyper.mom);
    this.history.losses.push(loss);
    this.history.smoothLosses.push(smoothLoss);
  }

  /** Loss and metrics on the validation set (no mixing, no augmentation). */
  async validate(options: SettingsOptions & { probs?: boolean } = {}): Promise<ValidationResult> {
    const settings = this.resolveSettings(options);
    this.enter();
    try {
      return await this.runValidation(settings, options.probs ?? false);
    } finally {
      this.leave();
    }
  }

  private async runValidation(settings: LoaderSettings, wantProbs: boolean, state?: FitStateImpl): Promise<ValidationResult> {
    const loader = this.data.valid(settings);
    const needProbs = wantProbs || this.metrics.some((m) => m.needsProbs);
    for (const m of this.metrics) m.reset();
    const numClasses = this.classes.length;
    const probs: Float32Array[] = [];
    const targets: Int32Array[] = [];
    const indices: Int32Array[] = [];
    let lossSum = 0;
    let count = 0;
    if (state) {
      state.training = false;
      state.batchCount = loader.length;
      state.mix = undefined;
      state.hyper = undefined;
    }
    let index = 0;
    for await (const batch of loader) {
      if (state) {
        Object.assign(state, { batch, batchIndex: index, loss: undefined });
        await this.emit('beforeBatch', state);
      }
      const result = await this.model.evalStep(toNative(batch), { probs: needProbs });
      lossSum += result.loss * batch.n;
      count += batch.n;
      for (const m of this.metrics) {
        m.accumulate({ n: batch.n, labels: batch.labels, correct: result.correct, probs: result.probs, numClasses });
      }
      if (wantProbs && result.probs) probs.push(result.probs);
      targets.push(batch.labels);
      indices.push(batch.indices);
      if (state) {
        state.loss = result.loss;
        await this.emit('afterBatch', state);
      }
      index++;
    }
    const metrics: Record<string, number> = {};
    for (const m of this.metrics) metrics[m.name] = m.value();
    return {
      loss: count > 0 ? lossSum / count : NaN,
      metrics,
      probs: wantProbs ? concat(probs, (n) => new Float32Array(n)) : undefined,
      targets: concat(targets, (n) => new Int32Array(n)),
      indices: concat(indices, (n) => new Int32Array(n)),
    };
  }

  /**
   * Test-time augmentation: `n` passes over the validation set with the
   * training transforms and one plain pass, combined as
   * (1 - beta) * mean(augmented) + beta * plain, or by maximum with `useMax`.
   */
  async tta(options: TtaOptions & SettingsOptions = {}): Promise<TtaResult> {
    const n = options.n ?? TTA_DEFAULTS.n;
    if (!Number.isInteger(n) || n < 0) throw new Error(`tta n: expected an integer >= 0, got ${n}`);
    const settings = this.resolveSettings(options);
    this.enter();
    try {
      const numClasses = this.classes.length;
      const plain = await this.collectProbs(this.data.valid(settings));
      const rowOf = new Map<number, number>();
      plain.indices.forEach((datasetIndex, row) => rowOf.set(datasetIndex, row));
      const augmented: Float32Array[] = [];
      for (let pass = 0; pass < n; pass++) {
        const pass_ = await this.collectProbs(this.data.validAugmented(settings, pass));
        // Align each augmented pass to the plain pass's item order.
        const aligned = new Float32Array(plain.probs.length);
        pass_.indices.forEach((datasetIndex, row) => {
          const target = rowOf.get(datasetIndex);
          if (target === undefined) return;
          aligned.set(pass_.probs.subarray(row * numClasses, (row + 1) * numClasses), target * numClasses);
        });
        augmented.push(aligned);
      }
      const probs = combineTta(augmented, plain.probs, options);
      return { probs, targets: plain.targets, indices: plain.indices, accuracy: accuracyOf(probs, plain.targets, numClasses) };
    } finally {
      this.leave();
    }
  }

  private async collectProbs(loader: AsyncIterable<Batch>): Promise<{ probs: Float32Array; targets: Int32Array; indices: Int32Array }> {
    const probs: Float32Array[] = [];
    const targets: Int32Array[] = [];
    const indices: Int32Array[] = [];
    for await (const batch of loader) {
      probs.push(await this.model.predict(toNative(batch)));
      targets.push(batch.labels);
      indices.push(batch.indices);
    }
    return { probs: concat(probs, (n) => new Float32Array(n)), targets: concat(targets, (n) => new Int32Array(n)), indices: concat(indices, (n) => new Int32Array(n)) };
  }

  /** Class probabilities for a batch of images (uint8 RGB NHWC, e.g. from lib/data), in eval mode. */
  async predict(images: PredictInput): Promise<PredictResult> {
    return predictWith(this.model, this.classes, images);
  }

  /**
   * The learning-rate finder: lr grows exponentially from startLr to endLr over
   * numIt training steps (across epochs as needed), the loss is smoothed
   * (beta 0.98, debiased), and the sweep stops early once it exceeds 4x the
   * best. Weights, optimizer state and the data epoch are restored afterwards;
   * callbacks are not called.
   */
  async lrFind(options: LrFindOptions & SettingsOptions = {}): Promise<LrFindResult> {
    const o = { ...LR_FIND_DEFAULTS, ...stripUndefined(options) };
    if (!(o.startLr > 0 && o.endLr > o.startLr)) {
      throw new Error(`lrFind: expected 0 < startLr < endLr, got ${o.startLr} and ${o.endLr}`);
    }
    const settings = this.resolveSettings(options);
    this.enter();
    const saved = path.join(os.tmpdir(), `torchts-lrfind-${process.pid}-${Date.now()}.tsl`);
    const dataEpoch = this.dataEpoch;
    try {
      await this.model.save(saved, '{}');
      const schedule = new ExponentialSchedule(o.numIt, o.startLr, o.endLr, this.groupCount, 0.9);
      const smooth = new SmoothedLoss(0.98);
      const lrs: number[] = [];
      const losses: number[] = [];
      let best = Infinity;
      let step = 0;
      sweep: for (let epoch = 0; step < o.numIt; epoch++) {
        let index = 0;
        for await (const batch of this.data.train(settings, this.dataEpoch + epoch)) {
          const hyper = schedule.at(step);
          const mix = this.mixFor(batch, this.dataEpoch + epoch, index++);
          const { loss } = await this.model.trainStep(toNative(batch, mix), hyper);
          const value = smooth.add(loss);
          lrs.push(hyper.lrs[hyper.lrs.length - 1]);
          losses.push(value);
          step++;
          if (value < best) best = value;
          if ((o.stopDiv && (value > 4 * best || !Number.isFinite(value))) || step >= o.numIt) break sweep;
        }
      }
      const suggestion = valley(lrs, losses, o.numIt);
      return { lrs, losses, valley: suggestion.lr, valleyIndex: suggestion.index };
    } finally {
      try {
        if (fs.existsSync(saved)) await this.model.load(saved);
      } finally {
        fs.rmSync(saved, { force: true });
        this.dataEpoch = dataEpoch;
        this.leave();
      }
    }
  }

  /** Saves weights, optimizer state and the learner's settings (atomically). */
  async save(file: string): Promise<void> {
    await this.saveWith(file, 'torchts-learner');
  }

  /** Restores what `save` wrote: weights, optimizer state, frozen groups. Resolves with the checkpoint's epoch count. */
  async load(file: string): Promise<{ dataEpoch: number }> {
    const meta = await this.loadMeta(file);
    this.frozenTo = meta.frozenTo;
    return { dataEpoch: meta.dataEpoch };
  }

  /**
   * Writes what inference needs for `Predictor.load`: the weights (with their
   * meta) in `file`, and the same meta as JSON in `file + '.json'` so a
   * predictor knows which model to build before it reads the weights.
   */
  async export(file: string): Promise<void> {
    const meta = await this.saveWith(file, 'torchts-export');
    const sidecar = `${file}.json`;
    const tmp = `${sidecar}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(meta, null, 2));
    fs.renameSync(tmp, sidecar);
  }

  private async saveWith(file: string, format: CheckpointMeta['format'], resume?: CheckpointMeta['resume']): Promise<CheckpointMeta> {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const meta: CheckpointMeta = {
      format,
      version: FORMAT_VERSION,
      arch: this.arch,
      classes: [...this.classes],
      normalize: this.normalize,
      size: this.settings.size,
      frozenTo: this.frozenTo,
      dataEpoch: this.dataEpoch,
      resume,
    };
    await this.model.save(file, JSON.stringify(meta));
    return meta;
  }

  private async loadMeta(file: string): Promise<CheckpointMeta> {
    if (!fs.existsSync(file)) throw new Error(`load: no such file ${file}`);
    const meta = parseMeta(await this.model.load(file), file);
    if (meta.arch !== this.arch || meta.classes.length !== this.classes.length) {
      throw new Error(
        `load: ${file} holds ${meta.arch} with ${meta.classes.length} classes; this learner is ${this.arch} with ${this.classes.length}`,
      );
    }
    this.model.freeze(meta.frozenTo);
    return meta;
  }

  /** Frees the native model now; the learner is unusable afterwards. */
  dispose(): void {
    this.model.dispose();
  }

  private enter(): void {
    if (this.busy) throw new Error('Learner: another fit, validation or prediction is running on this learner');
    this.busy = true;
  }

  private leave(): void {
    this.busy = false;
  }

  private async emit(hook: 'beforeFit' | 'beforeEpoch' | 'beforeBatch' | 'afterBatch' | 'afterEpoch', state: FitState): Promise<void>;
  private async emit(hook: 'afterFit', state: FitState, error: unknown): Promise<void>;
  private async emit(hook: keyof Callback, state: FitState, error?: unknown): Promise<void> {
    for (const cb of this.callbacks) {
      const fn = cb[hook] as ((s: FitState, e?: unknown) => void | Promise<void>) | undefined;
      if (typeof fn !== 'function') continue;
      try {
        await fn.call(cb, state, error);
      } catch (err) {
        const name = cb.name ?? cb.constructor?.name ?? 'callback';
        (err as Error).message = `${name}.${hook}: ${(err as Error).message}`;
        throw err;
      }
    }
  }
}

/** An exported model for inference only. */
export class Predictor {
  private constructor(
    readonly model: NativeLearner,
    readonly arch: string,
    readonly classes: readonly string[],
    /** The image size it was trained at last. */
    readonly size: number,
    readonly normalize: { mean: number[]; std: number[] } | null,
  ) {}

  /** Loads what `Learner.export` (or `save`) wrote. Default device 'auto'. */
  static async load(file: string, options: { device?: string } = {}): Promise<Predictor> {
    if (!fs.existsSync(file)) throw new Error(`Predictor.load: no such file ${file}`);
    const head = readMetaHint(file);
    const binding = native();
    const model = new binding.Learner({
      arch: head.arch,
      numClasses: head.classes.length,
      device: announceDevice(options.device ?? 'auto'),
      optimizer: 'adamw',
      weightDecay: 0,
      beta2: 0.99,
      eps: 1e-5,
      labelSmoothing: 0,
      mean: head.normalize?.mean ?? null,
      std: head.normalize?.std ?? null,
      amp: 'none',
      seed: 0,
    });
    try {
      parseMeta(await model.load(file), file);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return new Predictor(model, head.arch, head.classes, head.size, head.normalize);
  }

  predict(images: PredictInput): Promise<PredictResult> {
    return predictWith(this.model, this.classes, images);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/**
 * The meta of a checkpoint before a model exists to load it into: the native
 * archive stores it as JSON text, which we find by its format marker.
 */
function readMetaHint(file: string): CheckpointMeta {
  const sidecar = `${file}.json`;
  if (fs.existsSync(sidecar)) return parseMeta(fs.readFileSync(sidecar, 'utf8'), sidecar);
  throw new Error(`Predictor.load: ${sidecar} (written by Learner.export next to the weights) is missing`);
}

async function predictWith(model: NativeLearner, classes: readonly string[], images: PredictInput): Promise<PredictResult> {
  checkImages(images);
  const probs = await model.predict({ images: images.images, n: images.n, h: images.h, w: images.w, augment: images.augment });
  const numClasses = classes.length;
  const predicted = new Int32Array(images.n);
  for (let i = 0; i < images.n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[i * numClasses + c] > probs[i * numClasses + best]) best = c;
    predicted[i] = best;
  }
  return { probs, predicted, labels: Array.from(predicted, (c) => classes[c]) };
}

function checkImages(images: PredictInput): void {
  const { n, h, w } = images;
  for (const [name, v] of Object.entries({ n, h, w })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`predict: ${name} must be a positive integer, got ${v}`);
  }
  if (!(images.images instanceof Uint8Array) || images.images.length !== n * h * w * 3) {
    throw new Error(`predict: images must be a Uint8Array of n*h*w*3 = ${n * h * w * 3} bytes (RGB NHWC), got ${images.images?.length}`);
  }
}

function parseMeta(text: string, file: string): CheckpointMeta {
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(text) as CheckpointMeta;
  } catch {
    throw new Error(`load: ${file} is not a torchts learner checkpoint (its metadata is not JSON)`);
  }
  if (!meta || (meta.format !== 'torchts-learner' && meta.format !== 'torchts-export')) {
    throw new Error(`load: ${file} is not a torchts learner checkpoint`);
  }
  if (meta.version !== FORMAT_VERSION) throw new Error(`load: ${file} has format version ${meta.version}; expected ${FORMAT_VERSION}`);
  return meta;
}

function toNative(batch: Batch, mix?: NativeMix): NativeBatch {
  return { images: batch.images, n: batch.n, h: batch.h, w: batch.w, labels: batch.labels, augment: batch.augment, mix };
}

function repeatEpochs(epochs: number, settings: LoaderSettings, phase: number): EpochPlan[] {
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs: expected an integer >= 1, got ${epochs}`);
  return Array.from({ length: epochs }, () => ({ size: settings.size, bs: settings.bs, phase }));
}

function checkSettings(settings: LoaderSettings): void {
  if (!Number.isInteger(settings.size) || settings.size < 8) throw new Error(`size: expected an integer >= 8, got ${settings.size}`);
  if (!Number.isInteger(settings.bs) || settings.bs < 1) throw new Error(`bs: expected an integer >= 1, got ${settings.bs}`);
}

function resolveNormalize(option: LearnerNormalize, data: DataLoaders): { mean: number[]; std: number[] } | null {
  if (option === null) return null;
  if (option === 'data') return data.stats ? { mean: [...data.stats.mean], std: [...data.stats.std] } : null;
  return checkStats(option === 'imagenet' ? IMAGENET_STATS : option);
}

function labelSmoothingOf(loss: LossOption): number {
  if (loss === 'crossEntropy') return 0;
  if (loss?.kind === 'labelSmoothing') {
    const eps = loss.eps ?? LABEL_SMOOTHING_EPS;
    if (!(eps >= 0 && eps < 1)) throw new Error(`lossFn labelSmoothing eps: expected a number in [0, 1), got ${eps}`);
    return eps;
  }
  throw new Error(`lossFn: expected 'crossEntropy' or { kind: 'labelSmoothing', eps }, got ${JSON.stringify(loss)}`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Joins per-batch arrays (probabilities, targets, indices) into one. */
function concat<T extends Float32Array | Int32Array>(parts: T[], make: (length: number) => T): T {
  const out = make(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
