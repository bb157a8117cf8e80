/**
 * Builds data/fashion-mnist, the dataset `npx torchts-train` trains on when no
 * --data is given: a class-balanced Fashion-MNIST subset as an image folder
 * (train/<class>/*.png, val/<class>/*.png), made from Debian's
 * dataset-fashion-mnist package by scripts/fashion-mnist.ts, with the
 * dataset's licence and attribution beside it.
 *
 * Usage: tsx scripts/make-default-data.ts [--out data/fashion-mnist]
 *        [--train-per-class 300] [--val-per-class 50] [--seed 0]
 *        [--source /usr/share/datasets/fashion-mnist]
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { DEFAULT_SOURCE, makeFashionMnistFolder } from './fashion-mnist';

/** The subset shipped in the package; sized so the default run reaches >= 80 % in < 2 min on 2 cores. */
export const DEFAULT_SUBSET = { trainPerClass: 300, validPerClass: 50, seed: 0 } as const;

const LICENSE = `The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN
AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;

/** The Debian package version the files came from, when dpkg knows it. */
function debianVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'dataset-fashion-mnist'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function readme(options: { trainPerClass: number; validPerClass: number; seed: number }, version: string): string {
  return `# Fashion-MNIST subset (bundled with torchts)

A small, class-balanced subset of Fashion-MNIST, the dataset \`npx torchts-train\`
trains on when no \`--data\` is given.

- 10 classes, 28 x 28 greyscale PNG files, one folder per class.
- \`train/\`: ${options.trainPerClass} images per class (${options.trainPerClass * 10}), picked from Fashion-MNIST's training set.
- \`val/\`: ${options.validPerClass} images per class (${options.validPerClass * 10}), picked from Fashion-MNIST's test set.
- File names are the image's index in the original idx file.

## Attribution

Fashion-MNIST is by Han Xiao, Kashif Rasul and Roland Vollgraf, Zalando Research:
"Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
Algorithms", arXiv:1708.07747 (2017), https://github.com/zalandoresearch/fashion-mnist.
Copyright (c) 2017 Zalando SE, released under the MIT licence (see LICENSE in this folder).

## How it was made

From Debian's \`dataset-fashion-mnist\` package (version ${version}), which installs the
original idx files in ${DEFAULT_SOURCE}:

    npx tsx scripts/make-default-data.ts --train-per-class ${options.trainPerClass} --val-per-class ${options.validPerClass} --seed ${options.seed}

The script uses scripts/fashion-mnist.ts: for each class a seeded shuffle picks
the images, which are written as single-channel PNG (pixels unchanged, recompressed at level 9).
`;
}

function parseArgs(argv: string[]) {
  const o = { out: path.join(__dirname, '..', 'data', 'fashion-mnist'), source: DEFAULT_SOURCE, ...DEFAULT_SUBSET } as {
    out: string;
    source: string;
    trainPerClass: number;
    validPerClass: number;
    seed: number;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (arg === '--out') o.out = value;
    else if (arg === '--source') o.source = value;
    else if (arg === '--train-per-class') o.trainPerClass = Number(value);
    else if (arg === '--val-per-class') o.validPerClass = Number(value);
    else if (arg === '--seed') o.seed = Number(value);
    else throw new Error(`unknown option ${arg}`);
  }
  return o;
}

/** PNG files under `dir`, recursively. */
function pngFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? pngFiles(path.join(dir, e.name)) : e.name.endsWith('.png') ? [path.join(dir, e.name)] : [],
  );
}

/**
 * Re-encodes every PNG as single-channel with the strongest compression: the
 * same pixels in about a third of the bytes, which keeps the package small.
 */
async function recompress(root: string): Promise<void> {
  const files = pngFiles(root);
  for (let start = 0; start < files.length; start += 64) {
    await Promise.all(
      files.slice(start, start + 64).map(async (file) => {
        const smaller = await sharp(file).toColourspace('b-w').png({ compressionLevel: 9, adaptiveFiltering: true }).toBuffer();
        fs.writeFileSync(file, smaller);
      }),
    );
  }
}

/** Replaces `out` with a fresh subset, LICENSE and README. */
export async function makeDefaultData(o: ReturnType<typeof parseArgs>): Promise<{ images: number; bytes: number }> {
  const root = path.resolve(o.out);
  for (const split of ['train', 'val']) fs.rmSync(path.join(root, split), { recursive: true, force: true });
  const made = await makeFashionMnistFolder(root, o);
  await recompress(root);
  fs.writeFileSync(path.join(root, 'LICENSE'), LICENSE);
  fs.writeFileSync(path.join(root, 'README.md'), readme(o, debianVersion()));
  let bytes = 0;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else bytes += fs.statSync(path.join(dir, e.name)).size;
    }
  };
  walk(root);
  return { images: made.trainCount + made.validCount, bytes };
}

if (require.main === module) {
  makeDefaultData(parseArgs(process.argv.slice(2))).then(
    ({ images, bytes }) => console.log(`data/fashion-mnist: ${images} images, ${(bytes / 1e6).toFixed(2)} MB`),
    (err: Error) => {
      console.error(`make-default-data: ${err.message}`);
      process.exit(1);
    },
  );
}
