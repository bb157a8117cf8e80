/**
 * Data-parallel training: which group a Learner joins. From torchrun's environment
 * ('env': RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, and torchrun's agent store) or from
 * explicit options. The group itself (rendezvous, Gloo/NCCL, gradient buckets) is native:
 * native/process_group.h and native/data_parallel.h.
 */
import { DISTRIBUTED_DEFAULTS, withDefaults } from '../defaults';
import type { NativeGroupOptions } from '../native';

/** An explicit data-parallel group. Defaults: `DISTRIBUTED_DEFAULTS`. */
export interface DistributedOptions {
  /** This process's rank in [0, worldSize). */
  rank: number;
  /** Processes in the group. */
  worldSize: number;
  /** Host of rank 0, which hosts the rendezvous store; every rank must reach it. */
  masterAddr?: string;
  masterPort?: number;
  /** Network interface Gloo uses (as GLOO_SOCKET_IFNAME). Default: the one that routes to masterAddr. */
  iface?: string;
  /** 'auto': NCCL on CUDA when libtorch has it, else Gloo. */
  backend?: 'auto' | 'gloo' | 'nccl';
  /** Seconds a collective may wait for the other ranks before the run ends with an error naming the rank at fault. */
  timeout?: number;
  /** Seconds the rendezvous waits for every rank to start. */
  joinTimeout?: number;
  /** All-reduce gradient buckets while backward runs (true), or after it (false). */
  overlap?: boolean;
}

/** How a Learner trains: alone (null), as torchrun's environment says ('env'), or in an explicit group. */
export type DistributedOption = 'env' | DistributedOptions | null;

/** The variables torchrun (and `torchts-train --nproc-per-node`) give each worker. */
export type LaunchEnv = Readonly<Record<string, string | undefined>>;

/**
 * The native group options, or null when the process trains alone ('env' without WORLD_SIZE, or
 * a world of one). Throws an Error naming a bad variable or option.
 */
export function resolveGroup(option: DistributedOption | undefined, env: LaunchEnv = process.env): NativeGroupOptions | null {
  if (option === undefined || option === null) return null;
  const explicit = option === 'env' ? fromEnv(env) : option;
  if (!explicit) return null;
  const o = withDefaults(DISTRIBUTED_DEFAULTS, explicit);
  const worldSize = wholeNumber('worldSize', explicit.worldSize, 1);
  const rank = wholeNumber('rank', explicit.rank, 0, worldSize - 1);
  if (worldSize === 1) return null;
  const port = wholeNumber('masterPort', o.masterPort, 1, 65535);
  if (typeof o.masterAddr !== 'string' || o.masterAddr === '') throw new Error(`distributed.masterAddr: expected a host name or address, got ${JSON.stringify(o.masterAddr)}`);
  if (!['auto', 'gloo', 'nccl'].includes(o.backend)) throw new Error(`distributed.backend: expected 'auto', 'gloo' or 'nccl', got ${JSON.stringify(o.backend)}`);
  for (const key of ['timeout', 'joinTimeout'] as const) {
    if (!(Number.isFinite(o[key]) && o[key] >= 0.1)) throw new Error(`distributed.${key}: expected seconds >= 0.1, got ${o[key]}`);
  }
  const agentStore = option === 'env' && env.TORCHELASTIC_USE_AGENT_STORE === 'True';
  return {
    rank,
    worldSize,
    masterAddr: o.masterAddr,
    masterPort: port,
    hostStore: !agentStore,
    // torchrun's agent keys each restart's workers apart.
    prefix: agentStore ? `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT ?? '0'}` : '',
    iface: explicit.iface ?? '',
    backend: o.backend,
    timeoutMs: Math.round(o.timeout * 1000),
    joinTimeoutMs: Math.round(o.joinTimeout * 1000),
    overlap: o.overlap,
  };
}

/** torchrun's variables, or null when WORLD_SIZE is not set (a plain single-process run). */
function fromEnv(env: LaunchEnv): DistributedOptions | null {
  if (env.WORLD_SIZE === undefined) return null;
  const number = (name: string) => {
    const value = env[name];
    if (value === undefined || !/^\d+$/.test(value)) throw new Error(`${name}=${value ?? '(unset)'}: expected a whole number (WORLD_SIZE is set, so this process is one rank of a data-parallel run)`);
    return Number(value);
  };
  const seconds = (name: string) => {
    const value = env[name];
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!(Number.isFinite(n) && n >= 0.1)) throw new Error(`${name}=${value}: expected seconds >= 0.1`);
    return n;
  };
  return {
    rank: number('RANK'),
    worldSize: number('WORLD_SIZE'),
    masterAddr: env.MASTER_ADDR ?? DISTRIBUTED_DEFAULTS.masterAddr,
    masterPort: env.MASTER_PORT === undefined ? DISTRIBUTED_DEFAULTS.masterPort : number('MASTER_PORT'),
    iface: env.GLOO_SOCKET_IFNAME || undefined,
    timeout: seconds('TORCHTS_DIST_TIMEOUT'),
  };
}

function wholeNumber(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`distributed.${name}: expected a whole number in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}
