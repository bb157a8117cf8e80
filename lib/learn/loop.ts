/**
 * The training loop, the only one: stages, epochs, batches and the validation
 * pass, with the events of `types.ts` around each. What a step uses (its lrs,
 * its mix, the epoch's image size) comes from callbacks through `FitControl`;
 * the loop itself only freezes each stage's groups, runs the native steps and
 * writes the epoch's record.
 */
import type { Batch, DataLoaders, LoaderSettings, Shard } from '../data/types';
import type { NativeBatch, NativeLearner, NativeMix, NativeParam } from '../native';
import type { Metric } from './metrics';
import type { Position, StagePlan } from './plan';
import type { StepHyper } from './schedule';
import type { Callback, EpochRecord, FitControl, FitEvent } from './types';
import type { ValidationResult } from './options';

/** What the loop needs of a learner. */
export interface LoopHost {
  readonly data: DataLoaders;
  readonly model: NativeLearner;
  readonly metrics: readonly Metric[];
  readonly numClasses: number;
  /** The loaders' epoch index: advanced after every trained epoch, so no two epochs share a shuffle. */
  dataEpoch: number;
  /** Freezes groups [0, upTo) (clears the optimizer state when that changes). */
  setFrozen(upTo: number): void;
  /** Told the settings of every epoch as it starts. */
  settingsChanged(settings: LoaderSettings): void;
  save(file: string): Promise<void>;
  load(file: string): Promise<void>;
  exportModel(file: string): Promise<void>;
  /** Set when the learner is one rank of a data-parallel group. */
  readonly group?: LoopGroup;
}

/** What the loop needs of a data-parallel group. */
export interface LoopGroup {
  readonly shard: Shard;
  /** Sums numbers over every rank. */
  reduce(values: readonly number[]): Promise<number[]>;
  /** Why the ranks stopped together (a step resolved with `stop`). */
  stopReason(): string;
}

export interface LoopRun {
  stages: readonly StagePlan[];
  from: Position;
  /** Settings until a callback sets the epoch's own. */
  settings: LoaderSettings;
  callbacks: readonly Callback[];
  /** The fit's records so far (a resumed fit continues its list). */
  records: EpochRecord[];
  /** Called when the fit stopped early, before `afterFit`, with where to continue. */
  onStop?: (position: Position) => Promise<void>;
  /** Called after every completed epoch (after `afterEpoch`) with where the next one starts. */
  onEpochEnd?: (position: Position) => Promise<void>;
}

export interface LoopResult {
  records: EpochRecord[];
  stopped?: string;
}

class Control implements FitControl {
  epoch = 0;
  phase = 0;
  step = 0;
  batchIndex = 0;
  batchCount = 0;
  training = true;
  validate = true;
  smoothLoss = NaN;
  batch?: Batch;
  mix?: NativeMix;
  hyper?: StepHyper;
  loss?: number;
  record?: EpochRecord;
  stopReason?: string;

  constructor(
    private readonly host: LoopHost,
    readonly epochs: number,
    readonly totalSteps: number,
    public settings: LoaderSettings,
    readonly records: EpochRecord[],
  ) {}

  get dataEpoch(): number {
    return this.host.dataEpoch;
  }

  get rank(): number {
    return this.host.group?.shard.rank ?? 0;
  }

  get worldSize(): number {
    return this.host.group?.shard.worldSize ?? 1;
  }

  stop(reason: string): void {
    this.stopReason ??= reason;
  }

  save(file: string): Promise<void> {
    return this.host.save(file);
  }

  load(file: string): Promise<void> {
    return this.host.load(file);
  }

  exportModel(file: string): Promise<void> {
    return this.host.exportModel(file);
  }

  parameters(): NativeParam[] {
    return this.host.model.parameters();
  }
}

/** A running fit: `stop` asks it to end after the current batch. */
export class Loop {
  private readonly control: Control;
  private readonly callbacks: readonly Callback[];

  constructor(
    private readonly host: LoopHost,
    private readonly run: LoopRun,
  ) {
    const epochs = run.stages.reduce((sum, s) => sum + s.epochs.length, 0);
    const totalSteps = run.stages.reduce((sum, s) => sum + s.schedule.totalSteps, 0);
    this.control = new Control(host, epochs, totalSteps, { ...run.settings }, run.records);
    this.control.step = run.from.fitStep;
    this.callbacks = sortByOrder(run.callbacks);
  }

  stop(reason: string): void {
    this.control.stop(reason);
  }

  async execute(): Promise<LoopResult> {
    const control = this.control;
    const { stages } = this.run;
    let error: unknown;
    try {
      await this.emit('beforeFit');
      const pos = { ...this.run.from };
      for (; pos.stage < stages.length; pos.stage++, pos.epochInStage = 0, pos.stepInStage = 0) {
        const stage = stages[pos.stage];
        this.host.setFrozen(stage.freezeTo);
        for (; pos.epochInStage < stage.epochs.length; pos.epochInStage++, pos.batch = 0) {
          control.epoch = pos.fitEpoch;
          const finished = await this.runEpoch(pos);
          if (!finished) break;
          pos.fitEpoch++;
          this.host.dataEpoch++;
          if (this.run.onEpochEnd) {
            const next = { ...pos };
            advancePastEpoch(next, stage);
            await this.run.onEpochEnd(next);
          }
          if (control.stopReason) {
            advancePastEpoch(pos, stage);
            break;
          }
        }
        // Stopped: `pos` already says where to continue.
        if (control.stopReason) break;
      }
      if (control.stopReason && pos.stage < stages.length) await this.run.onStop?.(pos);
    } catch (err) {
      error = err;
    }
    await this.emit('afterFit', error);
    if (error !== undefined) throw error;
    return { records: [...control.records], stopped: control.stopReason };
  }

  /** One training pass and its validation; false when stopped mid-epoch. */
  private async runEpoch(pos: Position): Promise<boolean> {
    const control = this.control;
    const started = performance.now();
    Object.assign(control, { record: undefined, training: true, validate: true, batchCount: 0 });
    await this.emit('beforeEpoch');
    this.host.settingsChanged({ ...control.settings });
    const loader = this.host.data.train(control.settings, this.host.dataEpoch, this.host.group?.shard);
    control.batchCount = loader.length;
    let index = 0;
    for await (const batch of loader) {
      if (index < pos.batch) {
        // Resuming: these batches were trained before the interruption.
        index++;
        continue;
      }
      Object.assign(control, { batch, mix: undefined, hyper: undefined, batchIndex: index, loss: undefined, training: true });
      await this.emit('beforeBatch');
      if (!control.hyper) throw new Error('fit: no callback set the step\'s lrs (control.hyper) in beforeBatch');
      const { loss, stop } = await this.host.model.trainStep(toNative(batch, control.mix), control.hyper).catch((err: unknown) => {
        // Say where: the native step knows only its own batch.
        if (err instanceof Error) err.message = `epoch ${control.epoch + 1}/${control.epochs}, batch ${index + 1}/${control.batchCount}: ${err.message}`;
        throw err;
      });
      control.loss = loss;
      // The ranks of a group stop together, after the step where one of them asked to.
      if (stop) control.stop(this.host.group?.stopReason() ?? 'stopped');
      pos.stepInStage++;
      pos.fitStep++;
      control.step = pos.fitStep;
      pos.batch = ++index;
      await this.emit('afterBatch');
      if (control.stopReason) return false;
    }
    const valid = control.validate ? await this.validate(control.settings) : undefined;
    const record: EpochRecord = {
      epoch: control.epoch,
      phase: control.phase,
      size: control.settings.size,
      bs: control.settings.bs,
      trainLoss: control.smoothLoss,
      validLoss: valid?.loss ?? NaN,
      metrics: valid?.metrics ?? {},
      seconds: (performance.now() - started) / 1000,
    };
    control.records.push(record);
    Object.assign(control, { record, batch: undefined, mix: undefined });
    await this.emit('afterEpoch');
    return true;
  }

  private async validate(settings: LoaderSettings): Promise<ValidationResult> {
    const control = this.control;
    return validationPass(this.host, settings, false, {
      start: (batchCount) => Object.assign(control, { training: false, batchCount, mix: undefined, hyper: undefined }),
      before: async (batch, index) => {
        Object.assign(control, { batch, batchIndex: index, loss: undefined });
        await this.emit('beforeBatch');
      },
      after: async (loss) => {
        control.loss = loss;
        await this.emit('afterBatch');
      },
    });
  }

  private async emit(event: FitEvent, error?: unknown): Promise<void> {
    for (const cb of this.callbacks) {
      const hook = cb[event] as ((control: FitControl, error?: unknown) => void | Promise<void>) | undefined;
      if (typeof hook !== 'function') continue;
      try {
        await hook.call(cb, this.control, error);
      } catch (err) {
        const name = cb.name ?? cb.constructor?.name ?? 'callback';
        if (err instanceof Error) err.message = `${name}.${event}: ${err.message}`;
        throw err;
      }
    }
  }
}

/** Hooks a validation pass reports to (a fit's events). */
export interface ValidationHooks {
  start(batchCount: number): void;
  before(batch: Batch, index: number): Promise<void>;
  after(loss: number): Promise<void>;
}

/**
 * Loss and metrics over the validation set (no mixing, no augmentation). In a group each rank
 * evaluates its shard and the sums are all-reduced, so loss and metrics are those of the whole
 * set; probs, targets and indices are this rank's shard.
 */
export async function validationPass(
  host: Pick<LoopHost, 'data' | 'model' | 'metrics' | 'numClasses' | 'group'>,
  settings: LoaderSettings,
  wantProbs: boolean,
  hooks?: ValidationHooks,
): Promise<ValidationResult> {
  const loader = host.data.valid(settings, host.group?.shard);
  const needProbs = wantProbs || host.metrics.some((m) => m.needsProbs);
  for (const m of host.metrics) m.reset();
  const probs: Float32Array[] = [];
  const targets: Int32Array[] = [];
  const indices: Int32Array[] = [];
  let lossSum = 0;
  let count = 0;
  hooks?.start(loader.length);
  let index = 0;
  for await (const batch of loader) {
    await hooks?.before(batch, index++);
    const result = await host.model.evalStep(toNative(batch), { probs: needProbs });
    lossSum += result.loss * batch.n;
    count += batch.n;
    for (const m of host.metrics) {
      m.accumulate({ n: batch.n, labels: batch.labels, correct: result.correct, probs: result.probs, numClasses: host.numClasses });
    }
    if (wantProbs && result.probs) probs.push(result.probs);
    targets.push(batch.labels);
    indices.push(batch.indices);
    await hooks?.after(result.loss);
  }
  if (host.group) [lossSum, count] = await reduceMetrics(host.group, host.metrics, [lossSum, count]);
  const metrics: Record<string, number> = {};
  for (const m of host.metrics) metrics[m.name] = m.value();
  return {
    loss: count > 0 ? lossSum / count : NaN,
    metrics,
    probs: wantProbs ? concat(probs, (n) => new Float32Array(n)) : undefined,
    targets: concat(targets, (n) => new Int32Array(n)),
    indices: concat(indices, (n) => new Int32Array(n)),
  };
}

/** Sums `totals` and every metric's state over the ranks; resolves with the summed totals. */
async function reduceMetrics(group: LoopGroup, metrics: readonly Metric[], totals: number[]): Promise<number[]> {
  const parts = metrics.map((m) => {
    if (!m.sums || !m.setSums) throw new Error(`metric ${m.name}: data-parallel validation needs sums() and setSums() to add it up across ranks`);
    return m.sums();
  });
  const summed = await group.reduce([...totals, ...parts.flat()]);
  let offset = totals.length;
  metrics.forEach((m, i) => {
    m.setSums!(summed.slice(offset, offset + parts[i].length));
    offset += parts[i].length;
  });
  return summed.slice(0, totals.length);
}

/** A stop at the end of an epoch continues at the next epoch (or stage). */
function advancePastEpoch(pos: Position, stage: StagePlan): void {
  pos.epochInStage++;
  pos.batch = 0;
  if (pos.epochInStage >= stage.epochs.length) {
    pos.stage++;
    pos.epochInStage = 0;
    pos.stepInStage = 0;
  }
}

/** Stable sort by `order` (default 0): ties keep the order given. */
function sortByOrder(callbacks: readonly Callback[]): Callback[] {
  return callbacks
    .map((cb, i) => ({ cb, i }))
    .sort((a, b) => (a.cb.order ?? 0) - (b.cb.order ?? 0) || a.i - b.i)
    .map(({ cb }) => cb);
}

export function toNative(batch: Batch, mix?: NativeMix): NativeBatch {
  return { images: batch.images, n: batch.n, h: batch.h, w: batch.w, labels: batch.labels, augment: batch.augment, mix };
}

/** Joins per-batch arrays (probabilities, targets, indices) into one. */
export function concat<T extends Float32Array | Int32Array>(parts: T[], make: (length: number) => T): T {
  const out = make(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
