/**
 * Small helpers for the native tests: seeded synthetic uint8 batches, and a bridge to the
 * PyTorch peer (/usr/bin/python3 with torch 1.13) that computes expected numbers.
 */
import { spawnSync } from 'child_process';
import type { NativeBatch } from '../../lib/native';

/** A seeded uniform generator in [0, 1) (mulberry32), so every test sees the same numbers. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SyntheticBatchOptions {
  n: number;
  size: number;
  classes: number;
  seed?: number;
  /** Height when it differs from `size` (width stays `size`). */
  height?: number;
}

/**
 * A learnable batch: each class has its own mean colour and a stripe direction, plus noise.
 * Labels cycle through the classes so every class appears.
 */
export function syntheticBatch(options: SyntheticBatchOptions): NativeBatch & { labels: Int32Array } {
  const { n, size: w, classes } = options;
  const h = options.height ?? w;
  const random = seededRandom(options.seed ?? 1);
  const images = new Uint8Array(n * h * w * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % classes;
    labels[i] = label;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const stripe = label % 2 === 0 ? x : y;
        for (let c = 0; c < 3; c++) {
          const base = ((label * 53 + c * 97) % 200) + 20;
          const value = base + (stripe % 4 < 2 ? 20 : -20) + (random() - 0.5) * 40;
          images[((i * h + y) * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(value)));
        }
      }
    }
  }
  return { images, n, h, w, labels };
}

/** Random floats in [lo, hi). */
export function randomFloats(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => lo + (hi - lo) * random());
}

export const PEER_PYTHON = process.env.TORCHTS_PYTHON ?? '/usr/bin/python3';

/**
 * Runs `script` with the PyTorch peer. The script reads JSON from stdin (`data`) and prints one
 * JSON value as its last line, which is returned.
 */
export function runPeer<T>(script: string, input: unknown): T {
  const prologue = 'import sys, json\ndata = json.load(sys.stdin)\n';
  const result = spawnSync(PEER_PYTHON, ['-c', prologue + script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (result.status !== 0) {
    throw new Error(`the PyTorch peer failed (exit ${result.status}): ${result.stderr || result.error}`);
  }
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
