/** Progressive resizing: each epoch's image size, batch size and phase, from the plan. */
import type { EpochPlan, StagePlan } from '../plan';
import type { Callback, FitControl } from '../types';

/** Sets `control.settings` and `control.phase` as each epoch starts. */
export class ProgressiveResizing implements Callback {
  readonly name = 'ProgressiveResizing';
  readonly order = -30;
  private readonly epochs: EpochPlan[];

  constructor(stages: readonly StagePlan[]) {
    this.epochs = stages.flatMap((s) => s.epochs);
  }

  beforeEpoch(control: FitControl): void {
    const plan = this.epochs[control.epoch];
    if (!plan) return;
    control.settings = { size: plan.size, bs: plan.bs };
    control.phase = plan.phase;
  }
}
