/** The learning-rate finder's sweep as a callback: records, stops on divergence, skips validation. */
import type { Callback, FitControl } from '../types';

export class LrFinder implements Callback {
  readonly name = 'LrFinder';
  /** After the recorder, which smooths the loss. */
  readonly order = 60;
  readonly lrs: number[] = [];
  readonly losses: number[] = [];
  private best = Infinity;

  constructor(
    private readonly numIt: number,
    /** Stop once the smoothed loss exceeds 4x the best (or is not finite). */
    private readonly stopDiv: boolean,
  ) {}

  beforeEpoch(control: FitControl): void {
    control.validate = false;
  }

  afterBatch(control: FitControl): void {
    if (!control.training || !control.hyper) return;
    const value = control.smoothLoss;
    this.lrs.push(control.hyper.lrs[control.hyper.lrs.length - 1]);
    this.losses.push(value);
    if (value < this.best) this.best = value;
    if (this.stopDiv && (value > 4 * this.best || !Number.isFinite(value))) control.stop('lr finder: the loss diverged');
    else if (control.step >= this.numIt) control.stop('lr finder: done');
  }
}
