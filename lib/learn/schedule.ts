/**
 * Learning-rate and momentum schedules, computed per step in TypeScript and
 * handed to the native optimizer step.
 *
 * The one-cycle policy follows the reference library (fastai): the position
 * p = step / totalSteps runs over every training step of every epoch (and of
 * every progressive-resizing phase when one cycle spans them), and each of the
 * two phases is a cosine segment.
 */
import { FINE_TUNE_DEFAULTS, ONE_CYCLE_DEFAULTS, withDefaults } from '../defaults';

export { ONE_CYCLE_DEFAULTS };

/** Options of a one-cycle schedule; every field has the reference default. */
export interface OneCycleOptions {
  /** Fraction of the steps spent warming up. Default 0.25. */
  pctStart?: number;
  /** The cycle starts at lrMax / div. Default 25. */
  div?: number;
  /** The cycle ends at lrMax / divFinal. Default 1e5. */
  divFinal?: number;
  /** Momentum (Adam beta1) at the start, at the peak lr, and at the end. Default [0.95, 0.85, 0.95]. */
  moms?: readonly [number, number, number];
}

/** The hyper-parameters for one optimizer step: one lr per parameter group and the momentum. */
export interface StepHyper {
  lrs: number[];
  mom: number;
}


/**
 * A learning rate for every parameter group: one number for all groups, an
 * explicit array, or a `{ lo, hi }` range spread geometrically from the stem
 * (lo) to the head (hi), as the reference's `slice(lo, hi)`.
 * `{ hi }` alone gives hi/10 to every group but the head, as `slice(hi)` does.
 */
export type LrSpec = number | readonly number[] | { lo?: number; hi: number };

/** Cosine segment from `start` to `end`, t in [0, 1]: start + (1 + cos(pi(1 - t))) (end - start) / 2. */
export function cosineSegment(start: number, end: number, t: number): number {
  return start + ((1 + Math.cos(Math.PI * (1 - t))) * (end - start)) / 2;
}

/** `n` numbers from `lo` to `hi` with a constant ratio between neighbours. */
export function evenMultiples(lo: number, hi: number, n: number): number[] {
  if (n === 1) return [hi];
  const ratio = Math.pow(hi / lo, 1 / (n - 1));
  return Array.from({ length: n }, (_, i) => lo * Math.pow(ratio, i));
}

/** Expands an LrSpec to one lr per parameter group (group 0 = stem, last = head). */
export function groupLrs(spec: LrSpec, groups: number): number[] {
  if (typeof spec === 'number') return checkLrs(new Array<number>(groups).fill(spec));
  if (Array.isArray(spec)) {
    const lrs = spec as readonly number[];
    if (lrs.length !== groups) {
      throw new Error(`lr: expected ${groups} learning rates (one per parameter group), got ${lrs.length}`);
    }
    return checkLrs([...lrs]);
  }
  const range = spec as { lo?: number; hi: number };
  if (range.lo === undefined) {
    return checkLrs([...new Array<number>(groups - 1).fill(range.hi / 10), range.hi]);
  }
  return checkLrs(evenMultiples(range.lo, range.hi, groups));
}

function checkLrs(lrs: number[]): number[] {
  for (const lr of lrs) {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`lr: expected finite numbers >= 0, got ${lr}`);
  }
  return lrs;
}

function resolveOneCycle(options: OneCycleOptions): Required<OneCycleOptions> {
  const o: Required<OneCycleOptions> = withDefaults(ONE_CYCLE_DEFAULTS, options);
  if (!(o.pctStart >= 0 && o.pctStart <= 1)) throw new Error(`pctStart: expected a number in [0, 1], got ${o.pctStart}`);
  if (!(o.div > 0)) throw new Error(`div: expected a number > 0, got ${o.div}`);
  if (!(o.divFinal > 0)) throw new Error(`divFinal: expected a number > 0, got ${o.divFinal}`);
  if (o.moms.length !== 3) throw new Error(`moms: expected three momenta, got ${o.moms.length}`);
  return o;
}

/** Two cosine segments meeting at pctStart; p in [0, 1]. */
function twoPhase(p: number, pctStart: number, start: number, peak: number, end: number): number {
  if (p < pctStart) return cosineSegment(start, peak, p / pctStart);
  if (pctStart >= 1) return peak;
  return cosineSegment(peak, end, (p - pctStart) / (1 - pctStart));
}

/** Learning rate of a one-cycle schedule at position p in [0, 1]. */
export function oneCycleLr(p: number, lrMax: number, options: OneCycleOptions = {}): number {
  const o = resolveOneCycle(options);
  return twoPhase(p, o.pctStart, lrMax / o.div, lrMax, lrMax / o.divFinal);
}

/** Momentum of a one-cycle schedule at position p in [0, 1]. */
export function oneCycleMom(p: number, options: OneCycleOptions = {}): number {
  const o = resolveOneCycle(options);
  return twoPhase(p, o.pctStart, o.moms[0], o.moms[1], o.moms[2]);
}

/** A schedule gives the hyper-parameters of step `step` of `totalSteps`. */
export interface Schedule {
  readonly totalSteps: number;
  at(step: number): StepHyper;
  /** Plain data that `scheduleFromJSON` turns back into the same schedule (for checkpoints). */
  toJSON(): ScheduleJSON;
}

export type ScheduleJSON =
  | { kind: 'oneCycle'; totalSteps: number; lrMax: number[]; options: Required<OneCycleOptions> }
  | { kind: 'constant'; totalSteps: number; lrs: number[]; mom: number }
  | { kind: 'exponential'; totalSteps: number; startLr: number; endLr: number; groups: number; mom: number };

/** One cycle over `totalSteps` steps with a peak lr per parameter group. */
export class OneCycleSchedule implements Schedule {
  readonly options: Required<OneCycleOptions>;

  constructor(
    readonly totalSteps: number,
    readonly lrMax: readonly number[],
    options: OneCycleOptions = {},
  ) {
    if (!Number.isInteger(totalSteps) || totalSteps < 1) {
      throw new Error(`one-cycle: expected at least one training step, got ${totalSteps}`);
    }
    this.options = resolveOneCycle(options);
  }

  at(step: number): StepHyper {
    const p = step / this.totalSteps;
    return {
      lrs: this.lrMax.map((lr) => oneCycleLr(p, lr, this.options)),
      mom: oneCycleMom(p, this.options),
    };
  }

  toJSON(): ScheduleJSON {
    return { kind: 'oneCycle', totalSteps: this.totalSteps, lrMax: [...this.lrMax], options: this.options };
  }
}

/** The same lrs and momentum at every step (plain `fit`). */
export class ConstantSchedule implements Schedule {
  constructor(
    readonly totalSteps: number,
    readonly lrs: readonly number[],
    readonly mom: number,
  ) {}

  at(): StepHyper {
    return { lrs: [...this.lrs], mom: this.mom };
  }

  toJSON(): ScheduleJSON {
    return { kind: 'constant', totalSteps: this.totalSteps, lrs: [...this.lrs], mom: this.mom };
  }
}

/** lr = start * (end/start)^(step/totalSteps) for every group: the learning-rate finder's sweep. */
export class ExponentialSchedule implements Schedule {
  constructor(
    readonly totalSteps: number,
    readonly startLr: number,
    readonly endLr: number,
    readonly groups: number,
    readonly mom: number,
  ) {}

  at(step: number): StepHyper {
    const lr = this.startLr * Math.pow(this.endLr / this.startLr, step / this.totalSteps);
    return { lrs: new Array<number>(this.groups).fill(lr), mom: this.mom };
  }

  toJSON(): ScheduleJSON {
    const { totalSteps, startLr, endLr, groups, mom } = this;
    return { kind: 'exponential', totalSteps, startLr, endLr, groups, mom };
  }
}

export function scheduleFromJSON(json: ScheduleJSON): Schedule {
  switch (json.kind) {
    case 'oneCycle':
      return new OneCycleSchedule(json.totalSteps, json.lrMax, json.options);
    case 'constant':
      return new ConstantSchedule(json.totalSteps, json.lrs, json.mom);
    case 'exponential':
      return new ExponentialSchedule(json.totalSteps, json.startLr, json.endLr, json.groups, json.mom);
  }
}

/** One stage of `fineTune`: which groups are frozen, and the one cycle run over its epochs. */
export interface FineTuneStage {
  epochs: number;
  /** Freeze parameter groups [0, freezeTo); 0 = everything trains. */
  freezeTo: number;
  lr: LrSpec;
  options: OneCycleOptions;
}

/**
 * The reference's fine_tune as two stages: `freezeEpochs` with everything but
 * the head frozen (one cycle, pctStart 0.99), then base lr halved, all groups
 * unfrozen, one cycle from baseLr/lrMult (stem) to baseLr (head), pctStart 0.3, div 5.
 */
export function fineTuneStages(
  epochs: number,
  baseLr: number,
  groups: number,
  options: { freezeEpochs?: number; lrMult?: number; pctStart?: number; div?: number } = {},
): FineTuneStage[] {
  const { freezeEpochs, lrMult, pctStart, div } = withDefaults(FINE_TUNE_DEFAULTS, options);
  const stages: FineTuneStage[] = [];
  if (freezeEpochs > 0) {
    stages.push({ epochs: freezeEpochs, freezeTo: groups - 1, lr: { hi: baseLr }, options: { pctStart: 0.99 } });
  }
  const half = baseLr / 2;
  if (epochs > 0) {
    stages.push({
      epochs,
      freezeTo: 0,
      lr: { lo: half / lrMult, hi: half },
      options: { pctStart, div },
    });
  }
  return stages;
}
