/**
 * `torchts/data`: the data pipeline as users see it. Image folders and the
 * named fast.ai datasets, the loaders' contract with training, augmentation
 * and normalisation options, the seeded random streams, and the opt-in
 * process settings for fast decoding. Everything else in lib/data is internal.
 */
export { configureProcess, threadPoolSize, type ProcessOptions, type ProcessSettings } from '../data/threads';
export type { Batch, DataLoader, DataLoaders, Item, LoaderSettings, Shard, SkippedFile } from '../data/types';
export { imageFolder, ImageDataLoaders, DEFAULT_AUGMENT, type ImageFolderOptions } from '../data/loader';
export type { FolderSplitOptions } from '../data/folder';
export { untarData, fastaiDataset, FASTAI_DATASETS, type FastaiDatasetName, type UntarOptions } from '../data/download';
export { AUG_DEFAULTS, NO_AUGMENT, type AugmentOptions, type ResolvedAugmentOptions } from '../data/augment';
export {
  DecodeError,
  type FailOn,
  type JpegDecoder,
  type PadMode,
  type RandomResizedCropTransform,
  type ResizeMethod,
  type ResizeTransform,
  type SharpItemTransform,
} from '../data/decode';
export { IMAGENET_STATS, normalizedBatchStats, type ChannelStats, type NormalizeOption } from '../data/stats';
export { Random, type StreamKey } from '../data/random';
export { torchtsHome } from '../data/home';
