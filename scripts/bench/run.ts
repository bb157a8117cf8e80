/**
 * `npm run bench`: runs the benchmarks of this folder, each in its own process (tsx).
 *
 *   npm run bench                        step, train, data and predict, one after the other (the PyTorch comparisons)
 *   npm run bench -- step train          the named ones, with their default arguments
 *   npm run bench -- step --steps 3      one benchmark with its own arguments
 *   npm run bench -- --list              what there is
 *
 * Each also runs alone (`npx tsx scripts/bench/step.ts`); its header comment lists its options.
 * They are measurements, not tests: minutes each, and the PyTorch comparisons need
 * /usr/bin/python3 with torch (TORCHTS_PYTHON for step.ts).
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

interface Bench {
  name: string;
  what: string;
  /** Part of a bare `npm run bench`. */
  inAll: boolean;
}

const BENCHES: readonly Bench[] = [
  { name: 'step', what: "one training step, ours against PyTorch's, per model and size", inAll: true },
  { name: 'train', what: 'the same Fashion-MNIST recipe trained by torchts and by PyTorch + torchvision', inAll: true },
  { name: 'data', what: 'JPEG decoding and augmentation into batches, ours against torchvision DataLoader', inAll: true },
  { name: 'predict', what: "inference of resnet18 at 128 px: torchts's Predictor, onnxruntime-node on its ONNX export, PyTorch eval", inAll: true },
  { name: 'ddp', what: 'data-parallel steps: 1 process x 2 threads against 2 processes x 1 thread, ours and PyTorch DDP', inAll: false },
  { name: 'install', what: 'npm install of the packed tarball: prebuilt binary against a source build (packs and builds)', inAll: false },
];

function list(): string {
  const width = Math.max(...BENCHES.map((b) => b.name.length));
  const rows = BENCHES.map((b) => `  ${b.name.padEnd(width)}  ${b.what}${b.inAll ? '' : ' [only by name]'}`);
  return ['benchmarks (scripts/bench/<name>.ts):', ...rows, '', 'npm run bench [-- NAME... | NAME --its-options | --list]'].join('\n');
}

/** Runs one benchmark under tsx, output straight through; resolves to its exit status. */
function runOne(bench: Bench, args: readonly string[]): number {
  const file = path.join(__dirname, `${bench.name}.ts`);
  process.stdout.write(`\n=== ${bench.name}: ${bench.what}\n=== npx tsx scripts/bench/${bench.name}.ts ${args.join(' ')}\n`);
  const started = Date.now();
  const child = spawnSync(process.execPath, [require.resolve('tsx/cli'), file, ...args], { stdio: 'inherit' });
  const status = child.status ?? 1;
  const why = child.error ? ` (${child.error.message})` : child.signal ? ` (${child.signal})` : '';
  process.stdout.write(`=== ${bench.name}: exit ${status}${why} after ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  return status;
}

function main(argv: readonly string[]): number {
  if (argv.includes('--list') || argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${list()}\n`);
    return 0;
  }
  const firstOption = argv.findIndex((a) => a.startsWith('-'));
  const names = firstOption < 0 ? [...argv] : argv.slice(0, firstOption);
  const options = firstOption < 0 ? [] : argv.slice(firstOption);
  const unknown = names.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}\n${list()}\n`);
    return 2;
  }
  if (options.length > 0 && names.length !== 1) {
    process.stderr.write(`bench: options (${options.join(' ')}) go to one named benchmark, e.g. npm run bench -- step --steps 3\n`);
    return 2;
  }
  const chosen = names.length > 0 ? BENCHES.filter((b) => names.includes(b.name)) : BENCHES.filter((b) => b.inAll);
  const failed = chosen.filter((b) => runOne(b, options) !== 0).map((b) => b.name);
  if (failed.length > 0) process.stderr.write(`bench: failed: ${failed.join(', ')}\n`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
