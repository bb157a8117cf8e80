/**
 * The data pipeline's modules in one place, for torchts' own code and tests:
 * image folders and the named fast.ai datasets, seeded loaders, the
 * augmentation sampler, normalisation stats and the seeded random streams
 * shared with training. What users get is chosen in lib/public/data.ts.
 */
export {
  configureProcess,
  coreCount,
  defaultPoolSize,
  threadPoolSize,
  type ProcessOptions,
  type ProcessSettings,
} from './threads';
export type * from './types';
export { Random, type StreamKey } from './random';
export {
  AUG_DEFAULTS,
  NO_AUGMENT,
  resolveAugment,
  sampleAugment,
  applyMatrix,
  referenceWarp,
  boxMatrix,
  squareCropBox,
  randomResizedCropBox,
  flipMatrix,
  rotationMatrix,
  zoomMatrix,
  warpMatrix,
  matMul,
  type AugmentOptions,
  type ResolvedAugmentOptions,
  type Box,
  type CropMode,
  type Mat3,
  type SampleAugmentArgs,
} from './augment';
export { listImageFolder, randomSplit, IMAGE_EXTENSIONS, type FolderSplitOptions, type ListedFolder } from './folder';
export {
  DecodeError,
  decodePresized,
  decodePresizedInto,
  nativeJpegDecoder,
  type JpegDecoder,
  type PresizedIntoOptions,
  decodeTransformed,
  type DecodedImage,
  type FailOn,
  type PadMode,
  type RandomResizedCropTransform,
  type ResizeMethod,
  type ResizeTransform,
  type SharpItemTransform,
  type TransformRequest,
} from './decode';
export { ImageDataLoaders, ImageLoader, imageFolder, fromFolder, defaultPresize, DEFAULT_AUGMENT, type ImageFolderOptions } from './loader';
export {
  IMAGENET_STATS,
  ChannelAccumulator,
  normalizedBatchStats,
  checkStats,
  type ChannelStats,
  type NormalizeOption,
} from './stats';
export { torchtsHome } from './home';
export {
  untarData,
  fastaiDataset,
  FASTAI_DATASETS,
  DEFAULT_DATA_URL,
  type FastaiDatasetName,
  type UntarOptions,
} from './download';
export { ByteProgress, type ByteProgressOptions } from './progress';
export { PresizeCache, datasetKey } from './cache';
