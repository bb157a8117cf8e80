/**
 * Turns Fashion-MNIST's idx files (Debian's fashion-mnist package puts them in
 * /usr/share/datasets/fashion-mnist) into an Imagenette-style image folder:
 *
 *   <out>/train/<class>/<index>.png   from the training file
 *   <out>/val/<class>/<index>.png     from the test file
 *
 * Class-balanced: the same number of images per class, picked by a seeded
 * shuffle, so the same seed always gives the same folder.
 *
 * Usage: tsx scripts/fashion-mnist.ts <out> [--train-per-class 100] [--val-per-class 20]
 *        [--seed 0] [--source /usr/share/datasets/fashion-mnist]
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import sharp from 'sharp';
import { Random } from '../lib/data/random';

export const FASHION_MNIST_CLASSES = [
  'T-shirt_top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle_boot',
] as const;

export const DEFAULT_SOURCE = '/usr/share/datasets/fashion-mnist';

export interface FashionMnistOptions {
  /** Training images per class (at most 6000). Default 100. */
  trainPerClass?: number;
  /** Validation images per class, from the test file (at most 1000). Default 20. */
  validPerClass?: number;
  /** Seeds which images are picked. Default 0. */
  seed?: number;
  /** Folder with the four idx .gz files. Default /usr/share/datasets/fashion-mnist. */
  source?: string;
}

export interface FashionMnistFolder {
  root: string;
  trainCount: number;
  validCount: number;
}

/** One idx file pair: n images of rows x cols grey bytes and their labels. */
interface IdxSet {
  images: Buffer;
  labels: Buffer;
  rows: number;
  cols: number;
  n: number;
}

const IMAGES_MAGIC = 0x00000803;
const LABELS_MAGIC = 0x00000801;

function readIdx(source: string, prefix: 'train' | 't10k'): IdxSet {
  const imagesFile = path.join(source, `${prefix}-images-idx3-ubyte.gz`);
  const labelsFile = path.join(source, `${prefix}-labels-idx1-ubyte.gz`);
  for (const f of [imagesFile, labelsFile]) {
    if (!fs.existsSync(f)) throw new Error(`fashion-mnist: ${f} is missing (apt-get install fashion-mnist, or pass source)`);
  }
  const images = zlib.gunzipSync(fs.readFileSync(imagesFile));
  const labels = zlib.gunzipSync(fs.readFileSync(labelsFile));
  if (images.readUInt32BE(0) !== IMAGES_MAGIC) throw new Error(`fashion-mnist: ${imagesFile} is not an idx3 image file`);
  if (labels.readUInt32BE(0) !== LABELS_MAGIC) throw new Error(`fashion-mnist: ${labelsFile} is not an idx1 label file`);
  const n = images.readUInt32BE(4);
  const rows = images.readUInt32BE(8);
  const cols = images.readUInt32BE(12);
  if (labels.readUInt32BE(4) !== n) throw new Error(`fashion-mnist: ${prefix} has ${n} images but ${labels.readUInt32BE(4)} labels`);
  if (images.length !== 16 + n * rows * cols) throw new Error(`fashion-mnist: ${imagesFile} is truncated`);
  return { images: images.subarray(16), labels: labels.subarray(8), rows, cols, n };
}

/** `perClass` indices of each class, chosen by a seeded shuffle, in class then index order. */
function balancedPick(labels: Buffer, perClass: number, rng: Random): number[][] {
  const byClass: number[][] = FASHION_MNIST_CLASSES.map(() => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  return byClass.map((indices, c) => {
    if (indices.length < perClass) {
      throw new Error(`fashion-mnist: class ${FASHION_MNIST_CLASSES[c]} has ${indices.length} images, asked for ${perClass}`);
    }
    const order = rng.permutation(indices.length);
    return Array.from(order.subarray(0, perClass), (k) => indices[k]).sort((a, b) => a - b);
  });
}

async function writeSplit(set: IdxSet, picks: number[][], dir: string): Promise<number> {
  let count = 0;
  const size = set.rows * set.cols;
  for (const [c, indices] of picks.entries()) {
    const classDir = path.join(dir, FASHION_MNIST_CLASSES[c]);
    fs.mkdirSync(classDir, { recursive: true });
    // A few files at a time keeps sharp's pool busy without queuing thousands of jobs.
    for (let start = 0; start < indices.length; start += 32) {
      await Promise.all(
        indices.slice(start, start + 32).map((i) =>
          sharp(set.images.subarray(i * size, (i + 1) * size), { raw: { width: set.cols, height: set.rows, channels: 1 } })
            .png({ compressionLevel: 1 })
            .toFile(path.join(classDir, `${String(i).padStart(5, '0')}.png`)),
        ),
      );
      count += Math.min(32, indices.length - start);
    }
  }
  return count;
}

/** Writes the image folder under `out` (created; existing class folders are added to). */
export async function makeFashionMnistFolder(out: string, options: FashionMnistOptions = {}): Promise<FashionMnistFolder> {
  const trainPerClass = options.trainPerClass ?? 100;
  const validPerClass = options.validPerClass ?? 20;
  for (const [name, v] of Object.entries({ trainPerClass, validPerClass })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`fashion-mnist: ${name} must be a positive integer, got ${v}`);
  }
  const seed = options.seed ?? 0;
  const source = options.source ?? DEFAULT_SOURCE;
  const train = readIdx(source, 'train');
  const test = readIdx(source, 't10k');
  const root = path.resolve(out);
  const trainCount = await writeSplit(train, balancedPick(train.labels, trainPerClass, Random.stream(seed, 'fashion-mnist', 'train')), path.join(root, 'train'));
  const validCount = await writeSplit(test, balancedPick(test.labels, validPerClass, Random.stream(seed, 'fashion-mnist', 'val')), path.join(root, 'val'));
  return { root, trainCount, validCount };
}

function parseArgs(argv: string[]): { out: string; options: FashionMnistOptions } {
  const options: FashionMnistOptions = {};
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--train-per-class') options.trainPerClass = Number(value());
    else if (arg === '--val-per-class') options.validPerClass = Number(value());
    else if (arg === '--seed') options.seed = Number(value());
    else if (arg === '--source') options.source = value();
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else out = arg;
  }
  if (!out) throw new Error('usage: fashion-mnist <out> [--train-per-class N] [--val-per-class N] [--seed S] [--source DIR]');
  return { out, options };
}

if (require.main === module) {
  (async () => {
    const { out, options } = parseArgs(process.argv.slice(2));
    const started = Date.now();
    const made = await makeFashionMnistFolder(out, options);
    console.log(`${made.root}: ${made.trainCount} training and ${made.validCount} validation images in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  })().catch((err: Error) => {
    console.error(`fashion-mnist: ${err.message}`);
    process.exit(1);
  });
}
