/**
 * `torchts-train --nproc-per-node N`: starts N ranks of this same command on this machine, as
 * torchrun does (the same environment: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
 * MASTER_ADDR, MASTER_PORT), splits the cores between them, and watches them: the first rank
 * that fails ends the others, and Ctrl-C is passed to every rank once, so they stop together
 * and rank 0 writes one checkpoint. Rank 0 speaks for the run on this terminal; the other
 * ranks' lines carry a "[rank N]" prefix.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as net from 'net';
import { DISTRIBUTED_DEFAULTS } from '../defaults';
import { coreCount, defaultPoolSize } from '../data/threads';
import { UsageError, integerIn, positiveNumber } from './args';
import { kebab, type FlagsOf } from './flags';

/** The launch flags of `train`, checked. */
export interface LaunchConfig {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  /** null: a free port of this machine (one node only). */
  masterPort: number | null;
  iface: string | null;
  /** Seconds a collective may wait (TORCHTS_DIST_TIMEOUT). */
  timeout: number | null;
}

export const LAUNCH_FLAGS = ['nprocPerNode', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort', 'iface', 'distTimeout'] as const;
type LaunchFlags = Pick<FlagsOf<'train'>, (typeof LAUNCH_FLAGS)[number]>;

/** Seconds the other ranks get to exit after a failure or a second Ctrl-C before they are killed. */
const GRACE_SECONDS = 10;

/** The launch flags, or null when none was given (a plain single-process run). */
export function launchConfigFrom(flags: LaunchFlags, env: NodeJS.ProcessEnv = process.env): LaunchConfig | null {
  if (LAUNCH_FLAGS.every((name) => flags[name] === undefined)) return null;
  if (env.WORLD_SIZE !== undefined) {
    throw new UsageError(`--${kebab(LAUNCH_FLAGS.find((n) => flags[n] !== undefined)!)}: not allowed in a process that is already one rank (WORLD_SIZE=${env.WORLD_SIZE} is set)`);
  }
  const nnodes = flags.nnodes === undefined ? 1 : integerIn('nnodes', flags.nnodes, 1, 4096);
  const nodeRank = flags.nodeRank === undefined ? 0 : integerIn('node-rank', flags.nodeRank, 0, nnodes - 1);
  if (nnodes > 1 && flags.masterAddr === undefined) {
    throw new UsageError('--master-addr: missing; with --nnodes > 1 every node needs the address of node 0');
  }
  const masterAddr = flags.masterAddr === undefined ? DISTRIBUTED_DEFAULTS.masterAddr : String(flags.masterAddr);
  if (!/^[A-Za-z0-9.:_-]+$/.test(masterAddr)) throw new UsageError(`--master-addr: expected a host name or IP address, got ${JSON.stringify(masterAddr)}`);
  return {
    nprocPerNode: flags.nprocPerNode === undefined ? 1 : integerIn('nproc-per-node', flags.nprocPerNode, 1, 1024),
    nnodes,
    nodeRank,
    masterAddr,
    masterPort: flags.masterPort === undefined ? (nnodes > 1 ? DISTRIBUTED_DEFAULTS.masterPort : null) : integerIn('master-port', flags.masterPort, 1, 65535),
    iface: flags.iface === undefined ? null : String(flags.iface),
    timeout: flags.distTimeout === undefined ? null : positiveNumber('dist-timeout', flags.distTimeout),
  };
}

/** The command line without the launch flags (`--flag value` and `--flag=value` spellings). */
export function withoutLaunchFlags(args: readonly string[]): string[] {
  const spelled = new Set(LAUNCH_FLAGS.map((n) => `--${kebab(n)}`));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].split('=')[0];
    if (!spelled.has(name)) out.push(args[i]);
    else if (!args[i].includes('=')) i++;
  }
  return out;
}

/** The flags that start the same group again (for the resume hint). */
export function launchFlagsText(config: LaunchConfig): string {
  const parts = [`--nproc-per-node ${config.nprocPerNode}`];
  if (config.nnodes > 1) parts.push(`--nnodes ${config.nnodes} --node-rank ${config.nodeRank} --master-addr ${config.masterAddr}`);
  if (config.nnodes > 1 && config.masterPort !== null) parts.push(`--master-port ${config.masterPort}`);
  return parts.join(' ');
}

/** A port nobody listens on now (one node: the ranks' store goes there). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The environment of one rank, as torchrun gives it. */
function rankEnv(config: LaunchConfig, localRank: number, port: number, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const share = Math.max(1, Math.floor(coreCount() / config.nprocPerNode));
  return {
    ...env,
    RANK: String(config.nodeRank * config.nprocPerNode + localRank),
    LOCAL_RANK: String(localRank),
    GROUP_RANK: String(config.nodeRank),
    WORLD_SIZE: String(config.nnodes * config.nprocPerNode),
    LOCAL_WORLD_SIZE: String(config.nprocPerNode),
    MASTER_ADDR: config.masterAddr,
    MASTER_PORT: String(port),
    // The cores are split between the ranks (libtorch's threads and the decode pool).
    TORCHTS_THREADS: env.TORCHTS_THREADS ?? String(share),
    UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? String(Math.max(2, Math.ceil(defaultPoolSize() / config.nprocPerNode))),
    ...(config.iface ? { GLOO_SOCKET_IFNAME: config.iface } : {}),
    ...(config.timeout !== null ? { TORCHTS_DIST_TIMEOUT: String(config.timeout) } : {}),
    TORCHTS_LAUNCHER: launchFlagsText(config),
  };
}

/** Copies a rank's output line by line with a prefix (a partial line waits for its end). */
function prefixLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string): void {
  let pending = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const lines = (pending + chunk).split(/\r?\n|\r/);
    pending = lines.pop() ?? '';
    for (const line of lines) if (line) to.write(`${prefix}${line}\n`);
  });
  from.on('end', () => {
    if (pending) to.write(`${prefix}${pending}\n`);
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * Runs `args` (this command line without the launch flags) as this node's ranks; resolves with
 * the exit code: 0 when every rank succeeded, 130 when they were interrupted, else the failure's.
 */
export async function launch(config: LaunchConfig, args: readonly string[]): Promise<number> {
  const port = config.masterPort ?? (await freePort(config.masterAddr));
  const script = process.argv[1];
  const children: ChildProcess[] = [];
  let failure: { code: number; line: string } | undefined;
  let interrupts = 0;
  const stopOthers = (signal: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const onSigint = () => {
    interrupts++;
    stopOthers('SIGINT');
    if (interrupts > 1) setTimeout(() => stopOthers('SIGKILL'), GRACE_SECONDS * 1000).unref();
  };
  const onSigterm = () => stopOthers('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const exits = Array.from({ length: config.nprocPerNode }, (_, localRank) => {
      const rank = config.nodeRank * config.nprocPerNode + localRank;
      // Own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
      const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
        env: rankEnv(config, localRank, port, process.env),
        stdio: rank === 0 ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      if (child.stdout) prefixLines(child.stdout, process.stdout, `[rank ${rank}] `);
      if (child.stderr) prefixLines(child.stderr, process.stderr, `[rank ${rank}] `);
      children.push(child);
      return new Promise<number>((resolve) => {
        child.on('error', (err) => {
          failure ??= { code: 1, line: `rank ${rank} could not start: ${err.message}` };
          resolve(1);
        });
        child.on('exit', (code, signal) => {
          const ok = code === 0 || (code === 130 && interrupts > 0);
          if (!ok && !failure) {
            failure = { code: code && code !== 130 ? code : 1, line: `rank ${rank} ${describeExit(code, signal)}; stopping the other ranks` };
            process.stderr.write(`torchts-train: ${failure.line}\n`);
            stopOthers('SIGTERM');
            setTimeout(() => stopOthers('SIGKILL'), GRACE_SECONDS * 1000).unref();
          }
          resolve(code ?? 1);
        });
      });
    });
    const codes = await Promise.all(exits);
    if (failure) return failure.code;
    return codes.some((c) => c === 130) ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}

/**
 * In a rank started by the launcher: exits when the launcher is gone (it was killed), so no rank
 * outlives it. Each rank runs in its own process group, out of reach of the terminal's signals.
 */
export function exitWithLauncher(env: NodeJS.ProcessEnv = process.env): void {
  if (env.TORCHTS_LAUNCHER === undefined) return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      process.stderr.write(`torchts-train: rank ${env.RANK}: the launcher exited; stopping\n`);
      process.exit(1);
    }
  }, 1000).unref();
}
