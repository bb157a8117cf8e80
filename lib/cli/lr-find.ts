/**
 * `torchts-train lr-find`: the learning-rate finder on a dataset; prints the
 * suggestion and writes the loss-against-lr chart and its numbers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { integerIn, writableFolder, timestampedRunFolder, deviceName, oneOf, MAX_SIZE, MIN_SIZE } from './args';
import { deviceLine, resolveData } from './common';
import { NORMALIZE_CHOICES, TRAIN_DEFAULTS, checkArch, checkDataset, type NormalizeFlag } from './train';
import { lrFindChart, toCsv, writeChart, writeFileAtomic } from '../report';
import { imageFolder } from '../data';
import { Learner } from '../learn';
import type { FlagsOf } from './flags';

/** The raw flags of `lr-find` (declared in flags.ts). */
export type LrFindFlags = FlagsOf<'lrFind'>;

export async function lrFindConfigFrom(flags: LrFindFlags) {
  const arch = flags.arch === undefined ? TRAIN_DEFAULTS.arch : String(flags.arch);
  const bs = flags.bs === undefined ? TRAIN_DEFAULTS.bs : integerIn('bs', flags.bs, 1);
  const numIt = flags.numIt === undefined ? 100 : integerIn('num-it', flags.numIt, 5, 100_000);
  const seed = flags.seed === undefined ? TRAIN_DEFAULTS.seed : integerIn('seed', flags.seed, 0, 2 ** 31 - 1);
  const device = flags.device === undefined ? 'auto' : deviceName(flags.device);
  const normalize: NormalizeFlag = flags.normalize === undefined ? TRAIN_DEFAULTS.normalize : oneOf('normalize', flags.normalize, NORMALIZE_CHOICES);
  const sizeFlag = flags.size === undefined ? undefined : integerIn('size', flags.size, MIN_SIZE, MAX_SIZE);
  const out = flags.out === undefined ? timestampedRunFolder() : writableFolder('out', flags.out);
  const source = await resolveData(flags.data);
  checkDataset(source.folder, seed);
  await checkArch(arch);
  const size = sizeFlag ?? (source.name?.startsWith('fashion-mnist') ? TRAIN_DEFAULTS.size : TRAIN_DEFAULTS.otherSize);
  return { data: source.folder, arch, bs, size, numIt, seed, device, normalize, out };
}

export async function runLrFind(config: Awaited<ReturnType<typeof lrFindConfigFrom>>, say: (line: string) => void): Promise<{ suggestion: number; files: string[] }> {
  say(await deviceLine(config.device));
  const data = await imageFolder(config.data, { seed: config.seed, normalize: config.normalize });
  const learner = new Learner({ data, arch: config.arch, device: config.device, seed: config.seed, size: config.size, bs: config.bs });
  try {
    const found = await learner.lrFind({ numIt: config.numIt });
    fs.mkdirSync(config.out, { recursive: true });
    const csv = path.join(config.out, 'lr-find.csv');
    writeFileAtomic(csv, toCsv(found.lrs.map((lr, i) => ({ lr, loss: found.losses[i] }))));
    const chart = await writeChart(path.join(config.out, 'lr-find'), lrFindChart(found.lrs, found.losses, found.valley));
    say(`suggested lr (valley): ${found.valley.toExponential(2)}  (${found.lrs.length} steps)`);
    say(`wrote ${chart.svg}, ${chart.png} and ${csv}`);
    return { suggestion: found.valley, files: [csv, chart.svg, chart.png] };
  } finally {
    learner.dispose();
    await data.close();
  }
}
