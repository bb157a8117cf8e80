/**
 * The Learner: a facade over a DataLoaders (lib/data), a native Learner
 * (model, optimizer, loss on its own thread) and the one training loop
 * (loop.ts). Entry points compile to a plan (plan.ts); every feature of a fit
 * is a callback (callbacks/); the checkpoint format is checkpoint.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { DataLoaders, LoaderSettings, Shard } from '../data/types';
import { IMAGENET_STATS, checkStats } from '../data/stats';
import { FINE_TUNE_DEFAULTS, LABEL_SMOOTHING_EPS, LEARNER_DEFAULTS, LR_FIND_DEFAULTS, OPTIMIZER_DEFAULTS, withDefaults } from '../defaults';
import { announceDevice, native, type NativeGroup, type NativeGroupOptions, type NativeLearner } from '../native';
import { LrFinder, MixCallback, ParamScheduler, ProgressiveResizing, Recorder, emptyHistory, type History } from './callbacks';
import { parseMeta, writeSidecar, FORMAT_VERSION, type CheckpointMeta, type NormalizeStats } from './checkpoint';
import { resolveGroup } from './distributed';
import { Loop, validationPass, type LoopGroup, type LoopHost } from './loop';
import { SmoothedLoss, valley, type LrFindOptions, type LrFindResult } from './lr-find';
import { accuracy, type Metric } from './metrics';
import type { MixOptions } from './mixup';
import type {
  FitResult,
  LearnerNormalize,
  LearnerOptions,
  LossOption,
  PredictInput,
  PredictResult,
  SettingsOptions,
  TtaResult,
  ValidationResult,
} from './options';
import {
  START,
  checkSettings,
  planFineTune,
  planFit,
  planLrSweep,
  planOneCycle,
  planPhases,
  rescalePlan,
  type FineTuneOptions,
  type FitPhasesOptions,
  type Phase,
  type PlanContext,
  type Position,
  type StagePlan,
} from './plan';
import { NativeOwner } from '../util/native-owner';
import { exportPyTorch, type PyTorchExportReport } from '../export/pytorch';
import { exportOnnx, type OnnxExportOptions, type OnnxExportReport } from '../export/onnx';
import { predictWith } from './predictor';
import type { LrSpec, OneCycleOptions } from './schedule';
import { runTta, type TtaOptions } from './tta';
import type { Callback } from './types';

export { LABEL_SMOOTHING_EPS };

export class Learner extends NativeOwner<NativeLearner> {
  readonly data: DataLoaders;
  readonly arch: string;
  readonly classes: readonly string[];
  readonly seed: number;
  readonly metrics: Metric[];
  readonly callbacks: Callback[];
  readonly mix: MixOptions | null;
  /** Where a resumable checkpoint is saved after every epoch (`LearnerOptions.autosave`). */
  readonly autosave?: string;
  /** Normalisation applied on the device (null: x/255 only). */
  readonly normalize: NormalizeStats;
  /** Loader settings of the last fit (validate, tta and lrFind use them by default). */
  settings: LoaderSettings;
  /** History of the last fit. */
  history: History = emptyHistory();

  private frozenTo = 0;
  /** Training epochs run over the learner's life: the loaders' epoch index, so no two epochs share a shuffle. */
  private dataEpoch = 0;
  private busy = false;
  private running?: { loop: Loop; checkpoint?: string; reason?: string };
  /** The data-parallel group, when this learner is one rank of one. */
  private readonly group?: { options: NativeGroupOptions; joined: Promise<NativeGroup> };

  constructor(options: LearnerOptions) {
    const setup = createNative(options);
    super('Learner', setup.model);
    this.data = options.data;
    this.arch = setup.o.arch;
    this.classes = setup.classes;
    this.seed = setup.o.seed;
    this.metrics = options.metrics ?? [accuracy()];
    this.callbacks = [...(options.callbacks ?? [])];
    this.mix = options.mix ?? null;
    this.autosave = options.autosave;
    this.normalize = setup.normalize;
    this.settings = setup.settings;
    if (setup.group) {
      const joined = setup.model.joinGroup(setup.group);
      joined.catch(() => undefined); // surfaced by the first call that needs the group
      this.group = { options: setup.group, joined };
    }
  }

  /** This process's rank in its data-parallel group (0 alone). */
  get rank(): number {
    return this.group?.options.rank ?? 0;
  }

  /** Processes in the data-parallel group (1 alone). */
  get worldSize(): number {
    return this.group?.options.worldSize ?? 1;
  }

  /** Rank 0: the one process of a group that writes run folders, logs and checkpoints. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  /**
   * Sums numbers over every rank of the group (every rank must call it, in the same order); alone,
   * resolves with the values themselves.
   */
  async allReduce(values: readonly number[]): Promise<number[]> {
    if (!this.group) return [...values];
    await this.group.joined;
    return Array.from(await this.model.allReduce(values));
  }

  /** The native learner (for what this class does not wrap, e.g. `loadTorchvision`). */
  get model(): NativeLearner {
    return this.live();
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
    if (!this.running) return false;
    this.running.checkpoint ??= options.checkpoint;
    if (this.group) {
      // In a group every rank must stop after the same step: the step's all-reduce carries the request.
      this.running.reason ??= reason;
      this.model.requestStop();
    } else {
      this.running.loop.stop(reason);
    }
    return true;
  }

  /** Freezes parameter groups [0, upTo) (default: all but the head), and clears the optimizer state. */
  freeze(upTo = this.groupCount - 1): void {
    this.setFrozen(upTo);
  }

  unfreeze(): void {
    this.setFrozen(0);
  }

  /** `epochs` epochs at constant lr(s) and momentum `LEARNER_DEFAULTS.mom`. */
  async fit(epochs: number, lr: LrSpec = LEARNER_DEFAULTS.lr, options: SettingsOptions & { mom?: number } = {}): Promise<FitResult> {
    const plan = planFit(this.planContext(), epochs, lr, options.mom ?? LEARNER_DEFAULTS.mom, this.resolveSettings(options));
    return this.runPlan(plan, START);
  }

  /** The one-cycle policy over `epochs` epochs (defaults: `ONE_CYCLE_DEFAULTS`). */
  async fitOneCycle(epochs: number, lrMax: LrSpec = LEARNER_DEFAULTS.lr, options: OneCycleOptions & SettingsOptions = {}): Promise<FitResult> {
    return this.runPlan(planOneCycle(this.planContext(), epochs, lrMax, options, this.resolveSettings(options)), START);
  }

  /**
   * Transfer learning as the reference does it: `freezeEpochs` one-cycle epochs
   * with only the head training (pctStart 0.99), then all groups for `epochs`
   * with lrs from baseLr/2/lrMult (stem) to baseLr/2 (head) (defaults: `FINE_TUNE_DEFAULTS`).
   */
  async fineTune(epochs: number, baseLr = FINE_TUNE_DEFAULTS.baseLr, options: FineTuneOptions & SettingsOptions = {}): Promise<FitResult> {
    return this.runPlan(planFineTune(this.planContext(), epochs, baseLr, options, this.resolveSettings(options)), START);
  }

  /**
   * Progressive resizing: phases of image size, batch size and epochs. With
   * cycle 'span' one one-cycle runs over the steps of every phase; with
   * 'perPhase' each phase gets its own cycle (or fineTune), the book's shape.
   * The loaders switch sizes between phases without rebuilding the dataset.
   */
  async fitPhases(phases: readonly Phase[], lrMax: LrSpec = LEARNER_DEFAULTS.lr, options: FitPhasesOptions = {}): Promise<FitResult> {
    return this.runPlan(planPhases(this.planContext(), phases, lrMax, options, this.settings.bs), START);
  }

  /** Continues the fit saved in `file` (by `requestStop` with a checkpoint) at the step where it stopped. */
  async resume(file: string): Promise<FitResult> {
    const meta = await this.loadMeta(file);
    if (!meta.resume) throw new Error(`resume: ${file} holds no interrupted fit (it is an exported model or a save made outside a fit)`);
    this.frozenTo = meta.frozenTo;
    this.dataEpoch = meta.dataEpoch;
    this.history = meta.resume.history;
    let { stages, position } = meta.resume;
    const savedWorld = meta.worldSize ?? 1;
    if (savedWorld !== this.worldSize) {
      const stepsWith = (shard: Shard) => (settings: LoaderSettings) => this.data.train(settings, 0, shard).length;
      ({ stages, position } = rescalePlan(stages, position, stepsWith({ rank: 0, worldSize: savedWorld }), stepsWith({ rank: 0, worldSize: this.worldSize })));
    }
    return this.runPlan(stages, position, SmoothedLoss.fromJSON(meta.resume.smooth));
  }

  /**
   * Loss and metrics on the validation set (no mixing, no augmentation). In a data-parallel
   * group every rank calls it: loss and metrics are the whole set's, while probs, targets and
   * indices are this rank's shard.
   */
  async validate(options: SettingsOptions & { probs?: boolean } = {}): Promise<ValidationResult> {
    const settings = this.resolveSettings(options);
    return this.exclusive(() => validationPass(this.loopHost(), settings, options.probs ?? false));
  }

  /**
   * Test-time augmentation: `n` passes over the validation set with the
   * training transforms and one plain pass, combined as
   * (1 - beta) * mean(augmented) + beta * plain, or by maximum with `useMax`. In a group every
   * rank calls it; the accuracy is the whole set's, the probabilities this rank's shard.
   */
  async tta(options: TtaOptions & SettingsOptions = {}): Promise<TtaResult> {
    const settings = this.resolveSettings(options);
    return this.exclusive(() => runTta(this.data, this.model, this.classes.length, settings, options, this.loopGroup()));
  }

  /** Class probabilities for a batch of images (uint8 RGB NHWC, e.g. from lib/data), in eval mode. */
  async predict(images: PredictInput): Promise<PredictResult> {
    return predictWith(this.model, this.classes, images);
  }

  /**
   * The learning-rate finder (defaults: `LR_FIND_DEFAULTS`): lr grows
   * exponentially from startLr to endLr over numIt training steps (across
   * epochs as needed), through the same loop as a fit with the finder's own
   * callbacks (the learner's are not called). The loss is smoothed (debiased),
   * and the sweep stops early once it exceeds 4x the best. Weights, optimizer
   * state and the data epoch are restored afterwards.
   */
  async lrFind(options: LrFindOptions & SettingsOptions = {}): Promise<LrFindResult> {
    const o = withDefaults<Required<LrFindOptions>>(LR_FIND_DEFAULTS, options);
    if (!(o.startLr > 0 && o.endLr > o.startLr)) {
      throw new Error(`lrFind: expected 0 < startLr < endLr, got ${o.startLr} and ${o.endLr}`);
    }
    const settings = this.resolveSettings(options);
    const stages = planLrSweep(this.planContext(), o.numIt, o.startLr, o.endLr, settings);
    return this.exclusive(async () => {
      const saved = path.join(os.tmpdir(), `torchts-lrfind-${process.pid}-${Date.now()}.tsl`);
      const dataEpoch = this.dataEpoch;
      const finder = new LrFinder(o.numIt, o.stopDiv);
      try {
        await this.model.save(saved, '{}');
        const callbacks = [...this.stepCallbacks(stages, emptyHistory(), new SmoothedLoss(LEARNER_DEFAULTS.lossBeta)), finder];
        await new Loop(this.loopHost({ keepSettings: false }), { stages, from: { ...START }, settings, callbacks, records: [] }).execute();
        const suggestion = valley(finder.lrs, finder.losses, o.numIt);
        return { lrs: finder.lrs, losses: finder.losses, valley: suggestion.lr, valleyIndex: suggestion.index };
      } finally {
        try {
          if (fs.existsSync(saved)) await this.model.load(saved);
        } finally {
          fs.rmSync(saved, { force: true });
          this.dataEpoch = dataEpoch;
        }
      }
    });
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
    await this.refuseDamaged('export', file);
    // The sidecar first: a kill between the two writes leaves the previous model with a sidecar
    // that describes it too (same arch and classes), never a model without one.
    const meta = this.metaFor('torchts-export');
    writeSidecar(file, meta);
    await this.saveMeta(file, meta);
  }

  /**
   * Writes the weights as a PyTorch state_dict (lib/export/pytorch.ts): resnet models load into
   * torchvision's, xresnet models into fastai's xresnet. Refuses a diverged model.
   */
  async exportPyTorch(file: string): Promise<PyTorchExportReport> {
    return exportPyTorch(this, file);
  }

  /**
   * Writes an ONNX model (lib/export/onnx.ts) that onnxruntime (Node, web, Python) runs with
   * this model's predictions; options and defaults: `OnnxExportOptions`. Refuses a diverged model.
   */
  async exportOnnx(file: string, options: OnnxExportOptions = {}): Promise<OnnxExportReport> {
    return exportOnnx({ arch: this.arch, classes: this.classes, size: this.settings.size, normalize: this.normalize, model: this.model }, file, options);
  }

  /** Throws when a weight holds NaN or infinity: a diverged fit is never exported. */
  private async refuseDamaged(what: string, file: string): Promise<void> {
    const damaged = await this.model.nonFiniteWeights();
    if (damaged.length > 0) {
      throw new Error(`${what}: ${damaged.length} weight tensor(s) hold NaN or infinite values (${damaged.slice(0, 3).join(', ')}${damaged.length > 3 ? ', ...' : ''}): the fit diverged; nothing was written to ${file}`);
    }
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

  private resolveSettings(options: SettingsOptions): LoaderSettings {
    return checkSettings({ size: options.size ?? this.settings.size, bs: options.bs ?? this.settings.bs });
  }

  private planContext(): PlanContext {
    return {
      groupCount: this.groupCount,
      frozenTo: this.frozenTo,
      stepsPerEpoch: (settings) => this.data.train(settings, 0, this.shard).length,
      trainItems: this.data.trainItems.length,
    };
  }

  /** This learner as the loop sees it; `keepSettings: false` leaves `settings` as they are (the lr finder). */
  private loopHost({ keepSettings = true } = {}): LoopHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the host reads and writes this learner's state
    const learner = this;
    return {
      data: this.data,
      model: this.model,
      metrics: this.metrics,
      numClasses: this.classes.length,
      get dataEpoch() {
        return learner.dataEpoch;
      },
      set dataEpoch(value: number) {
        learner.dataEpoch = value;
      },
      setFrozen: (upTo) => this.setFrozen(upTo),
      settingsChanged: (settings) => {
        if (keepSettings) this.settings = settings;
      },
      save: (file) => this.save(file),
      load: async (file) => void (await this.load(file)),
      exportModel: (file) => this.export(file),
      group: this.loopGroup(),
    };
  }

  private get shard(): Shard | undefined {
    return this.group ? { rank: this.rank, worldSize: this.worldSize } : undefined;
  }

  private loopGroup(): LoopGroup | undefined {
    if (!this.group) return undefined;
    return {
      shard: this.shard!,
      reduce: (values) => this.allReduce(values),
      stopReason: () => this.running?.reason ?? 'stopped by another rank',
    };
  }

  /** The loop's own callbacks: what every training step needs. */
  private stepCallbacks(stages: readonly StagePlan[], history: History, smooth: SmoothedLoss): Callback[] {
    const callbacks: Callback[] = [new ProgressiveResizing(stages), new ParamScheduler(stages), new Recorder(history, smooth, stages)];
    if (this.mix) callbacks.push(new MixCallback(this.mix, this.seed));
    return callbacks;
  }

  private async runPlan(stages: StagePlan[], from: Position, smooth = new SmoothedLoss(LEARNER_DEFAULTS.lossBeta)): Promise<FitResult> {
    return this.exclusive(async () => {
      if (from === START) this.history = emptyHistory();
      const history = this.history;
      const callbacks = [...this.stepCallbacks(stages, history, smooth), ...this.callbacks];
      const running: { loop: Loop; checkpoint?: string; reason?: string; written?: string } = { loop: undefined as unknown as Loop };
      running.loop = new Loop(this.loopHost(), {
        stages,
        from,
        settings: this.settings,
        callbacks,
        records: history.records,
        onEpochEnd: async (position) => {
          if (this.autosave && this.isMain) await this.saveWith(this.autosave, 'torchts-learner', { stages, position, smooth: smooth.toJSON(), history });
        },
        onStop: async (position) => {
          // In a group, rank 0 writes the one checkpoint (every rank holds the same weights).
          if (!running.checkpoint || !this.isMain) return;
          await this.saveWith(running.checkpoint, 'torchts-learner', { stages, position, smooth: smooth.toJSON(), history });
          running.written = running.checkpoint;
        },
      });
      this.running = running;
      try {
        const result = await running.loop.execute();
        // The other ranks of a group report the checkpoint rank 0 wrote for all of them.
        const shared = this.group && result.stopped && !this.isMain ? running.checkpoint : undefined;
        return { ...result, checkpoint: running.written ?? shared };
      } catch (err) {
        // The other ranks are waiting in a collective: tell them why this one stops.
        if (this.group) await this.model.reportFailure(err instanceof Error ? err.message : String(err)).catch(() => undefined);
        throw err;
      } finally {
        this.running = undefined;
      }
    });
  }

  private async saveWith(file: string, format: CheckpointMeta['format'], resume?: CheckpointMeta['resume']): Promise<CheckpointMeta> {
    return this.saveMeta(file, this.metaFor(format, resume));
  }

  private async saveMeta(file: string, meta: CheckpointMeta): Promise<CheckpointMeta> {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    await this.model.save(file, JSON.stringify(meta));
    return meta;
  }

  private metaFor(format: CheckpointMeta['format'], resume?: CheckpointMeta['resume']): CheckpointMeta {
    return {
      format,
      version: FORMAT_VERSION,
      arch: this.arch,
      classes: [...this.classes],
      normalize: this.normalize,
      size: this.settings.size,
      frozenTo: this.frozenTo,
      dataEpoch: this.dataEpoch,
      worldSize: this.worldSize,
      resume,
    };
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

  /** Runs `work` as the learner's only fit, validation or prediction (once the group, if any, is joined). */
  private async exclusive<T>(work: () => Promise<T>): Promise<T> {
    this.live();
    if (this.busy) throw new Error('Learner: another fit, validation or prediction is running on this learner');
    this.busy = true;
    try {
      await this.group?.joined;
      return await work();
    } finally {
      this.busy = false;
    }
  }
}

/** Checks the options and builds the native learner, seeded: what the constructor needs before `this`. */
function createNative(options: LearnerOptions) {
  if (!options || !options.data) throw new Error('Learner: options.data (a DataLoaders) is required');
  const o = withDefaults(LEARNER_DEFAULTS, options);
  const classes = [...(options.classes ?? options.data.classes)];
  if (classes.length < 2) throw new Error(`Learner: expected at least 2 classes, got ${classes.length}`);
  const normalize = resolveNormalize(options.normalize === undefined ? 'data' : options.normalize, options.data);
  const settings = checkSettings({ size: o.size, bs: o.bs });
  const binding = native();
  if (!binding.modelNames().includes(o.arch)) {
    throw new Error(`Learner: unknown arch "${o.arch}"; known: ${binding.modelNames().join(', ')}`);
  }
  const opt = withDefaults(OPTIMIZER_DEFAULTS, options.optimizer);
  const labelSmoothing = labelSmoothingOf(options.lossFn ?? 'crossEntropy');
  const group = resolveGroup(options.distributed);
  if (group) {
    const unsummable = (options.metrics ?? []).find((m) => !m.sums || !m.setSums);
    if (unsummable) throw new Error(`Learner: metric ${unsummable.name} has no sums()/setSums(), which data-parallel validation needs to add it up across ranks`);
  }
  const batchNorm = options.batchNorm ?? 'train';
  if (batchNorm !== 'train' && batchNorm !== 'frozen') throw new Error(`Learner: batchNorm: expected 'train' or 'frozen', got ${JSON.stringify(batchNorm)}`);
  binding.manualSeed(o.seed);
  const model = new binding.Learner({
    arch: o.arch,
    numClasses: classes.length,
    device: announceDevice(o.device),
    optimizer: opt.kind,
    weightDecay: opt.weightDecay,
    beta2: opt.beta2,
    eps: opt.eps,
    labelSmoothing,
    mean: normalize?.mean ?? null,
    std: normalize?.std ?? null,
    amp: o.amp,
    seed: o.seed,
    frozenBatchNorm: batchNorm === 'frozen',
  });
  return { o, classes, normalize, settings, model, group };
}

function resolveNormalize(option: LearnerNormalize, data: DataLoaders): NormalizeStats {
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
