/**
 * The Learner's option and result types. Defaults are in lib/defaults.ts
 * (`LEARNER_DEFAULTS`, `OPTIMIZER_DEFAULTS`, ...), stated there once.
 */
import type { DataLoaders } from '../data/types';
import type { NativeBatch } from '../native';
import type { DistributedOption } from './distributed';
import type { Metric } from './metrics';
import type { MixOptions } from './mixup';
import type { Callback, EpochRecord } from './types';

/** How inputs are normalised on the device: the data's stats, ImageNet's, explicit ones, or none (x/255 only). */
export type LearnerNormalize = 'data' | 'imagenet' | { mean: number[]; std: number[] } | null;

/** The training loss: plain cross entropy or label-smoothed cross entropy (eps default `LABEL_SMOOTHING_EPS`). */
export type LossOption = 'crossEntropy' | { kind: 'labelSmoothing'; eps?: number };

/** Optimizer settings; defaults in `OPTIMIZER_DEFAULTS` (the reference's Adam, decoupled weight decay). */
export interface OptimizerOptions {
  kind?: 'adamw' | 'sgd';
  /** Never applied to biases and norm parameters. */
  weightDecay?: number;
  /** Adam beta2 ("sqr_mom"). */
  beta2?: number;
  /** Adam epsilon. */
  eps?: number;
}

/** Defaults in `LEARNER_DEFAULTS` unless said otherwise. */
export interface LearnerOptions {
  /** Training and validation data. */
  data: DataLoaders;
  /** A model name from `native().modelNames()`, e.g. 'xresnet18', 'resnet34'. */
  arch?: string;
  /** Class names; default `data.classes`. */
  classes?: readonly string[];
  /** 'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N'. */
  device?: string;
  /** Mixed precision on CUDA. */
  amp?: 'none' | 'bf16' | 'fp16';
  /** Default 'data' (the loaders' stats; none when they have none). */
  normalize?: LearnerNormalize;
  /** Default 'crossEntropy'. */
  lossFn?: LossOption;
  /** Mixup or CutMix on training batches. Default none. */
  mix?: MixOptions | null;
  /** Validation metrics. Default [accuracy()]. */
  metrics?: Metric[];
  callbacks?: Callback[];
  /** Seeds the initial weights, native randomness and mix draws. (Shuffles and augmentation are
   * seeded by the DataLoaders' own seed.) */
  seed?: number;
  /** Image size and batch size used when a call does not give them. */
  size?: number;
  bs?: number;
  optimizer?: OptimizerOptions;
  /**
   * Data-parallel training: 'env' joins the group torchrun (or `torchts-train --nproc-per-node`)
   * describes in the environment, and trains alone when WORLD_SIZE is not set; or an explicit
   * group. Every rank constructs its Learner with the same options and calls the same methods;
   * each reads its own shard of the data. Default none.
   */
  distributed?: DistributedOption;
  /**
   * A file where, after every epoch of a fit, the learner saves a resumable checkpoint (atomically;
   * rank 0 alone in a group): after a crash or kill -9, `resume(file)` continues at the next epoch.
   * Default none.
   */
  autosave?: string;
  /**
   * 'train' (default): BatchNorm normalises with batch statistics and updates its running ones
   * (per process in a group, as DistributedDataParallel). 'frozen': it uses the running statistics
   * while training and leaves them unchanged, e.g. for fine-tuning on small batches.
   */
  batchNorm?: 'train' | 'frozen';
}

/** Where the loaders' settings come from for one call. */
export interface SettingsOptions {
  /** Default: the size of the last fit, or the learner's `size`. */
  size?: number;
  /** Default: the batch size of the last fit, or the learner's `bs`. */
  bs?: number;
}

/** What a fit returns. */
export interface FitResult {
  records: EpochRecord[];
  /** Why the fit stopped before its end (SIGINT, early stopping...), if it did. */
  stopped?: string;
  /** The resumable checkpoint written when it stopped, if one was asked for. */
  checkpoint?: string;
}

/** Validation loss, metrics, and the inputs of a confusion matrix. */
export interface ValidationResult {
  loss: number;
  metrics: Record<string, number>;
  /** n*numClasses probabilities in loader order (present when asked for with `probs: true`). */
  probs?: Float32Array;
  /** n labels in loader order. */
  targets: Int32Array;
  /** Dataset indices (into data.validItems) in loader order. */
  indices: Int32Array;
}

export interface TtaResult {
  /** n*numClasses combined probabilities, in the order of `indices`. */
  probs: Float32Array;
  targets: Int32Array;
  indices: Int32Array;
  accuracy: number;
}

export interface PredictResult {
  /** n*numClasses softmax probabilities. */
  probs: Float32Array;
  /** Most probable class index per image. */
  predicted: Int32Array;
  /** Its name. */
  labels: string[];
}

/** Pixels to predict on: n images, h x w, uint8 RGB NHWC (what lib/data produces). */
export type PredictInput = Pick<NativeBatch, 'images' | 'n' | 'h' | 'w' | 'augment'>;
