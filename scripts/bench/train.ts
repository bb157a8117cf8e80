/**
 * Benchmark (not a test): the same training recipe with torchts and with plain
 * PyTorch + torchvision (scripts/bench/train_peer.py, /usr/bin/python3) on the
 * same Fashion-MNIST image folder, side by side.
 *
 * Recipe: xresnet18 from random weights, size 28, bs 64, one-cycle (lr 3e-3),
 * random-resized crop (scale 0.35..1) + horizontal flip, ImageNet normalisation,
 * AdamW (fastai defaults), 2 threads, no data workers on the peer.
 *
 * Usage: tsx scripts/bench/train.ts [--root DIR] [--train-per-class 1000] [--val-per-class 200]
 *        [--epochs 2] [--size 28] [--bs 64] [--lr 3e-3] [--threads 2] [--only torchts|pytorch] [--no-cache]
 *
 * Each side runs in its own child process so peak RSS is its own.
 * Targets: wall time <= 0.9x PyTorch's, accuracy within 1 point, peak RSS <= 1.0x.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface EpochResult {
  seconds: number;
  train_seconds: number;
  images: number;
  valid_loss: number;
  accuracy: number;
}

interface SideResult {
  name: string;
  threads: number;
  epochs: EpochResult[];
  peak_rss_mb: number;
}

interface BenchArgs {
  root?: string;
  trainPerClass: number;
  valPerClass: number;
  epochs: number;
  size: number;
  bs: number;
  lr: number;
  threads: number;
  minScale: number;
  seed: number;
  only?: 'torchts' | 'pytorch';
  /** torchts keeps decoded images in a disk cache (default on; --no-cache turns it off). */
  cache: boolean;
  worker: boolean;
}

function parseArgs(argv: string[]): BenchArgs {
  const args: BenchArgs = {
    trainPerClass: 1000, valPerClass: 200, epochs: 2, size: 28, bs: 64, lr: 3e-3, threads: 2, minScale: 0.35, seed: 0, cache: true, worker: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${key} needs a value`);
      return v;
    };
    switch (key) {
      case '--root': args.root = next(); break;
      case '--train-per-class': args.trainPerClass = Number(next()); break;
      case '--val-per-class': args.valPerClass = Number(next()); break;
      case '--epochs': args.epochs = Number(next()); break;
      case '--size': args.size = Number(next()); break;
      case '--bs': args.bs = Number(next()); break;
      case '--lr': args.lr = Number(next()); break;
      case '--threads': args.threads = Number(next()); break;
      case '--min-scale': args.minScale = Number(next()); break;
      case '--seed': args.seed = Number(next()); break;
      case '--only': args.only = next() as BenchArgs['only']; break;
      case '--no-cache': args.cache = false; break;
      case '--worker': args.worker = true; break;
      default: throw new Error(`unknown option ${key}`);
    }
  }
  return args;
}

/** The torchts side, run in this process when started with --worker. */
async function runTorchts(args: BenchArgs & { root: string }): Promise<SideResult> {
  const { configureProcess, imageFolder } = await import('../../lib/data');
  // The decode settings the CLI uses (the pool size comes from this process's environment).
  configureProcess();
  const { native } = await import('../../lib/native');
  const { Learner } = await import('../../lib/learn');
  native().setThreads(args.threads);
  const cacheDir = args.cache ? fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-bench-cache-')) : undefined;
  const data = await imageFolder(args.root, {
    seed: args.seed,
    normalize: 'imagenet',
    // Only the crop and the flip, as the peer's transforms.
    augment: { doFlip: true, maxRotate: 0, minZoom: 1, maxZoom: 1, maxLighting: 0, maxWarp: 0, minScale: args.minScale, ratio: [3 / 4, 4 / 3] },
    // Decoded, presized images kept on disk after the first epoch (torchts' own cache).
    cache: cacheDir ?? false,
    log: () => undefined,
  });
  const learn = new Learner({ data, arch: 'xresnet18', device: 'cpu', size: args.size, bs: args.bs, seed: args.seed });
  const epochs: EpochResult[] = [];
  let trainStarted = 0;
  let images = 0;
  let trainSeconds = 0;
  learn.addCallback({
    beforeEpoch: () => {
      trainStarted = performance.now();
      images = 0;
    },
    afterBatch: (s) => {
      if (!s.training) return;
      images += s.batch?.n ?? 0;
      if (s.batchIndex === s.batchCount - 1) trainSeconds = (performance.now() - trainStarted) / 1000;
    },
    afterEpoch: (s) => {
      const r = s.record!;
      epochs.push({ seconds: r.seconds, train_seconds: trainSeconds, images, valid_loss: r.validLoss, accuracy: r.metrics.accuracy });
    },
  });
  try {
    await learn.fitOneCycle(args.epochs, args.lr);
  } finally {
    learn.dispose();
    await data.close();
    if (cacheDir) fs.rmSync(cacheDir, { recursive: true, force: true });
  }
  return { name: 'torchts', threads: native().info().threads, epochs, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
}

function lastJsonLine(text: string): SideResult {
  const line = text.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no result line in:\n${text}`);
  return JSON.parse(line) as SideResult;
}

function runSide(name: 'torchts' | 'pytorch', args: BenchArgs & { root: string }): SideResult {
  const common = ['--size', args.size, '--bs', args.bs, '--epochs', args.epochs, '--lr', args.lr, '--threads', args.threads, '--min-scale', args.minScale, '--seed', args.seed].map(String);
  const env = { ...process.env, UV_THREADPOOL_SIZE: String(os.availableParallelism()) };
  const out =
    name === 'pytorch'
      ? execFileSync('/usr/bin/python3', [path.join(__dirname, 'train_peer.py'), args.root, ...common], { encoding: 'utf8', env, maxBuffer: 1 << 26 })
      : execFileSync(process.execPath, [...process.execArgv, __filename, '--worker', '--root', args.root, ...common, ...(args.cache ? [] : ['--no-cache'])], { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  return lastJsonLine(out);
}

/** Training images per second over every epoch but the first (when there are several): steady state. */
function steady(r: SideResult): { epochSeconds: number; imgPerSec: number; accuracy: number } {
  const e = r.epochs.length > 1 ? r.epochs.slice(1) : r.epochs;
  const images = e.reduce((s, x) => s + x.images, 0);
  const trainSeconds = e.reduce((s, x) => s + x.train_seconds, 0);
  return {
    epochSeconds: e.reduce((s, x) => s + x.seconds, 0) / e.length,
    imgPerSec: images / trainSeconds,
    accuracy: r.epochs[r.epochs.length - 1].accuracy,
  };
}

function report(results: SideResult[], args: BenchArgs): void {
  console.log(`\nxresnet18, ${args.size} px, bs ${args.bs}, ${args.epochs} epochs, one-cycle lr ${args.lr}, ${args.threads} threads`);
  console.log('side      epoch s (all)          steady epoch s   img/s   accuracy   peak RSS MB');
  for (const r of results) {
    const s = steady(r);
    const all = r.epochs.map((e) => e.seconds.toFixed(1)).join(' ');
    console.log(`${r.name.padEnd(9)} ${all.padEnd(22)} ${s.epochSeconds.toFixed(1).padStart(14)} ${s.imgPerSec.toFixed(0).padStart(7)} ${s.accuracy.toFixed(4).padStart(10)} ${r.peak_rss_mb.toFixed(0).padStart(13)}`);
  }
  const ours = results.find((r) => r.name === 'torchts');
  const peer = results.find((r) => r.name === 'pytorch');
  if (ours && peer) {
    const [o, p] = [steady(ours), steady(peer)];
    const totalOurs = ours.epochs.reduce((s, e) => s + e.seconds, 0);
    const totalPeer = peer.epochs.reduce((s, e) => s + e.seconds, 0);
    console.log(`ratios (torchts / pytorch): wall time ${(totalOurs / totalPeer).toFixed(2)}x (target <= 0.9), ` +
      `img/s ${(o.imgPerSec / p.imgPerSec).toFixed(2)}x, accuracy ${((o.accuracy - p.accuracy) * 100).toFixed(1)} points (target within 1), ` +
      `peak RSS ${(ours.peak_rss_mb / peer.peak_rss_mb).toFixed(2)}x (target <= 1.0)`);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.worker) {
    if (!args.root) throw new Error('--worker needs --root');
    console.log(JSON.stringify(await runTorchts({ ...args, root: args.root })));
    return;
  }
  let root = args.root;
  let temp: string | undefined;
  if (!root) {
    const { makeFashionMnistFolder } = await import('../fashion-mnist');
    temp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-bench-train-'));
    root = path.join(temp, 'fashion-mnist');
    const made = await makeFashionMnistFolder(root, { trainPerClass: args.trainPerClass, validPerClass: args.valPerClass, seed: args.seed });
    console.log(`data: ${made.trainCount} training, ${made.validCount} validation images in ${root}`);
  }
  try {
    const results: SideResult[] = [];
    for (const side of ['torchts', 'pytorch'] as const) {
      if (args.only && args.only !== side) continue;
      console.log(`running ${side}...`);
      results.push(runSide(side, { ...args, root }));
    }
    report(results, args);
  } finally {
    if (temp) fs.rmSync(temp, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench/train: ${err.stack ?? err.message}`);
  process.exit(1);
});
