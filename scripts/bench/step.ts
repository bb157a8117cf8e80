/**
 * Training-step benchmark (not a test): our native Learner's trainStep against the same step
 * in PyTorch (scripts/bench/step_peer.py, /usr/bin/python3, the same libtorch build), on the
 * CPU with the same thread count. Prints both step times and the ratio (ours / PyTorch): the
 * median and the best wall-clock time, and the best process CPU time (on a shared machine other
 * load only adds time, so the best figures are the steadiest).
 *
 *   npx tsx scripts/bench/step.ts [--warmup 2] [--steps 5] [--bs 32] [--threads N]
 *
 * The step on both sides: uint8 NHWC batch -> float -> (x/255 - mean)/std -> forward -> cross
 * entropy -> backward -> AdamW. Each configuration runs ours, then the peer, back to back, so a
 * change in machine load hits both alike.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { native } from '../../lib/native';

interface Args {
  warmup: number;
  steps: number;
  bs: number;
  threads: number;
  /** 'cpu' or 'cuda' (scripts/gpu-check.sh); both sides run on it. */
  device: string;
}

const PEER_PYTHON = process.env.TORCHTS_PYTHON ?? '/usr/bin/python3';
const CONFIGS: [string, number][] = [
  ['resnet18', 64],
  ['resnet18', 128],
  ['xresnet18', 64],
  ['xresnet18', 128],
];

function parseArgs(argv: string[]): Args {
  const args: Args = { warmup: 2, steps: 5, bs: 32, threads: native().info().threads, device: 'cpu' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args)) throw new Error(`bench/step: unknown option ${argv[i]} (expected --warmup --steps --bs --threads --device)`);
    const value = argv[i + 1];
    (args as unknown as Record<string, number | string>)[key] = key === 'device' ? value : Number(value);
  }
  return args;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface StepTimes {
  /** Median wall-clock ms per step. */
  ms: number;
  /** Median process CPU ms per step (all threads): less sensitive to other load on the machine. */
  cpuMs: number;
  /** Fastest step, wall clock and CPU: other load only ever adds time, so these are the steadiest. */
  bestMs: number;
  bestCpuMs: number;
  params: number;
}

async function ours(arch: string, size: number, args: Args): Promise<StepTimes> {
  const binding = native();
  binding.setThreads(args.threads);
  const learner = new binding.Learner({
    arch,
    numClasses: 10,
    device: args.device,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    seed: 0,
  });
  try {
    const n = args.bs;
    const images = new Uint8Array(n * size * size * 3);
    for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
    const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < args.warmup + args.steps; i++) {
      const start = process.hrtime.bigint();
      const cpuStart = process.cpuUsage();
      await learner.trainStep({ images, n, h: size, w: size, labels }, { lrs: [1e-3], mom: 0.9 });
      if (i >= args.warmup) {
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
        const cpu = process.cpuUsage(cpuStart);
        cpuTimes.push((cpu.user + cpu.system) / 1000);
      }
    }
    const params = learner.parameters().reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    return { ms: median(times), cpuMs: median(cpuTimes), bestMs: Math.min(...times), bestCpuMs: Math.min(...cpuTimes), params };
  } finally {
    learner.dispose();
  }
}

function peer(arch: string, size: number, args: Args): StepTimes {
  const script = path.join(__dirname, 'step_peer.py');
  const argv = [script, arch, size, args.bs, args.threads, args.warmup, args.steps, args.device].map(String);
  const result = spawnSync(PEER_PYTHON, argv, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`step_peer.py failed: ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const info = native().info();
  console.log(
    `training step, ${args.device}, batch ${args.bs}, ${args.threads} threads, median of ${args.steps} steps after ${args.warmup} warm-up; libtorch ${info.torchVersion}`,
  );
  console.log('                  median wall clock ms        best wall clock ms          best CPU ms (all threads)');
  console.log('arch        size  torchts pytorch   ratio   torchts pytorch   ratio   torchts pytorch   ratio');
  for (const [arch, size] of CONFIGS) {
    const a = await ours(arch, size, args);
    const b = peer(arch, size, args);
    const note = a.params === b.params ? '' : `  (parameter counts differ: ${a.params} vs ${b.params})`;
    const cell = (x: number) => x.toFixed(0).padStart(8);
    const pair = (x: number, y: number) => `${cell(x)}${cell(y)} ${(x / y).toFixed(2).padStart(6)}x `;
    console.log(
      `${arch.padEnd(11)} ${String(size).padStart(4)} ${pair(a.ms, b.ms)} ${pair(a.bestMs, b.bestMs)} ${pair(a.bestCpuMs, b.bestCpuMs)}${note}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
