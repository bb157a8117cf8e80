/**
 * Image-folder DataLoaders: seeded shuffling, batching into one contiguous
 * uint8 NHWC buffer, a bounded prefetch queue, bad-file handling and the
 * optional decoded cache.
 *
 * Two ways to make a batch:
 * - 'presize' (default, fastest): the CPU only decodes (shrink-on-load) and
 *   squishes each image to a fixed square `presize`; crop, flip and the
 *   aug_transforms family are one 3x3 matrix per image applied on the device
 *   with the output size `size` (augment.ts). Validation: the centred square,
 *   resized on the device, so validation and training share the decoded bytes
 *   and the cache. Measured on 160 px JPEGs, one libvips pipeline per image
 *   costs more than the decode itself; this path runs exactly one.
 * - 'sharp' (opt-in): fastai's per-image transforms on the CPU (resize
 *   crop/squish/pad or random-resized crop, flip), producing final-size bytes;
 *   the device then applies only the remaining random transforms.
 */
import * as path from 'path';
import { DATA_SEED, checkLoaderSettings } from '../defaults';
import type { Batch, DataLoader, DataLoaders, Item, LoaderSettings, Shard, SkippedFile } from './types';
import type { NativeAugment } from '../native';
import { AUG_DEFAULTS, resolveAugment, sampleAugment, type AugmentOptions, type ResolvedAugmentOptions } from './augment';
import { PresizeCache, datasetKey } from './cache';
import { DecodeError, decodePresized, decodePresizedInto, decodeTransformed, type FailOn, type JpegDecoder, type SharpItemTransform } from './decode';
import { listImageFolder, type FolderSplitOptions, type ListedFolder } from './folder';
import { torchtsHome } from './home';
import { Random, type StreamKey } from './random';
import {
  ChannelAccumulator,
  IMAGENET_STATS,
  checkStats,
  readCachedStats,
  writeCachedStats,
  type ChannelStats,
  type NormalizeOption,
} from './stats';

/** Options of `imageFolder`. Every field is optional; defaults are stated. */
export interface ImageFolderOptions extends FolderSplitOptions {
  /** Seeds the split, the shuffles and every random transform. Default `DATA_SEED`. */
  seed?: number;
  /**
   * Training augmentation on the device (fastai's aug_transforms options), or
   * false for none (training still crops at a random position). Default:
   * aug_transforms' defaults with minScale 0.75, as the article's get_dls.
   */
  augment?: AugmentOptions | false;
  /**
   * 'presize' (default): decode + presize on the CPU, everything else on the
   * device. 'sharp' or a transform: per-image CPU transforms with sharp
   * ('sharp' = RandomResizedCrop(minScale 0.08, ratio [3/4, 4/3]) + flip).
   */
  itemTransforms?: 'presize' | 'sharp' | SharpItemTransform;
  /** With per-image sharp transforms: random horizontal flip on the CPU. Default true. */
  flip?: boolean;
  /**
   * Side of the stored square for the 'presize' path, fixed or from the final
   * size. Default: ceil(size * 1.25 / 8) * 8 (128 -> 160, 224 -> 280).
   */
  presize?: number | ((size: number) => number);
  /** Normalisation stats. Default 'imagenet'. */
  normalize?: NormalizeOption;
  /** Training images sampled for normalize: 'dataset'. Default 256. */
  statsSamples?: number;
  /** Keep presized images on disk (true: in TORCHTS_HOME/presized; a string: that folder). Default false. */
  cache?: boolean | string;
  /** Cache folder root; default TORCHTS_HOME or ~/.cache/torchts. */
  home?: string;
  /** Batches decoded ahead of the consumer. Default 2. */
  prefetch?: number;
  /** Throw on the first bad file instead of skipping it. Default false. */
  strict?: boolean;
  /** sharp's failOn for damaged data. Default 'warning' (truncated files are bad). */
  failOn?: FailOn;
  /**
   * JPEG decoder of the 'presize' path: 'auto' (default) uses the addon's
   * libjpeg-turbo decoder when it was built with one (plain 8-bit JPEGs
   * without EXIF rotation or ICC profile; everything else still goes to
   * sharp), 'sharp' never does, 'native' requires it. The two give slightly
   * different pixels (mean difference under 1/255), so a cache filled by one
   * is not bit-identical to the other's output.
   */
  jpegDecoder?: JpegDecoder;
  /** Where warnings go. Default: one line each on stderr. */
  log?: (line: string) => void;
}

/** The article's get_dls crop scale; everything else is aug_transforms' default. */
export const DEFAULT_AUGMENT: AugmentOptions = Object.freeze({ minScale: 0.75 });

/** The default presize for a final size: 25 % margin, rounded up to a multiple of 8. */
export function defaultPresize(size: number): number {
  return Math.ceil((size * 1.25) / 8) * 8;
}

type PassMode = 'train' | 'valid' | 'tta';

function checkSettings(settings: LoaderSettings): void {
  checkLoaderSettings(settings, 'loader: ');
}

/** True for a shard of a group of more than one (a world of one reads everything). */
function sharded(shard: Shard | undefined): shard is Shard {
  if (!shard) return false;
  const { rank, worldSize } = shard;
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new Error(`loader: shard must be { rank, worldSize } with 0 <= rank < worldSize, got ${JSON.stringify(shard)}`);
  }
  return worldSize > 1;
}

/**
 * DistributedSampler's shard: the order padded with its own start to a multiple of worldSize,
 * then every worldSize-th item from rank, so every rank gets the same number of items.
 */
export function trainShard(order: readonly number[], shard: Shard): number[] {
  const perRank = Math.ceil(order.length / shard.worldSize);
  const out: number[] = [];
  for (let i = shard.rank; i < perRank * shard.worldSize; i += shard.worldSize) out.push(order[i % order.length]);
  return out;
}

/** Every worldSize-th item from rank, unpadded: the shards partition the split exactly. */
function validShard(indices: number[], shard: Shard | undefined): number[] {
  return sharded(shard) ? indices.filter((_, i) => i % shard.worldSize === shard.rank) : indices;
}

/** A dataset with train and validation splits; `train`, `valid`, `validAugmented` are cheap views. */
export class ImageDataLoaders implements DataLoaders {
  readonly classes: readonly string[];
  readonly trainItems: readonly Item[];
  readonly validItems: readonly Item[];
  readonly root: string;
  readonly seed: number;
  readonly augment: ResolvedAugmentOptions | null;
  private readonly items: Item[];
  private readonly sharpTransform: SharpItemTransform | null;
  private readonly caches = new Map<number, Promise<PresizeCache>>();
  private readonly bad = new Map<number, string>();
  private cacheKey: string | undefined;
  private statsValue: ChannelStats | null;

  /** @internal Use `imageFolder(root, options)`. */
  constructor(
    listed: ListedFolder,
    readonly options: ImageFolderOptions = {},
  ) {
    this.root = listed.root;
    this.classes = listed.classes;
    this.trainItems = listed.trainItems;
    this.validItems = listed.validItems;
    this.items = [...listed.trainItems, ...listed.validItems];
    this.seed = options.seed ?? DATA_SEED;
    this.augment = options.augment === false ? null : resolveAugment(options.augment ?? DEFAULT_AUGMENT);
    const t = options.itemTransforms ?? 'presize';
    this.sharpTransform = t === 'presize' ? null : t === 'sharp' ? { type: 'randomResizedCrop' } : t;
    const norm = options.normalize ?? 'imagenet';
    this.statsValue = norm === 'imagenet' ? { mean: [...IMAGENET_STATS.mean], std: [...IMAGENET_STATS.std] } : norm === 'none' || norm === 'dataset' ? null : checkStats(norm);
    const prefetch = options.prefetch ?? 2;
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new Error(`loader: prefetch must be a positive integer, got ${prefetch}`);
    for (const { file, reason } of listed.ignored) this.log(`torchts: skipping ${file}: ${reason}`);
  }

  get stats(): { mean: number[]; std: number[] } | null {
    return this.statsValue;
  }

  /** 'presize' or 'sharp': how batches are made. */
  get mode(): 'presize' | 'sharp' {
    return this.sharpTransform ? 'sharp' : 'presize';
  }

  /** @internal Side of the stored square for final size `size` (presize path). */
  presizeFor(size: number): number {
    const p = this.options.presize;
    const value = typeof p === 'number' ? p : typeof p === 'function' ? p(size) : defaultPresize(size);
    if (!Number.isInteger(value) || value < 1) throw new Error(`loader: presize must be a positive integer, got ${value}`);
    return value;
  }

  train(settings: LoaderSettings, epoch: number, shard?: Shard): DataLoader {
    checkSettings(settings);
    if (!Number.isInteger(epoch) || epoch < 0) throw new Error(`loader: epoch must be a non-negative integer, got ${epoch}`);
    const order = Array.from(Random.stream(this.seed, 'train', epoch, 'shuffle').permutation(this.trainItems.length));
    if (!sharded(shard)) return new ImageLoader(this, 'train', order, settings, true, ['train', epoch]);
    return new ImageLoader(this, 'train', trainShard(order, shard), settings, true, ['train', epoch, 'rank', shard.rank]);
  }

  valid(settings: LoaderSettings, shard?: Shard): DataLoader {
    checkSettings(settings);
    return new ImageLoader(this, 'valid', validShard(this.validIndices(), shard), settings, false, ['valid']);
  }

  validAugmented(settings: LoaderSettings, pass: number, shard?: Shard): DataLoader {
    checkSettings(settings);
    if (!Number.isInteger(pass) || pass < 0) throw new Error(`loader: pass must be a non-negative integer, got ${pass}`);
    const keys: StreamKey[] = sharded(shard) ? ['tta', pass, 'rank', shard.rank] : ['tta', pass];
    return new ImageLoader(this, 'tta', validShard(this.validIndices(), shard), settings, false, keys);
  }

  private validIndices(): number[] {
    const offset = this.trainItems.length;
    return this.validItems.map((_, i) => offset + i);
  }

  /** Computes normalize: 'dataset' stats (once; cached in TORCHTS_HOME/stats). */
  async computeDatasetStats(samples = this.options.statsSamples ?? 256): Promise<ChannelStats> {
    const key = this.datasetCacheKey();
    const file = path.join(torchtsHome(this.options.home), 'stats', `${key}-n${samples}.json`);
    const cached = readCachedStats(file);
    if (cached) return (this.statsValue = cached);
    const order = Random.stream(this.seed, 'stats').permutation(this.trainItems.length);
    const picked = Array.from(order.subarray(0, Math.min(samples, order.length)));
    const acc = new ChannelAccumulator();
    await Promise.all(
      picked.map(async (i) => {
        try {
          acc.add((await decodePresized(this.items[i].file, 64, this.failOn)).pixels);
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
          this.noteBad(i, err.reason);
        }
      }),
    );
    const stats = acc.result();
    writeCachedStats(file, stats);
    return (this.statsValue = stats);
  }

  /** Closes the decoded cache files. */
  async close(): Promise<void> {
    for (const cache of this.caches.values()) await (await cache).close();
    this.caches.clear();
  }

  // -- used by ImageLoader -----------------------------------------------------

  /** @internal */
  get failOn(): FailOn {
    return this.options.failOn ?? 'warning';
  }

  /** @internal */
  item(index: number): Item {
    return this.items[index];
  }

  /** @internal */
  badReason(index: number): string | undefined {
    return this.bad.get(index);
  }

  /** @internal Records a bad file; warns the first time it is seen. */
  noteBad(index: number, reason: string): void {
    if (this.bad.has(index)) return;
    this.bad.set(index, reason);
    this.log(`torchts: skipping ${this.items[index].file}: ${reason}`);
  }

  /** @internal */
  log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  /** @internal */
  get sharpItemTransform(): SharpItemTransform | null {
    return this.sharpTransform;
  }

  private datasetCacheKey(): string {
    if (!this.cacheKey) this.cacheKey = datasetKey(this.items.map((i) => i.file));
    return this.cacheKey;
  }

  /** @internal The decoded cache for `presize`, or null when caching is off. */
  cacheFor(presize: number): Promise<PresizeCache> | null {
    const opt = this.options.cache;
    if (!opt) return null;
    let cache = this.caches.get(presize);
    if (!cache) {
      const dir = typeof opt === 'string' ? path.resolve(opt) : path.join(torchtsHome(this.options.home), 'presized');
      cache = PresizeCache.open(dir, this.datasetCacheKey(), this.items.length, presize);
      this.caches.set(presize, cache);
    }
    return cache;
  }
}

type ItemOutcome = { ok: true; aspect: number } | { ok: false; reason: string };

/** One pass over a split: a DataLoader. */
export class ImageLoader implements DataLoader {
  readonly length: number;
  readonly itemCount: number;
  readonly batchSize: number;
  readonly size: number;
  private skippedFiles: SkippedFile[] = [];
  private started = 0;

  constructor(
    private readonly owner: ImageDataLoaders,
    private readonly mode: PassMode,
    private readonly order: number[],
    settings: LoaderSettings,
    dropLast: boolean,
    private readonly streamKeys: StreamKey[],
  ) {
    this.itemCount = order.length;
    this.batchSize = settings.bs;
    this.size = settings.size;
    this.length = dropLast ? Math.floor(order.length / settings.bs) : Math.ceil(order.length / settings.bs);
  }

  get skipped(): readonly SkippedFile[] {
    return this.skippedFiles;
  }

  /** Batches whose decoding has started in the current pass (at most the consumed ones + prefetch). */
  get batchesStarted(): number {
    return this.started;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    this.skippedFiles = [];
    this.started = 0;
    const depth = this.owner.options.prefetch ?? 2;
    const pending: Promise<Batch | null>[] = [];
    let next = 0;
    const fill = () => {
      while (pending.length < depth && next < this.length) {
        const p = this.makeBatch(next++);
        this.started++;
        // Observed here so an early stop by the consumer leaves no unhandled rejection.
        p.catch(() => undefined);
        pending.push(p);
      }
    };
    fill();
    while (pending.length > 0) {
      const batch = await pending.shift()!;
      fill();
      if (batch) yield batch;
    }
    await this.finishPass();
  }

  private async finishPass(): Promise<void> {
    const cache = this.owner.mode === 'presize' ? this.owner.cacheFor(this.owner.presizeFor(this.size)) : null;
    if (cache) await (await cache).flush();
    if (this.skippedFiles.length > 0) {
      const list = this.skippedFiles.map((s) => `  ${s.file}: ${s.reason}`).join('\n');
      this.owner.log(`torchts: ${this.skippedFiles.length} file(s) skipped in this ${this.mode} pass:\n${list}`);
    }
  }

  private async makeBatch(b: number): Promise<Batch | null> {
    const indices = this.order.slice(b * this.batchSize, (b + 1) * this.batchSize);
    const batchRng = Random.stream(this.owner.seed, ...this.streamKeys, 'batch', b);
    const side = this.owner.mode === 'presize' ? this.owner.presizeFor(this.size) : this.size;
    const itemBytes = side * side * 3;
    const images = new Uint8Array(indices.length * itemBytes);
    const results = this.owner.mode === 'presize' ? await this.loadPresized(indices, images, side) : await Promise.all(indices.map((g, k) => this.loadItem(g, images, k * itemBytes, side)));
    const kept: number[] = [];
    const aspects: number[] = [];
    results.forEach((r, k) => {
      if (r.ok) {
        // Compact over skipped slots so the batch stays contiguous.
        if (kept.length !== k) images.copyWithin(kept.length * itemBytes, k * itemBytes, (k + 1) * itemBytes);
        kept.push(indices[k]);
        aspects.push(r.aspect);
      } else {
        this.skippedFiles.push({ file: this.owner.item(indices[k]).file, reason: r.reason });
      }
    });
    if (kept.length === 0) return null;
    const n = kept.length;
    const labels = new Int32Array(kept.map((g) => this.owner.item(g).label));
    return {
      images: n === indices.length ? images : images.subarray(0, n * itemBytes),
      n,
      h: side,
      w: side,
      labels,
      indices: Int32Array.from(kept),
      augment: this.deviceAugment(batchRng, aspects),
    };
  }

  private deviceAugment(rng: Random, aspects: number[]): NativeAugment {
    const aug = this.mode === 'valid' ? null : this.owner.augment;
    if (this.owner.mode === 'presize') {
      return sampleAugment({ rng, aspects, size: this.size, crop: this.mode === 'valid' ? 'centre' : 'random', augment: aug });
    }
    // The CPU already cropped (and flipped): only the remaining random transforms.
    if (!aug) return { size: this.size };
    const rest = { ...aug, doFlip: false, minScale: 1, ratio: [1, 1] as [number, number] };
    return sampleAugment({ rng, aspects: aspects.map(() => 1), size: this.size, crop: 'none', augment: rest });
  }

  /** Decodes (or reads from the cache) item `g` into `target` at `offset`. Never throws for a bad file unless strict. */
  private async loadItem(g: number, target: Uint8Array, offset: number, side: number): Promise<ItemOutcome> {
    const item = this.owner.item(g);
    const known = this.owner.badReason(g);
    try {
      if (known !== undefined) throw new DecodeError(item.file, known);
      return { ok: true, aspect: await this.decodeInto(g, item, target, offset, side) };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return this.rejectItem(g, err, side);
    }
  }

  /** A bad file: an Error when strict, otherwise noted (one warning), marked in the cache and skipped. */
  private async rejectItem(g: number, err: DecodeError, side: number): Promise<ItemOutcome> {
    if (this.owner.options.strict) throw new Error(`strict: cannot use ${err.file}: ${err.reason}`);
    this.owner.noteBad(g, err.reason);
    const cache = this.owner.mode === 'presize' ? this.owner.cacheFor(side) : null;
    if (cache) (await cache).markBad(g, err.reason);
    return { ok: false, reason: err.reason };
  }

  /**
   * The presize path for a whole batch: known-bad and cached items first, then
   * every other item in one decodePresizedInto call (so plain JPEGs reach the
   * native decoder as one batch), written straight into `images`.
   */
  private async loadPresized(indices: number[], images: Uint8Array, side: number): Promise<ItemOutcome[]> {
    const itemBytes = side * side * 3;
    const cachePromise = this.owner.cacheFor(side);
    const cache = cachePromise ? await cachePromise : null;
    const outcomes: ItemOutcome[] = new Array(indices.length);
    const todo: number[] = [];
    await Promise.all(
      indices.map(async (g, k) => {
        const file = this.owner.item(g).file;
        const bad = this.owner.badReason(g) ?? cache?.badReason(g);
        if (bad !== undefined) {
          outcomes[k] = await this.rejectItem(g, new DecodeError(file, bad), side);
          return;
        }
        const aspect = cache?.aspect(g);
        if (cache && aspect !== undefined) {
          await cache.read(g, images, k * itemBytes);
          outcomes[k] = { ok: true, aspect };
        } else {
          todo.push(k);
        }
      }),
    );
    if (todo.length === 0) return outcomes;
    const decoded = await decodePresizedInto(
      todo.map((k) => this.owner.item(indices[k]).file),
      side,
      images,
      todo.map((k) => k * itemBytes),
      { failOn: this.owner.failOn, jpeg: this.owner.options.jpegDecoder },
    );
    await Promise.all(
      decoded.map(async (result, j) => {
        const k = todo[j];
        const g = indices[k];
        if (result instanceof DecodeError) {
          outcomes[k] = await this.rejectItem(g, result, side);
          return;
        }
        if (cache) await cache.write(g, images.subarray(k * itemBytes, (k + 1) * itemBytes), result.aspect);
        outcomes[k] = { ok: true, aspect: result.aspect };
      }),
    );
    return outcomes;
  }

  /** The per-image sharp transforms path ('sharp' mode; the presize path is loadPresized). */
  private async decodeInto(g: number, item: Item, target: Uint8Array, offset: number, side: number): Promise<number> {
    const transform = this.owner.sharpItemTransform!;
    const rng = this.mode === 'valid' ? null : Random.stream(this.owner.seed, ...this.streamKeys, 'item', g);
    const flip = this.owner.options.flip ?? true;
    const decoded = await decodeTransformed(item.file, { transform, flip, size: side, rng }, this.owner.failOn);
    target.set(decoded.pixels, offset);
    return decoded.aspect;
  }
}

/**
 * Builds DataLoaders over an image folder (Imagenette layout: train/ and val/
 * with one subfolder per class; without val/, a seeded `validPct` split).
 * Throws an Error naming the path when the folder is missing or empty.
 */
export async function imageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageDataLoaders> {
  const seed = options.seed ?? DATA_SEED;
  const listed = listImageFolder(root, { ...options, seed });
  const dls = new ImageDataLoaders(listed, options);
  if ((options.normalize ?? 'imagenet') === 'dataset') await dls.computeDatasetStats();
  return dls;
}

/** Alias of `imageFolder`. */
export const fromFolder = imageFolder;

export { AUG_DEFAULTS };
