/**
 * The callback that shows a fit and records it: a progress bar per pass, the
 * epoch table, metrics.csv/json after every epoch, and the best model so far.
 */
import { Tracker } from '../learn/callbacks/monitor';
import type { Callback, FitState } from '../learn/types';
import { EpochTable, MetricsLog, ProgressBar, type MetricsRecord, type ProgressStream } from '../report';

export interface ReportCallbackOptions {
  /** Run folder receiving metrics.csv and metrics.json. */
  metrics: MetricsLog;
  /** Where the bars and the table go. Default process.stdout. */
  stream?: ProgressStream;
  /** Draw progress bars. Default true. */
  progress?: boolean;
  /** Called when validation accuracy improves on every earlier epoch (the CLI exports best.tsl there). */
  onBest?: (state: FitState, accuracy: number) => Promise<void>;
  /** Best accuracy of a run being resumed. Default -Infinity. */
  bestSoFar?: number;
}

/** One metrics record from an epoch record: the table's columns plus phase, size and bs. */
export function metricsRecordOf(record: NonNullable<FitState['record']>): MetricsRecord {
  return {
    epoch: record.epoch,
    train_loss: record.trainLoss,
    valid_loss: record.validLoss,
    ...record.metrics,
    phase: record.phase,
    size: record.size,
    bs: record.bs,
    time: Number(record.seconds.toFixed(3)),
  };
}

export class ReportCallback implements Callback {
  readonly name = 'ReportCallback';
  private bar?: ProgressBar;
  private barTraining = true;
  private table?: EpochTable;
  private validLossSum = 0;
  private validCount = 0;
  /** Validation accuracy, best so far (over the earlier part of a resumed run too). */
  private readonly accuracy = new Tracker({ monitor: 'accuracy', comparison: 'max' });

  constructor(private readonly options: ReportCallbackOptions) {
    this.accuracy.best = options.bestSoFar ?? -Infinity;
  }

  get best(): number {
    return this.accuracy.best;
  }

  private get stream(): ProgressStream {
    return this.options.stream ?? process.stdout;
  }

  beforeBatch(state: FitState): void {
    if (this.options.progress === false) return;
    if (!this.bar || this.barTraining !== state.training) {
      this.bar?.done();
      this.barTraining = state.training;
      this.bar = new ProgressBar({ total: state.batchCount, label: state.training ? 'train' : 'valid', stream: this.stream });
      // A resumed epoch starts part way through.
      if (state.batchIndex > 0) this.bar.tick({}, state.batchIndex);
      this.validLossSum = 0;
      this.validCount = 0;
    }
  }

  afterBatch(state: FitState): void {
    if (!this.bar || !state.batch) return;
    let loss = state.smoothLoss;
    if (!state.training && state.loss !== undefined) {
      this.validLossSum += state.loss * state.batch.n;
      this.validCount += state.batch.n;
      loss = this.validLossSum / this.validCount;
    }
    // Every rank of a group takes a batch of this size at once: the rate is the run's.
    this.bar.tick({ items: state.batch.n * state.worldSize, loss });
  }

  async afterEpoch(state: FitState): Promise<void> {
    this.endBar();
    const record = state.record;
    if (!record) return;
    const names = Object.keys(record.metrics);
    this.table ??= new EpochTable({ columns: ['train_loss', 'valid_loss', ...names], write: (line) => this.stream.write(line + '\n') });
    this.table.add({
      epoch: record.epoch,
      values: { train_loss: record.trainLoss, valid_loss: record.validLoss, ...record.metrics },
      seconds: record.seconds,
    });
    this.options.metrics.add(metricsRecordOf(record));
    // An epoch whose validation loss is not finite has diverged: its weights are never the best.
    if (record.metrics.accuracy !== undefined && Number.isFinite(record.validLoss) && this.accuracy.improved(record)) {
      await this.options.onBest?.(state, record.metrics.accuracy);
    }
  }

  afterFit(): void {
    this.endBar();
  }

  private endBar(): void {
    this.bar?.done();
    this.bar = undefined;
  }
}
