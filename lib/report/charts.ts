/**
 * The charts of a training run, built from plain recorded numbers so they do
 * not depend on how the training loop is written.
 */
import * as path from 'path';
import { barChart, heatmap, lineChart, writeChart } from './plot';

/** One optimizer step as the run recorded it. */
export interface StepRecord {
  /** Step number over the whole run, from 0. */
  iteration: number;
  /** Smoothed training loss after the step. */
  loss: number;
  /** Learning rate of the last parameter group (the head). */
  lr: number;
  /** Momentum / beta1. */
  mom: number;
}

/** The end of one epoch: the step count so far and the validation figures. */
export interface EpochPoint {
  epoch: number;
  /** Steps done when the epoch ended. */
  iteration: number;
  validLoss: number;
  accuracy: number;
}

/** Train loss per step and valid loss per epoch, on the step axis (as fastai's plot_loss). */
export function lossChart(steps: readonly StepRecord[], epochs: readonly EpochPoint[]): string {
  return lineChart({
    title: 'Loss',
    xLabel: 'step',
    yLabel: 'loss',
    series: [
      { name: 'train', points: steps.map((s) => [s.iteration, s.loss] as const) },
      { name: 'valid', points: epochs.map((e) => [e.iteration, e.validLoss] as const) },
    ],
  });
}

/** The learning rate and momentum schedules, one above the other in one picture. */
export function scheduleChart(steps: readonly StepRecord[]): string {
  const lr = lineChart({ title: 'Learning rate', xLabel: 'step', yLabel: 'lr', series: [{ name: 'lr', points: steps.map((s) => [s.iteration, s.lr] as const) }], height: 300 });
  const mom = lineChart({ title: 'Momentum', xLabel: 'step', yLabel: 'momentum', series: [{ name: 'momentum', points: steps.map((s) => [s.iteration, s.mom] as const) }], height: 300 });
  const inner = (svg: string) => svg.replace(/^<svg[^>]*>/, '').replace(/<\/svg>$/, '');
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="600" viewBox="0 0 640 600">',
    `<g>${inner(lr)}</g>`,
    `<g transform="translate(0 300)">${inner(mom)}</g>`,
    '</svg>',
  ].join('\n');
}

/** Validation accuracy per epoch. */
export function accuracyChart(epochs: readonly EpochPoint[]): string {
  return lineChart({ title: 'Validation accuracy', xLabel: 'epoch', yLabel: 'accuracy', series: [{ name: 'accuracy', points: epochs.map((e) => [e.epoch, e.accuracy] as const) }] });
}

/** A confusion matrix: rows are the true classes, columns the predicted ones. */
export function confusionChart(classes: readonly string[], matrix: ReadonlyArray<readonly number[]>, title = 'Confusion matrix'): string {
  return heatmap({ title, labels: classes, matrix });
}

/** Loss against learning rate (log scale), with the suggestion marked as a second series. */
export function lrFindChart(lrs: readonly number[], losses: readonly number[], suggestion?: number): string {
  const series = [{ name: 'loss', points: lrs.map((lr, i) => [lr, losses[i]] as const) }];
  if (suggestion !== undefined) {
    const nearest = lrs.reduce((best, lr, i) => (Math.abs(Math.log(lr / suggestion)) < Math.abs(Math.log(lrs[best] / suggestion)) ? i : best), 0);
    series.push({ name: `suggestion ${suggestion.toExponential(2)}`, points: [[lrs[nearest], losses[nearest]] as const] });
  }
  return lineChart({ title: 'Learning rate finder', xLabel: 'learning rate (log scale)', yLabel: 'smoothed loss', logX: true, series });
}

/** Accuracy of each experiment as bars. */
export function experimentsChart(names: readonly string[], accuracy: readonly number[], title = 'Validation accuracy by experiment'): string {
  return barChart({ title, yLabel: 'accuracy', categories: names, series: [{ name: 'accuracy', values: accuracy }], width: Math.max(640, names.length * 110) });
}

/** Writes the standard charts of a run into `dir` (SVG and PNG each); resolves with the files written. */
export async function writeRunCharts(
  dir: string,
  run: { steps: readonly StepRecord[]; epochs: readonly EpochPoint[]; classes?: readonly string[]; confusion?: ReadonlyArray<readonly number[]> },
): Promise<string[]> {
  const files: string[] = [];
  const add = async (name: string, svg: string) => {
    const written = await writeChart(path.join(dir, name), svg);
    files.push(written.svg, written.png);
  };
  await add('loss', lossChart(run.steps, run.epochs));
  await add('schedule', scheduleChart(run.steps));
  await add('accuracy', accuracyChart(run.epochs));
  if (run.classes && run.confusion) await add('confusion', confusionChart(run.classes, run.confusion));
  return files;
}
