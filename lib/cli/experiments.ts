/**
 * `torchts-train experiments`: the seed article's ablation on one dataset and
 * one budget. Each experiment is one training run in its own sub-folder:
 *
 *   baseline          no normalisation, fixed size
 *   normalize         + normalisation with the dataset's stats
 *   progressive       + progressive resizing (half the epochs at half the size)
 *   progressive+tta   the same model, evaluated with test-time augmentation
 *   mixup             normalize + progressive + mixup (alpha 0.4)
 *   label-smoothing   normalize + progressive + label smoothing (eps 0.1)
 *
 * Then a comparison table (Markdown and CSV) and a bar chart of accuracy.
 */
import * as path from 'path';
import { MIN_SIZE, UsageError, type PhaseSpec } from './args';
import { shortPath } from './common';
import { FILES, TRAIN_DEFAULTS, runTraining, type RunResult, type TrainConfig } from './train';
import { experimentsChart, markdownTable, textTable, toCsv, writeChart, writeFileAtomic, writeJson } from '../report';

/** One row of the comparison. */
export interface ExperimentRow {
  name: string;
  what: string;
  accuracy: number;
  validLoss: number;
  seconds: number;
}

/** The article's progressive resizing on this budget: the first half of the epochs at half the size. */
export function progressivePhases(base: TrainConfig): PhaseSpec[] {
  if (base.phases) return base.phases;
  if (base.epochs < 2) throw new UsageError('--epochs: experiments need at least 2 epochs (progressive resizing splits them)');
  const small = Math.max(MIN_SIZE, Math.round(base.size / 2));
  const first = Math.floor(base.epochs / 2);
  return [
    { size: small, epochs: first },
    { size: base.size, epochs: base.epochs - first },
  ];
}

/** The runs of the ablation, as train configs derived from the base flags. */
export function experimentConfigs(base: TrainConfig): { name: string; what: string; config: TrainConfig }[] {
  const phases = progressivePhases(base);
  const fixed = { ...base, phases: null, mixup: null, cutmix: null, labelSmoothing: null, tta: false, size: phases[phases.length - 1].size };
  const progressive = { ...fixed, normalize: 'dataset' as const, phases, epochs: phases.reduce((s, p) => s + p.epochs, 0) };
  const sub = (name: string) => path.join(base.out, name);
  return [
    { name: 'baseline', what: 'no normalisation', config: { ...fixed, normalize: 'none', out: sub('baseline') } },
    { name: 'normalize', what: '+ normalisation (dataset stats)', config: { ...fixed, normalize: 'dataset', out: sub('normalize') } },
    { name: 'progressive', what: `+ progressive resizing (${phases.map((p) => `${p.size}px x${p.epochs}`).join(', ')})`, config: { ...progressive, tta: true, out: sub('progressive') } },
    { name: 'mixup', what: `progressive + mixup (alpha ${TRAIN_DEFAULTS.mixupAlpha})`, config: { ...progressive, mixup: TRAIN_DEFAULTS.mixupAlpha, out: sub('mixup') } },
    { name: 'label-smoothing', what: `progressive + label smoothing (eps ${TRAIN_DEFAULTS.labelSmoothing})`, config: { ...progressive, labelSmoothing: TRAIN_DEFAULTS.labelSmoothing, out: sub('label-smoothing') } },
  ];
}

/** Runs every experiment, then writes the comparison. Resolves with the rows, or the interrupted run. */
export async function runExperiments(base: TrainConfig, say: (line: string) => void): Promise<{ rows: ExperimentRow[]; interrupted?: RunResult }> {
  const rows: ExperimentRow[] = [];
  writeJson(path.join(base.out, FILES.config), { ...base, command: 'experiments' });
  const runs = experimentConfigs(base);
  for (const [i, run] of runs.entries()) {
    say(`\n== experiment ${i + 1}/${runs.length}: ${run.name} (${run.what}) ==`);
    const result = await runTraining(run.config, { deviceLine: i === 0 });
    if (result.interrupted) return { rows, interrupted: result };
    rows.push({ name: run.name, what: run.what, accuracy: result.accuracy, validLoss: result.validLoss, seconds: result.seconds });
    if (result.ttaAccuracy !== undefined) {
      rows.push({ name: `${run.name}+tta`, what: '+ test-time augmentation (same model)', accuracy: result.ttaAccuracy, validLoss: NaN, seconds: result.seconds });
    }
  }
  const header = ['experiment', 'what', 'accuracy', 'valid_loss', 'time_s'];
  const cells = rows.map((r) => [r.name, r.what, r.accuracy.toFixed(4), Number.isFinite(r.validLoss) ? r.validLoss.toFixed(4) : '', r.seconds.toFixed(1)]);
  writeFileAtomic(path.join(base.out, 'experiments.md'), `# Experiments\n\n${markdownTable(header, cells)}`);
  writeFileAtomic(path.join(base.out, 'experiments.csv'), toCsv(rows.map((r) => ({ experiment: r.name, what: r.what, accuracy: r.accuracy, valid_loss: Number.isFinite(r.validLoss) ? r.validLoss : '', time_s: Number(r.seconds.toFixed(3)) }))));
  await writeChart(path.join(base.out, 'experiments'), experimentsChart(rows.map((r) => r.name), rows.map((r) => r.accuracy)));
  say('');
  say(textTable(header, cells));
  say('');
  say(`comparison: ${shortPath(path.join(base.out, 'experiments.md'))}, experiments.csv, experiments.svg, experiments.png; one run folder per experiment`);
  return { rows };
}
