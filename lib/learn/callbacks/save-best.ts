/** Keeping the best model of a fit. */
import type { Callback, FitControl } from '../types';
import { Tracker, type MonitorOptions } from './monitor';

/** Saves the learner whenever the monitored value improves (on epochs with a finite validation loss); by default reloads the best weights at the end. */
export class SaveBestModel implements Callback {
  readonly name = 'SaveBestModel';
  private tracker?: Tracker;
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
    this.tracker = new Tracker(this.options);
    this.bestEpoch = -1;
  }

  async afterEpoch(control: FitControl): Promise<void> {
    // A diverged epoch (validation loss not finite) is never the best, whatever its metric says.
    if (!control.record || !Number.isFinite(control.record.validLoss) || !this.tracker?.improved(control.record)) return;
    this.bestEpoch = control.record.epoch;
    await control.save(this.file);
  }

  async afterFit(control: FitControl, error?: unknown): Promise<void> {
    if (error === undefined && (this.options.loadAtEnd ?? true) && this.bestEpoch >= 0) {
      await control.load(this.file);
    }
  }
}
