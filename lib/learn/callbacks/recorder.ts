/** The recorder: the smoothed training loss and the per-step history of a fit. */
import type { SmoothedLoss } from '../lr-find';
import type { StagePlan } from '../plan';
import type { Callback, EpochRecord, FitControl } from '../types';

/** Training history of a fit, for plots. */
export interface History {
  /** lr per group at every step. */
  lrs: number[][];
  moms: number[];
  /** Raw and smoothed training loss at every step. */
  losses: number[];
  smoothLosses: number[];
  records: EpochRecord[];
}

export function emptyHistory(): History {
  return { lrs: [], moms: [], losses: [], smoothLosses: [], records: [] };
}

/**
 * Smooths the training loss into `control.smoothLoss` and appends every step's lrs, momentum and
 * losses to `history`. Runs first after a step (so every callback sees the new smoothed loss) and
 * records the hyper-parameters the step really used.
 */
export class Recorder implements Callback {
  readonly name = 'Recorder';
  readonly order = -50;
  /** Fit steps at which a stage starts: each is one fit of the reference, and its smoothing restarts. */
  private readonly stageStarts = new Set<number>();

  constructor(
    readonly history: History,
    private readonly smooth: SmoothedLoss,
    stages: readonly StagePlan[],
  ) {
    let start = 0;
    for (const stage of stages) {
      this.stageStarts.add(start);
      start += stage.schedule.totalSteps;
    }
  }

  beforeFit(control: FitControl): void {
    control.smoothLoss = this.smooth.value;
  }

  afterBatch(control: FitControl): void {
    if (!control.training || control.loss === undefined || !control.hyper) return;
    if (this.stageStarts.has(control.step - 1)) this.smooth.reset();
    this.smooth.add(control.loss);
    control.smoothLoss = this.smooth.value;
    this.history.lrs.push([...control.hyper.lrs]);
    this.history.moms.push(control.hyper.mom);
    this.history.losses.push(control.loss);
    this.history.smoothLosses.push(control.smoothLoss);
  }
}
