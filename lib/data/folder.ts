/**
 * Lists an image folder in Imagenette layout and splits it.
 *
 *   root/train/<class>/*.jpg   root/val/<class>/*.jpg     (split by folder)
 *   root/train/<class>/*.jpg                              (seeded random split)
 *   root/<class>/*.jpg                                    (seeded random split)
 *
 * The label is the parent folder; classes are sorted by name (code-point
 * order, so the order is the same on every platform and locale).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Item, SkippedFile } from './types';
import { notRegularFile } from '../util/files';
import { Random } from './random';
import { DATA_SEED } from '../defaults';

/** File endings read as images (sharp decodes all of them). Other files are ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'];

export interface FolderSplitOptions {
  /** Name of the training folder. Default 'train'. */
  trainFolder?: string;
  /** Names tried for the validation folder, first found wins. Default ['val', 'valid']. */
  validFolders?: string[];
  /** Fraction held out for validation when there is no validation folder. Default 0.2. */
  validPct?: number;
  /** Seed of the random split. Default `DATA_SEED`. */
  seed?: number;
}

export interface ListedFolder {
  root: string;
  classes: string[];
  trainItems: Item[];
  validItems: Item[];
  /** How the split was made: 'folder' (train/ and val/) or 'random'. */
  split: 'folder' | 'random';
  /** Image-named entries left out: not regular files after following links (FIFOs, devices, dangling links). */
  ignored: SkippedFile[];
}

function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function sortedEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Image files under `dir`, recursively, sorted by path. Only regular files, after following
 * links: reading a FIFO or a device would block or never end. Those go to `ignored`.
 */
function imagesUnder(dir: string, ignored: SkippedFile[]): string[] {
  const out: string[] = [];
  for (const e of sortedEntries(dir)) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      out.push(...imagesUnder(p, ignored));
    } else if (isImageFile(e.name)) {
      const why = e.isFile() ? null : notRegularFile(p);
      if (why === null) out.push(p);
      else ignored.push({ file: p, reason: why });
    }
  }
  return out;
}

/** class name -> sorted image files, for each class subfolder of `dir`. */
function classFolders(dir: string, ignored: SkippedFile[]): Map<string, string[]> {
  const classes = new Map<string, string[]>();
  for (const e of sortedEntries(dir)) {
    if (!e.isDirectory() && !(e.isSymbolicLink() && isDirectory(path.join(dir, e.name)))) continue;
    const files = imagesUnder(path.join(dir, e.name), ignored);
    classes.set(e.name, files);
  }
  return classes;
}

function checkClasses(dir: string, classes: Map<string, string[]>): void {
  if (classes.size === 0) {
    throw new Error(`image folder: ${dir} has no class subfolders (expected ${dir}/<class>/<image files>)`);
  }
  for (const [name, files] of classes) {
    if (files.length === 0) {
      throw new Error(`image folder: class folder ${path.join(dir, name)} has no image files (${IMAGE_EXTENSIONS.join(' ')})`);
    }
  }
}

function toItems(classes: Map<string, string[]>, index: Map<string, number>): Item[] {
  const items: Item[] = [];
  for (const [name, files] of classes) {
    const label = index.get(name);
    if (label === undefined) throw new Error(`image folder: class '${name}' is not among the training classes`);
    for (const file of files) items.push({ file, label });
  }
  return items;
}

/** Lists and splits an image folder; throws an Error naming the path when it is missing or empty. */
export function listImageFolder(root: string, options: FolderSplitOptions = {}): ListedFolder {
  const trainFolder = options.trainFolder ?? 'train';
  const validFolders = options.validFolders ?? ['val', 'valid'];
  const validPct = options.validPct ?? 0.2;
  const seed = options.seed ?? DATA_SEED;
  if (!(validPct >= 0 && validPct < 1)) throw new Error(`image folder: validPct must be in [0, 1), got ${validPct}`);
  const abs = path.resolve(root);
  if (!fs.existsSync(abs)) throw new Error(`image folder: ${abs} does not exist`);
  if (!isDirectory(abs)) throw new Error(`image folder: ${abs} is not a folder`);

  const trainDir = path.join(abs, trainFolder);
  const validDir = validFolders.map((v) => path.join(abs, v)).find(isDirectory);
  const ignored: SkippedFile[] = [];
  if (isDirectory(trainDir) && validDir) {
    const train = classFolders(trainDir, ignored);
    checkClasses(trainDir, train);
    const valid = classFolders(validDir, ignored);
    const classes = [...train.keys()];
    const index = new Map(classes.map((c, i) => [c, i]));
    for (const name of valid.keys()) {
      if (!index.has(name)) throw new Error(`image folder: validation class folder ${path.join(validDir, name)} has no training counterpart in ${trainDir}`);
    }
    const validItems = toItems(valid, index);
    if (validItems.length === 0) throw new Error(`image folder: validation folder ${validDir} has no image files`);
    return { root: abs, classes, trainItems: toItems(train, index), validItems, split: 'folder', ignored };
  }

  const dir = isDirectory(trainDir) ? trainDir : abs;
  const all = classFolders(dir, ignored);
  checkClasses(dir, all);
  const classes = [...all.keys()];
  const items = toItems(all, new Map(classes.map((c, i) => [c, i])));
  const { train, valid } = randomSplit(items, validPct, seed);
  return { root: abs, classes, trainItems: train, validItems: valid, split: 'random', ignored };
}

/** fastai's RandomSplitter: shuffle with the seed, the first round(pct*n) go to validation. Order within each split is kept. */
export function randomSplit<T>(items: readonly T[], validPct: number, seed: number): { train: T[]; valid: T[] } {
  const perm = Random.stream(seed, 'split').permutation(items.length);
  const nValid = Math.round(validPct * items.length);
  const isValid = new Uint8Array(items.length);
  for (let i = 0; i < nValid; i++) isValid[perm[i]] = 1;
  const train: T[] = [];
  const valid: T[] = [];
  items.forEach((item, i) => (isValid[i] ? valid : train).push(item));
  return { train, valid };
}
