/**
 * The contract between the data pipeline (lib/data) and training (lib/learn).
 * A loader yields batches ready for the native Learner: contiguous uint8 NHWC
 * pixels, int32 labels, and (training only) the batch augmentation to apply on
 * the device.
 */
import type { NativeAugment } from '../native';

/** One labelled image file. */
export interface Item {
  file: string;
  label: number;
}

/** One batch as the native Learner takes it. */
export interface Batch {
  /** n*h*w*3 RGB bytes, NHWC, contiguous. */
  images: Uint8Array;
  n: number;
  h: number;
  w: number;
  /** n labels in [0, classes.length). */
  labels: Int32Array;
  /** Device-side augmentation (random affine + lighting, or a plain resize to the final size). */
  augment?: NativeAugment;
  /** Dataset indices of the items in this batch (for reports: which file was misclassified). */
  indices: Int32Array;
}

/** Files skipped because they could not be decoded, with why. */
export interface SkippedFile {
  file: string;
  reason: string;
}

/** One pass over a split. */
export interface DataLoader extends AsyncIterable<Batch> {
  /** Batches per pass. */
  readonly length: number;
  /** Items in the split. */
  readonly itemCount: number;
  readonly batchSize: number;
  /** Side length of the images the model sees (after device augmentation). */
  readonly size: number;
  /** Files skipped during the last pass. */
  readonly skipped: readonly SkippedFile[];
}

/** How batches are made for one phase of training (progressive resizing changes these). */
export interface LoaderSettings {
  /** Final square size the model sees. */
  size: number;
  /** Batch size. */
  bs: number;
}

/**
 * One rank's part of a data-parallel run: rank r of worldSize reads a disjoint shard of every pass.
 */
export interface Shard {
  rank: number;
  worldSize: number;
}

/**
 * A dataset with a training and a validation split. Loaders are cheap views:
 * changing size or batch size between phases does not rebuild the dataset.
 */
export interface DataLoaders {
  readonly classes: readonly string[];
  readonly trainItems: readonly Item[];
  readonly validItems: readonly Item[];
  /**
   * Training pass for `epoch` (seeded shuffle per epoch, dropLast, random augmentation). With a
   * `shard`, as PyTorch's DistributedSampler: the epoch's permutation padded (repeating its start)
   * to a multiple of worldSize, every worldSize-th item from `rank`; the random transforms are
   * drawn per (seed, epoch, rank).
   */
  train(settings: LoaderSettings, epoch: number, shard?: Shard): DataLoader;
  /** Validation pass (no shuffle, centre crop, no augmentation). With a `shard`, every worldSize-th item from `rank`, unpadded, so the shards add up to the split exactly. */
  valid(settings: LoaderSettings, shard?: Shard): DataLoader;
  /** Validation items with TRAINING transforms, for test-time augmentation pass `pass` (sharded as `valid`). */
  validAugmented(settings: LoaderSettings, pass: number, shard?: Shard): DataLoader;
  /** Per-channel mean/std in [0,1] units used to normalise, or null for none. */
  readonly stats: { mean: number[]; std: number[] } | null;
}
