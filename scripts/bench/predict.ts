/**
 * Inference benchmark (not a test): images/s of one resnet18 at 128 px, on the same prepared
 * pixels, in torchts's Predictor, in onnxruntime-node on the model torchts exported to ONNX, and
 * in PyTorch eval on the state_dict torchts exported (scripts/bench/predict_peer.py, the
 * /usr/bin/python3 torch unless TORCHTS_PYTHON names another), with the same thread count.
 *
 *   npx tsx scripts/bench/predict.ts [--images 256] [--size 128] [--bs 32] [--threads N] [--repeats 3]
 *
 * Rows: "pixels" rows time the model alone (uint8 NHWC batches of --bs in, probabilities out);
 * the classify row is the serving path end to end: every image is its own concurrent
 * `classify(file)` call (sharp decode + centre crop + resize on the libuv pool, then shared native
 * batches). The images are the data bench's 160 px photographs (photos.ts). The weights are the
 * untrained network's: speed does not depend on them. Each figure is the median of --repeats
 * passes after one untimed warm-up pass.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { imageFolder } from '../../lib/data';
import { decodeTransformed } from '../../lib/data/decode';
import { configureProcess } from '../../lib/data/threads';
import { Learner, Predictor, predictionRequest } from '../../lib/learn';
import { native } from '../../lib/native';
import { photoFolder } from './photos';

interface Args {
  images: number;
  size: number;
  bs: number;
  threads: number;
  repeats: number;
}

const PEER_PYTHON = process.env.TORCHTS_PYTHON ?? '/usr/bin/python3';
const CLASSES = 10;

function parseArgs(argv: string[]): Args {
  const args: Args = { images: 256, size: 128, bs: 32, threads: native().info().threads, repeats: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args)) throw new Error(`bench/predict: unknown option ${argv[i]} (expected --images --size --bs --threads --repeats)`);
    (args as unknown as Record<string, number>)[key] = Number(argv[i + 1]);
  }
  return args;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Images/s of `pass` (which handles `n` images): the median of timed passes after a warm-up. */
async function rate(n: number, repeats: number, pass: () => Promise<void>): Promise<number> {
  await pass();
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    await pass();
    rates.push(n / ((performance.now() - start) / 1000));
  }
  return median(rates);
}

/** The model's three files: torchts's export, its ONNX and its PyTorch state_dict. */
async function exportModel(dir: string, photos: string, args: Args): Promise<{ tsl: string; onnx: string; pth: string }> {
  const data = await imageFolder(photos, { seed: 0, log: () => undefined });
  const learn = new Learner({ data, arch: 'resnet18', size: args.size, bs: args.bs, seed: 0, device: 'cpu' });
  try {
    const files = { tsl: path.join(dir, 'model.tsl'), onnx: path.join(dir, 'model.onnx'), pth: path.join(dir, 'model.pth') };
    await learn.export(files.tsl);
    await learn.exportOnnx(files.onnx, { probabilities: true });
    await learn.exportPyTorch(files.pth);
    return files;
  } finally {
    learn.dispose();
  }
}

function batches(pixels: Uint8Array, args: Args): { images: Uint8Array; n: number }[] {
  const bytes = args.size * args.size * 3;
  const out = [];
  for (let i = 0; i < args.images; i += args.bs) {
    const n = Math.min(args.bs, args.images - i);
    out.push({ images: pixels.subarray(i * bytes, (i + n) * bytes), n });
  }
  return out;
}

async function torchtsRates(files: string[], pixels: Uint8Array, tsl: string, args: Args): Promise<{ pixels: number; classify: number; meanBatch: number }> {
  const predictor = await Predictor.load(tsl, { device: 'cpu', maxBatch: args.bs });
  try {
    const split = batches(pixels, args);
    const onPixels = await rate(args.images, args.repeats, async () => {
      for (const b of split) await predictor.predict({ images: b.images, n: b.n, h: args.size, w: args.size });
    });
    const classify = await rate(args.images, args.repeats, async () => {
      await Promise.all(files.map((file) => predictor.classify(file)));
    });
    return { pixels: onPixels, classify, meanBatch: predictor.stats().meanBatchSize };
  } finally {
    predictor.dispose();
  }
}

async function onnxRate(pixels: Uint8Array, onnx: string, args: Args): Promise<number> {
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: args.threads, interOpNumThreads: 1, executionMode: 'sequential' });
  try {
    const split = batches(pixels, args);
    return await rate(args.images, args.repeats, async () => {
      for (const b of split) await session.run({ images: new ort.Tensor('uint8', b.images, [b.n, args.size, args.size, 3]) });
    });
  } finally {
    await session.release();
  }
}

function pytorchRate(pixelsFile: string, pth: string, args: Args): { torch: string; rate: number } {
  const mean = JSON.stringify([0.485, 0.456, 0.406]);
  const std = JSON.stringify([0.229, 0.224, 0.225]);
  const peer = path.join(__dirname, 'predict_peer.py');
  const argv = [peer, pth, pixelsFile, args.images, args.size, CLASSES, args.bs, args.threads, args.repeats, mean, std].map(String);
  const result = spawnSync(PEER_PYTHON, argv, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`bench/predict: the PyTorch peer failed:\n${result.stderr}`);
  const out = JSON.parse(result.stdout.trim().split('\n').pop()!) as { torch: string; rates: number[] };
  return { torch: out.torch, rate: median(out.rates) };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  configureProcess({});
  native().setThreads(args.threads);
  const photos = await photoFolder({ images: args.images, classes: CLASSES, photos: null });
  const files = fs.readdirSync(path.join(photos, 'train'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort().slice(0, args.images);
  args.images = files.length;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-bench-predict-'));
  try {
    const model = await exportModel(dir, photos, args);
    const request = predictionRequest(args.size);
    const pixels = new Uint8Array(args.images * args.size * args.size * 3);
    for (const [i, file] of files.entries()) pixels.set((await decodeTransformed(file, request)).pixels, i * args.size * args.size * 3);
    const pixelsFile = path.join(dir, 'pixels.u8');
    fs.writeFileSync(pixelsFile, pixels);

    console.log(`resnet18, ${args.size} px, ${args.images} photographs, batches of ${args.bs}, ${args.threads} threads, median of ${args.repeats}`);
    const ours = await torchtsRates(files, pixels, model.tsl, args);
    const onnx = await onnxRate(pixels, model.onnx, args);
    const peer = pytorchRate(pixelsFile, model.pth, args);
    const info = native().info();
    const rows: [string, number][] = [
      [`torchts Predictor.predict, pixels (libtorch ${info.torchVersion})`, ours.pixels],
      [`onnxruntime-node ${ort.env.versions.common}, pixels (torchts's ONNX export)`, onnx],
      [`PyTorch ${peer.torch} eval, pixels (torchts's state_dict)`, peer.rate],
      [`torchts Predictor.classify, files, concurrent (decode included; mean batch ${ours.meanBatch.toFixed(1)})`, ours.classify],
    ];
    const width = Math.max(...rows.map(([name]) => name.length));
    console.log(`${'path'.padEnd(width)}  img/s  vs PyTorch`);
    for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value.toFixed(1).padStart(5)}  ${(value / peer.rate).toFixed(2)}x`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
