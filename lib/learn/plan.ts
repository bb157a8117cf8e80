/**
 * Fit plans, pure: fit, fitOneCycle, fineTune and fitPhases each compile to a
 * list of stages (frozen groups, one schedule, epochs with their image size
 * and batch size). A plan and a position in it are plain data, so an
 * interrupted fit is saved with them and resumed at the same step.
 */
import type { LoaderSettings } from '../data/types';
import { LEARNER_DEFAULTS, checkLoaderSettings } from '../defaults';
import {
  ConstantSchedule,
  ExponentialSchedule,
  OneCycleSchedule,
  fineTuneStages,
  groupLrs,
  type LrSpec,
  type OneCycleOptions,
  type ScheduleJSON,
} from './schedule';

/** One epoch of a plan: its loader settings and its progressive-resizing phase. */
export interface EpochPlan {
  size: number;
  bs: number;
  phase: number;
}

/** One stage: groups [0, freezeTo) frozen, one schedule over the steps of its epochs. */
export interface StagePlan {
  freezeTo: number;
  schedule: ScheduleJSON;
  epochs: EpochPlan[];
}

/** Where a fit is: enough to continue it at the next batch. */
export interface Position {
  stage: number;
  epochInStage: number;
  /** Training batches of the current epoch already done. */
  batch: number;
  stepInStage: number;
  fitEpoch: number;
  fitStep: number;
}

export const START: Readonly<Position> = Object.freeze({ stage: 0, epochInStage: 0, batch: 0, stepInStage: 0, fitEpoch: 0, fitStep: 0 });

/** What planning needs to know of the learner and its data. */
export interface PlanContext {
  /** Parameter groups of the model (stem, body, head). */
  groupCount: number;
  /** Groups frozen now. */
  frozenTo: number;
  /** Training batches per epoch at these settings (each loader drops its last partial batch). */
  stepsPerEpoch(settings: LoaderSettings): number;
  /** Items in the training set, for the error when it is smaller than one batch. */
  trainItems: number;
}

/** One progressive-resizing phase. */
export interface Phase {
  size: number;
  epochs: number;
  /** Default: the learner's current batch size. */
  bs?: number;
  /** Peak lr of this phase's own cycle ('perPhase' only). Default: the fitPhases lr. */
  lr?: LrSpec;
  /** Run this phase as fineTune instead of fitOneCycle ('perPhase' only). */
  fineTune?: boolean | FineTuneOptions;
}

/** fineTune's settings; defaults in `FINE_TUNE_DEFAULTS`. */
export interface FineTuneOptions {
  /** Epochs with every group but the head frozen. */
  freezeEpochs?: number;
  /** The stem's lr is baseLr / lrMult after unfreezing. */
  lrMult?: number;
  /** Warm-up fraction of the unfrozen cycle. */
  pctStart?: number;
  /** div of the unfrozen cycle. */
  div?: number;
}

export interface FitPhasesOptions extends OneCycleOptions {
  /** 'span': one cycle over the steps of all phases (default); 'perPhase': a fresh cycle (or fineTune) per phase. */
  cycle?: 'span' | 'perPhase';
}

/** `epochs` epochs at constant lr(s) and momentum. */
export function planFit(ctx: PlanContext, epochs: number, lr: LrSpec, mom: number, settings: LoaderSettings): StagePlan[] {
  const epochPlans = repeatEpochs(epochs, settings, 0);
  const schedule = new ConstantSchedule(countSteps(ctx, epochPlans), groupLrs(lr, ctx.groupCount), mom);
  return [{ freezeTo: ctx.frozenTo, schedule: schedule.toJSON(), epochs: epochPlans }];
}

/** The one-cycle policy over `epochs` epochs. */
export function planOneCycle(ctx: PlanContext, epochs: number, lrMax: LrSpec, options: OneCycleOptions, settings: LoaderSettings): StagePlan[] {
  return [oneCycleStage(ctx, repeatEpochs(epochs, settings, 0), lrMax, options, ctx.frozenTo)];
}

/** fineTune: the head alone first, then every group with discriminative lrs. */
export function planFineTune(
  ctx: PlanContext,
  epochs: number,
  baseLr: number,
  options: FineTuneOptions,
  settings: LoaderSettings,
  phase = 0,
): StagePlan[] {
  return fineTuneStages(epochs, baseLr, ctx.groupCount, options).map((stage) =>
    oneCycleStage(ctx, repeatEpochs(stage.epochs, settings, phase), stage.lr, stage.options, stage.freezeTo),
  );
}

/**
 * Progressive resizing: one cycle over every phase's steps ('span'), or a
 * cycle (or fineTune) per phase ('perPhase'). `bs` fills phases that give none.
 */
export function planPhases(ctx: PlanContext, phases: readonly Phase[], lrMax: LrSpec, options: FitPhasesOptions, bs: number): StagePlan[] {
  if (phases.length === 0) throw new Error('fitPhases: expected at least one phase');
  const settingsOf = (phase: Phase): LoaderSettings => checkSettings({ size: phase.size, bs: phase.bs ?? bs });
  const epochPlans = phases.map((phase, i) => repeatEpochs(phase.epochs, settingsOf(phase), i));
  if ((options.cycle ?? 'span') === 'span') {
    if (phases.some((p) => p.lr !== undefined || p.fineTune)) {
      throw new Error("fitPhases: per-phase lr and fineTune need cycle: 'perPhase'");
    }
    return [oneCycleStage(ctx, epochPlans.flat(), lrMax, options, ctx.frozenTo)];
  }
  const stages: StagePlan[] = [];
  let frozenTo = ctx.frozenTo;
  phases.forEach((phase, i) => {
    const lr = phase.lr ?? lrMax;
    if (phase.fineTune) {
      if (typeof lr !== 'number') throw new Error(`fitPhases: phase ${i} runs fineTune and needs one number as lr`);
      const ft = typeof phase.fineTune === 'object' ? phase.fineTune : {};
      stages.push(...planFineTune(ctx, phase.epochs, lr, ft, settingsOf(phase), i));
    } else {
      stages.push(oneCycleStage(ctx, epochPlans[i], lr, options, frozenTo));
    }
    frozenTo = stages[stages.length - 1].freezeTo;
  });
  return stages;
}

/** The lr finder's sweep: `numIt` steps of exponentially growing lr, over as many epochs as that takes. */
export function planLrSweep(ctx: PlanContext, numIt: number, startLr: number, endLr: number, settings: LoaderSettings): StagePlan[] {
  const perEpoch = ctx.stepsPerEpoch(settings);
  if (perEpoch < 1) throw tooSmall(ctx);
  const epochs = repeatEpochs(Math.ceil(numIt / perEpoch), settings, 0);
  const schedule = new ExponentialSchedule(numIt, startLr, endLr, ctx.groupCount, LEARNER_DEFAULTS.mom);
  return [{ freezeTo: ctx.frozenTo, schedule: schedule.toJSON(), epochs }];
}

function oneCycleStage(ctx: PlanContext, epochs: EpochPlan[], lrMax: LrSpec, options: OneCycleOptions, freezeTo: number): StagePlan {
  const { pctStart, div, divFinal, moms } = options;
  const schedule = new OneCycleSchedule(countSteps(ctx, epochs), groupLrs(lrMax, ctx.groupCount), { pctStart, div, divFinal, moms });
  return { freezeTo, schedule: schedule.toJSON(), epochs };
}

/** Training steps of a list of epochs. */
function countSteps(ctx: PlanContext, epochs: readonly EpochPlan[]): number {
  const perSettings = new Map<string, number>();
  let total = 0;
  for (const e of epochs) {
    const key = `${e.size}x${e.bs}`;
    let n = perSettings.get(key);
    if (n === undefined) {
      n = ctx.stepsPerEpoch({ size: e.size, bs: e.bs });
      perSettings.set(key, n);
    }
    total += n;
  }
  if (total < 1) throw tooSmall(ctx);
  return total;
}

function tooSmall(ctx: PlanContext): Error {
  return new Error(`fit: the training set (${ctx.trainItems} items) is smaller than one batch; lower bs`);
}

export function repeatEpochs(epochs: number, settings: LoaderSettings, phase: number): EpochPlan[] {
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs: expected an integer >= 1, got ${epochs}`);
  return Array.from({ length: epochs }, () => ({ size: settings.size, bs: settings.bs, phase }));
}

/**
 * A saved plan and position for another number of steps per epoch (a fit resumed by a different
 * number of data-parallel processes): each stage's schedule spans the new step count, and the
 * position keeps its fraction of the current epoch, so the schedule goes on from where it was.
 */
export function rescalePlan(
  stages: readonly StagePlan[],
  position: Position,
  before: (settings: LoaderSettings) => number,
  after: (settings: LoaderSettings) => number,
): { stages: StagePlan[]; position: Position } {
  const steps = (epochs: readonly EpochPlan[]) => epochs.reduce((sum, e) => sum + after(e), 0);
  const rescaled = stages.map((stage) => ({ ...stage, schedule: { ...stage.schedule, totalSteps: steps(stage.epochs) } }));
  const stage = stages[position.stage];
  const epoch = stage?.epochs[position.epochInStage];
  if (!stage || !epoch) return { stages: rescaled, position: { ...position } };
  const batch = Math.min(after(epoch), Math.round((position.batch * after(epoch)) / Math.max(1, before(epoch))));
  const stepInStage = steps(stage.epochs.slice(0, position.epochInStage)) + batch;
  const fitStep = rescaled.slice(0, position.stage).reduce((sum, s) => sum + s.schedule.totalSteps, 0) + stepInStage;
  return { stages: rescaled, position: { ...position, batch, stepInStage, fitStep } };
}

/** Checks loader settings against `LIMITS`; returns them. */
export function checkSettings(settings: LoaderSettings): LoaderSettings {
  return checkLoaderSettings(settings, '');
}
