/**
 * Data-parallel benchmark (not a test): images/s of training steps for one process with 2
 * threads against 2 processes with 1 thread each (a Gloo group over loopback, the same global
 * batch), and the time per step a rank waits for the gradient all-reduce after its backward
 * (the part not hidden behind backward), with the buckets launched from the hooks (overlap) and
 * after backward. The PyTorch peer (scripts/bench/ddp_peer.py: DistributedDataParallel on Gloo)
 * runs the same configurations on the same machine.
 *
 *   npx tsx scripts/bench/ddp.ts [--warmup 3] [--steps 10] [--bs 64]
 *
 * bs is the global batch: each of the 2 ranks takes bs/2.
 */
import { spawn } from 'child_process';
import * as net from 'net';
import * as path from 'path';

const PEER_PYTHON = process.env.TORCHTS_PYTHON ?? '/usr/bin/python3';
const CONFIGS: [string, number][] = [
  ['xresnet18', 28],
  ['resnet18', 64],
];

interface Result {
  rank: number;
  medianMs: number;
  waitMs?: number;
}

function option(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'], cwd: __dirname });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

/** One process with 2 threads, or 2 ranks with 1 thread each; resolves with every rank's result. */
async function measure(command: (bs: number, threads: number) => [string, string[]], bs: number, ranks: 1 | 2): Promise<Result[]> {
  if (ranks === 1) {
    const [cmd, args] = command(bs, 2);
    return [await run(cmd, args, { TORCHTS_THREADS: '2' })];
  }
  const port = String(await freePort());
  const [cmd, args] = command(bs / 2, 1);
  return Promise.all([0, 1].map((rank) => run(cmd, args, { TORCHTS_THREADS: '1', RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: port })));
}

async function main(argv: string[]): Promise<void> {
  const warmup = option(argv, 'warmup', 3);
  const steps = option(argv, 'steps', 10);
  const bs = option(argv, 'bs', 64);
  const tsx = require.resolve('tsx/cli');
  const worker = path.join(__dirname, 'ddp_worker.ts');
  const rows: string[][] = [['model', 'size', 'who', 'processes x threads', 'images/s', 'step ms', 'all-reduce wait ms/step']];
  for (const [arch, size] of CONFIGS) {
    const ours = (overlap: boolean) => (b: number): [string, string[]] => [process.execPath, [tsx, worker, arch, String(size), String(b), String(warmup), String(steps), overlap ? '1' : '0']];
    const peer = (b: number, threads: number): [string, string[]] => [PEER_PYTHON, [path.join(__dirname, 'ddp_peer.py'), arch, String(size), String(b), String(threads), String(warmup), String(steps)]];
    const cases: [string, string, Promise<Result[]> | (() => Promise<Result[]>)][] = [
      ['torchts', '1 x 2', () => measure(ours(true), bs, 1)],
      ['torchts, overlap', '2 x 1', () => measure(ours(true), bs, 2)],
      ['torchts, after backward', '2 x 1', () => measure(ours(false), bs, 2)],
      ['PyTorch', '1 x 2', () => measure(peer, bs, 1)],
      ['PyTorch DDP', '2 x 1', () => measure(peer, bs, 2)],
    ];
    for (const [who, shape, start] of cases) {
      const results = await (start as () => Promise<Result[]>)();
      const ms = Math.max(...results.map((r) => r.medianMs));
      const wait = results[0].waitMs;
      rows.push([arch, String(size), who, shape, (bs / (ms / 1000)).toFixed(0), ms.toFixed(1), wait === undefined || shape === '1 x 2' ? '-' : wait.toFixed(1)]);
      process.stdout.write(`${rows[rows.length - 1].join(' | ')}\n`);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  process.stdout.write(`\nglobal batch ${bs}, ${steps} timed steps after ${warmup} warm-up, median\n`);
  for (const row of rows) process.stdout.write(`${row.map((v, c) => v.padEnd(widths[c])).join('  ')}\n`);
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`bench/ddp: ${(err as Error).message}\n`);
  process.exit(1);
});
