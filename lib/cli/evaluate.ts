/**
 * `torchts-train evaluate`: accuracy, per-class accuracy and the confusion
 * matrix of a trained model on a dataset's validation split, with and without
 * test-time augmentation.
 */
import * as path from 'path';
import { DATA_SEED } from '../defaults';
import { UsageError, deviceName, integerIn, writableFolder } from './args';
import { resolveData, resolveModel, readRunConfig } from './common';
import { checkDataset, pixelOptions, type TrainConfig } from './train';
import { textTable, writeChart, writeJson, confusionChart } from '../report';
import { imageFolder } from '../data';
import { Learner, confusionMatrix } from '../learn';
import type { FlagsOf } from './flags';

/** The raw flags of `evaluate` (declared in flags.ts). */
export type EvaluateFlags = FlagsOf<'evaluate'>;

/** Checks the flags; nothing is created. `--data` defaults to the data the model was trained on. */
export async function evaluateConfigFrom(flags: EvaluateFlags) {
  const model = resolveModel(flags.model);
  const trained = readRunConfig<TrainConfig>(model.runFolder);
  const bs = flags.bs === undefined ? 64 : integerIn('bs', flags.bs, 1);
  const device = flags.device === undefined ? 'auto' : deviceName(flags.device);
  const out = flags.out === undefined ? null : writableFolder('out', flags.out);
  const source = flags.data === undefined && trained ? { folder: trained.data } : await resolveData(flags.data);
  const seed = trained?.seed ?? DATA_SEED;
  checkDataset(source.folder, seed);
  // The run's augmentation (TTA views) always; its presize only on its own data.
  const pixels: Partial<ReturnType<typeof pixelOptions>> = trained ? pixelOptions({ augment: trained.augment, dataName: source.folder === trained.data ? trained.dataName : undefined }) : {};
  return { model, data: source.folder, seed, bs, device, out, tta: Boolean(flags.tta), json: Boolean(flags.json), pixels };
}

export interface Evaluation {
  items: number;
  classes: string[];
  accuracy: number;
  validLoss: number;
  perClass: { class: string; items: number; accuracy: number; ttaAccuracy?: number }[];
  confusion: number[][];
  ttaAccuracy?: number;
  ttaConfusion?: number[][];
}

export async function runEvaluate(config: Awaited<ReturnType<typeof evaluateConfigFrom>>): Promise<Evaluation> {
  const { meta } = config.model;
  const data = await imageFolder(config.data, { seed: config.seed, normalize: 'none', ...config.pixels });
  try {
    if (data.classes.join('\n') !== meta.classes.join('\n')) {
      throw new UsageError(`--data: its classes (${data.classes.join(', ')}) differ from the model's (${meta.classes.join(', ')}); expected the dataset the model was trained on`);
    }
    const learner = new Learner({ data, arch: meta.arch, device: config.device, normalize: meta.normalize, size: meta.size, bs: config.bs, seed: config.seed });
    try {
      await learner.load(config.model.file);
      const valid = await learner.validate({ probs: true });
      const confusion = confusionMatrix(valid.probs!, valid.targets, meta.classes.length);
      const tta = config.tta ? await learner.tta() : undefined;
      const ttaConfusion = tta ? confusionMatrix(tta.probs, tta.targets, meta.classes.length) : undefined;
      const perClass = meta.classes.map((name, c) => {
        const items = confusion[c].reduce((s, v) => s + v, 0);
        const row = { class: name, items, accuracy: confusion[c][c] / Math.max(1, items) };
        return ttaConfusion ? { ...row, ttaAccuracy: ttaConfusion[c][c] / Math.max(1, items) } : row;
      });
      const result: Evaluation = {
        items: valid.targets.length,
        classes: [...meta.classes],
        accuracy: valid.metrics.accuracy,
        validLoss: valid.loss,
        perClass,
        confusion,
        ...(tta ? { ttaAccuracy: tta.accuracy, ttaConfusion } : {}),
      };
      if (config.out) {
        writeJson(path.join(config.out, 'evaluation.json'), result);
        await writeChart(path.join(config.out, 'confusion'), confusionChart(meta.classes, confusion));
        if (ttaConfusion) await writeChart(path.join(config.out, 'confusion-tta'), confusionChart(meta.classes, ttaConfusion, 'Confusion matrix (TTA)'));
      }
      return result;
    } finally {
      learner.dispose();
    }
  } finally {
    await data.close();
  }
}

/** The evaluation as text: the headline, per-class accuracy, the confusion matrix. */
export function evaluationText(e: Evaluation): string {
  const lines = [`accuracy ${e.accuracy.toFixed(4)} on ${e.items} images | valid loss ${e.validLoss.toFixed(4)}`];
  if (e.ttaAccuracy !== undefined) lines.push(`accuracy with TTA ${e.ttaAccuracy.toFixed(4)}`);
  lines.push('', 'per-class accuracy');
  const tta = e.ttaAccuracy !== undefined;
  lines.push(textTable(['class', 'images', 'accuracy', ...(tta ? ['with TTA'] : [])], e.perClass.map((p) => [p.class, String(p.items), p.accuracy.toFixed(4), ...(tta ? [p.ttaAccuracy!.toFixed(4)] : [])])));
  lines.push('', 'confusion matrix (rows: actual, columns: predicted)');
  lines.push(textTable(['', ...e.classes.map((_, i) => String(i))], e.confusion.map((row, i) => [`${i} ${e.classes[i]}`, ...row.map(String)])));
  return lines.join('\n');
}
