/**
 * Normalisation statistics: presets, stats computed from the training set,
 * and the check the article makes (a normalised batch has mean about 0 and
 * std about 1 per channel).
 */
import * as fs from 'fs';
import type { Batch } from './types';
import { writeFileAtomic } from '../util/files';

/** Per-channel mean and std in [0, 1] units. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

/** ImageNet statistics, what pretrained torchvision/fastai models expect. */
export const IMAGENET_STATS: Readonly<ChannelStats> = Object.freeze({
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
});

/**
 * How to normalise: the ImageNet preset, stats computed once from a sample
 * of the training images ('dataset'), explicit values, or none (x/255 only).
 */
export type NormalizeOption = 'imagenet' | 'dataset' | 'none' | ChannelStats;

/** Checks explicit stats; throws naming the bad value. */
export function checkStats(stats: ChannelStats): ChannelStats {
  const ok = (v: unknown, pos: boolean) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!pos || x > 0));
  if (!ok(stats.mean, false)) throw new Error(`normalize: mean must be 3 finite numbers, got ${JSON.stringify(stats.mean)}`);
  if (!ok(stats.std, true)) throw new Error(`normalize: std must be 3 positive numbers, got ${JSON.stringify(stats.std)}`);
  return { mean: [...stats.mean], std: [...stats.std] };
}

/** Running per-channel sums over uint8 RGB pixels. */
export class ChannelAccumulator {
  private readonly sum = [0, 0, 0];
  private readonly sumSq = [0, 0, 0];
  private count = 0;

  add(pixels: Uint8Array): void {
    // Sums of small integers stay exact in doubles far beyond any dataset size.
    const s = [0, 0, 0];
    const q = [0, 0, 0];
    for (let i = 0; i < pixels.length; i += 3) {
      const r = pixels[i];
      const g = pixels[i + 1];
      const b = pixels[i + 2];
      s[0] += r;
      s[1] += g;
      s[2] += b;
      q[0] += r * r;
      q[1] += g * g;
      q[2] += b * b;
    }
    for (let c = 0; c < 3; c++) {
      this.sum[c] += s[c];
      this.sumSq[c] += q[c];
    }
    this.count += pixels.length / 3;
  }

  /** Mean and std (population, +1e-7 as fastai adds) in [0, 1] units. */
  result(): ChannelStats {
    if (this.count === 0) throw new Error('normalize: no pixels to compute statistics from');
    const mean = this.sum.map((s) => s / this.count / 255);
    const std = this.sumSq.map((q, c) => Math.sqrt(Math.max(0, q / this.count / 65025 - mean[c] * mean[c])) + 1e-7);
    return { mean, std };
  }
}

/**
 * Per-channel mean and std of a batch after normalising with `stats`
 * ((x/255 - mean)/std; null = x/255). The article's check: about 0 and 1.
 * Computed from the uint8 pixels the batch carries (before device resizing).
 */
export function normalizedBatchStats(batch: Pick<Batch, 'images'>, stats: ChannelStats | null): ChannelStats {
  const acc = new ChannelAccumulator();
  acc.add(batch.images);
  const raw = acc.result();
  const mean = stats ? stats.mean : [0, 0, 0];
  const std = stats ? stats.std : [1, 1, 1];
  return {
    mean: raw.mean.map((m, c) => (m - mean[c]) / std[c]),
    std: raw.std.map((s, c) => (s - 1e-7) / std[c]),
  };
}

/** Reads stats cached by `writeCachedStats`, or null. */
export function readCachedStats(file: string): ChannelStats | null {
  try {
    return checkStats(JSON.parse(fs.readFileSync(file, 'utf8')) as ChannelStats);
  } catch {
    return null;
  }
}

export function writeCachedStats(file: string, stats: ChannelStats): void {
  writeFileAtomic(file, JSON.stringify(stats));
}
