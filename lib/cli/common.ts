/**
 * Pieces shared by the torchts-train commands: where data comes from, the
 * line describing libtorch and the device, the run folder, and reading a
 * trained model's description.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FASTAI_DATASETS, untarData } from '../data/download';
import { native, packageRoot } from '../native';
import type { CheckpointMeta } from '../learn/checkpoint';
import { locateModel } from '../learn/predictor';
import { UsageError, existingFolder } from './args';

/** The bundled Fashion-MNIST subset (train/ and val/ image folders). */
export function bundledDataFolder(): string {
  return path.join(packageRoot(), 'data', 'fashion-mnist');
}

/** Dataset names `--data` accepts: lib/data's named fast.ai datasets. */
export const DATASET_NAMES: readonly string[] = FASTAI_DATASETS;

/** What `--data` resolved to. */
export interface DataSource {
  /** The image folder. */
  folder: string;
  /** The dataset name when one was given, or 'fashion-mnist (bundled)'. */
  name?: string;
}

/**
 * Resolves `--data`: nothing means the bundled Fashion-MNIST subset; an
 * existing path must be a folder; a dataset name is looked up by lib/data
 * (downloaded once into TORCHTS_HOME).
 */
export async function resolveData(value: unknown): Promise<DataSource> {
  if (value === undefined) {
    const folder = bundledDataFolder();
    if (!fs.existsSync(folder)) throw new UsageError(`--data: the bundled dataset is missing at ${folder}; give --data FOLDER`);
    return { folder, name: 'fashion-mnist (bundled)' };
  }
  if (typeof value !== 'string' || value === '') throw new UsageError('--data: expected a folder or a dataset name, got nothing');
  if (fs.existsSync(value) || value.includes('/') || value.includes(path.sep) || value.startsWith('.')) {
    return { folder: existingFolder('data', value) };
  }
  if (!DATASET_NAMES.includes(value)) {
    throw new UsageError(`--data: ${value} is neither a folder nor a known dataset name; expected a folder or one of ${DATASET_NAMES.join(', ')}`);
  }
  return { folder: await datasetByName(value), name: value };
}

/** Downloads (once, into TORCHTS_HOME) and extracts a named dataset through lib/data. */
async function datasetByName(name: string): Promise<string> {
  return untarData(name);
}

/** "torchts 0.1.0 | libtorch 1.13.0 (system, source torch1.13-cxx11-cpu) | device cpu | 2 threads | features ..." */
export async function deviceLine(device: string): Promise<string> {
  const info = native().info();
  const resolved = device === 'auto' ? (info.cudaAvailable ? 'cuda' : 'cpu') : device;
  const features = info.features.length ? ` | ${info.features.join(', ')}` : '';
  const build = info.variant ? `, ${info.binary} ${info.variant}` : '';
  return `torchts ${info.version} | libtorch ${info.torchVersion} (${info.libtorchSource}${build}) | device ${resolved} | ${info.threads} threads${features}`;
}

/** What Learner.export writes next to a model (model.tsl.json): learn/checkpoint.ts's format. */
export type ModelMeta = CheckpointMeta;

/**
 * Finds a model for `--model`: a .tsl file written by `train` (with its .json
 * sidecar), or a run folder (its last.tsl): lib/learn's `locateModel`, whose
 * messages become usage errors. Returns the file and its meta.
 */
export function resolveModel(value: unknown): { file: string; meta: ModelMeta; runFolder: string } {
  if (typeof value !== 'string' || value === '') throw new UsageError('--model: expected a model file (last.tsl, best.tsl) or a run folder');
  try {
    return locateModel(value);
  } catch (err) {
    throw new UsageError(`--model: ${(err as Error).message}`);
  }
}

/** Reads a run's config.json when there is one. */
export function readRunConfig<T>(folder: string): T | undefined {
  const file = path.join(folder, 'config.json');
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** Relative to the current folder when shorter (for messages). */
export function shortPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && rel.length < p.length ? rel : p;
}
