/** Early stopping: ends the fit when the monitored value stops improving. */
import type { Callback, FitControl } from '../types';
import { Tracker, type MonitorOptions } from './monitor';

/** Stops the fit when the monitored value has not improved for `patience` epochs. */
export class EarlyStopping implements Callback {
  readonly name = 'EarlyStopping';
  private tracker!: Tracker;
  private wait = 0;

  constructor(private readonly options: MonitorOptions & { /** Default 1. */ patience?: number } = {}) {}

  beforeFit(): void {
    this.tracker = new Tracker(this.options);
    this.wait = 0;
  }

  afterEpoch(control: FitControl): void {
    if (!control.record) return;
    if (this.tracker.improved(control.record)) {
      this.wait = 0;
      return;
    }
    this.wait++;
    if (this.wait >= (this.options.patience ?? 1)) {
      control.stop(`early stopping: no improvement in ${this.tracker.monitor} for ${this.wait} epochs`);
    }
  }
}
