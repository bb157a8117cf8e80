/** The parameter scheduler: the lrs and momentum of every training step, from the plan's schedules. */
import type { StagePlan } from '../plan';
import { scheduleFromJSON, type Schedule } from '../schedule';
import type { Callback, FitControl } from '../types';

/** Sets `control.hyper` before each training step: stage s's schedule at the step's place in it. */
export class ParamScheduler implements Callback {
  readonly name = 'ParamScheduler';
  readonly order = -20;
  private readonly schedules: Schedule[];
  /** Fit step at which each stage starts. */
  private readonly starts: number[];

  constructor(stages: readonly StagePlan[]) {
    this.schedules = stages.map((s) => scheduleFromJSON(s.schedule));
    let start = 0;
    this.starts = this.schedules.map((s) => {
      const at = start;
      start += s.totalSteps;
      return at;
    });
  }

  beforeBatch(control: FitControl): void {
    if (!control.training) return;
    let stage = this.starts.length - 1;
    while (stage > 0 && this.starts[stage] > control.step) stage--;
    control.hyper = this.schedules[stage].at(control.step - this.starts[stage]);
  }
}
