/**
 * Flag values of torchts-train, checked before anything is created: every
 * check throws a UsageError whose message names the flag and what was
 * expected, and the CLI turns it into one line on stderr and exit code 2.
 */
import * as fs from 'fs';
import * as path from 'path';
import { kindOf } from '../util/files';
import { LIMITS } from '../defaults';

/** A mistake in the command line (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** One progressive-resizing phase as given on the command line. */
export interface PhaseSpec {
  size: number;
  epochs: number;
  /** Batch size of this phase; default: --bs. */
  bs?: number;
}

/** Image sizes we accept (`LIMITS.size`). */
export const MIN_SIZE = LIMITS.size.min;
export const MAX_SIZE = LIMITS.size.max;

/**
 * Parses `--phases`: comma-separated `size:epochs` items, each with an
 * optional `@bs`, e.g. `64:2,128:3@32` (2 epochs at 64 px, then 3 at 128 px
 * with batches of 32).
 */
export function parsePhases(text: string): PhaseSpec[] {
  const expected = 'expected SIZE:EPOCHS[@BS] items separated by commas, e.g. 64:2,128:3@32';
  if (typeof text !== 'string' || text.trim() === '') throw new UsageError(`--phases: ${expected}, got an empty value`);
  return text.split(',').map((raw) => {
    const item = raw.trim();
    const match = /^(\d+):(\d+)(?:@(\d+))?$/.exec(item);
    if (!match) throw new UsageError(`--phases: "${item}" does not parse; ${expected}`);
    const [size, epochs, bs] = [Number(match[1]), Number(match[2]), match[3] === undefined ? undefined : Number(match[3])];
    if (size < MIN_SIZE || size > MAX_SIZE) throw new UsageError(`--phases: size ${size} in "${item}" is out of range; expected ${MIN_SIZE}..${MAX_SIZE}`);
    if (epochs < 1) throw new UsageError(`--phases: epochs in "${item}" must be at least 1`);
    if (bs !== undefined && bs < 1) throw new UsageError(`--phases: batch size in "${item}" must be at least 1`);
    return bs === undefined ? { size, epochs } : { size, epochs, bs };
  });
}

/** A finite number > 0 (learning rates). */
export function positiveNumber(flag: string, value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag}: expected a number > 0, got ${show(value)}`);
  return n;
}

/** An integer in [min, max]. */
export function integerIn(flag: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    throw new UsageError(`--${flag}: expected an integer ${range}, got ${show(value)}`);
  }
  return n;
}

/**
 * A flag with an optional number (`--mixup`, `--mixup 0.2`): undefined when
 * absent, the default when bare, else the number, which must lie in
 * (0, maxExclusive) — or [0, maxExclusive) with `zeroAllowed`.
 */
export function optionalAmount(flag: string, value: unknown, fallback: number, maxExclusive = Infinity, zeroAllowed = false): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true || value === '') return fallback;
  const n = typeof value === 'string' ? Number(value) : value;
  const low = zeroAllowed ? n === 0 || (n as number) > 0 : (n as number) > 0;
  if (typeof n !== 'number' || !Number.isFinite(n) || !low || n >= maxExclusive) {
    const range = Number.isFinite(maxExclusive) ? `in ${zeroAllowed ? '[0' : '(0'}, ${maxExclusive})` : zeroAllowed ? '>= 0' : '> 0';
    throw new UsageError(`--${flag}: expected nothing or a number ${range}, got ${show(value)}`);
  }
  return n;
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(flag: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

/** `cpu`, `auto`, `cuda` or `cuda:N`. */
export function deviceName(value: unknown): string {
  if (typeof value !== 'string' || !/^(auto|cpu|cuda(:\d+)?)$/.test(value)) {
    throw new UsageError(`--device: expected auto, cpu, cuda or cuda:N, got ${show(value)}`);
  }
  return value;
}

/** An existing regular file. */
export function existingFile(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag}: expected a file path, got ${show(value)}`);
  const stat = statOrNull(value);
  if (!stat) throw new UsageError(`--${flag}: ${value} does not exist; expected a file`);
  if (!stat.isFile()) throw new UsageError(`--${flag}: ${value} is ${kindOf(stat)}; expected a file`);
  return path.resolve(value);
}

/** An existing folder. */
export function existingFolder(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag}: expected a folder, got ${show(value)}`);
  const stat = statOrNull(value);
  if (!stat) throw new UsageError(`--${flag}: ${value} does not exist; expected a folder`);
  if (!stat.isDirectory()) throw new UsageError(`--${flag}: ${value} is a file; expected a folder`);
  return path.resolve(value);
}

/**
 * A folder we may create or write into, checked without creating anything:
 * either an existing writable folder, or a path whose nearest existing parent
 * is a writable folder.
 */
export function writableFolder(flag: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag}: expected a folder path, got ${show(value)}`);
  const target = path.resolve(value);
  let probe = target;
  for (;;) {
    const stat = statOrNull(probe);
    if (stat) {
      if (!stat.isDirectory()) {
        const what = probe === target ? 'is a file' : `cannot be created (${probe} is a file)`;
        throw new UsageError(`--${flag}: ${value} ${what}; expected a writable folder`);
      }
      try {
        fs.accessSync(probe, fs.constants.W_OK | fs.constants.X_OK);
      } catch {
        throw new UsageError(`--${flag}: ${value} is not writable (no write permission on ${probe}); expected a writable folder`);
      }
      return target;
    }
    const up = path.dirname(probe);
    if (up === probe) throw new UsageError(`--${flag}: ${value} cannot be created; expected a writable folder`);
    probe = up;
  }
}

/** A fresh run folder name: runs/2026-12-01T13-05-09 (with a suffix if it exists). */
export function timestampedRunFolder(base = 'runs', now = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace(/:/g, '-');
  let candidate = path.resolve(base, stamp);
  for (let i = 2; fs.existsSync(candidate); i++) candidate = path.resolve(base, `${stamp}-${i}`);
  return candidate;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}
