/**
 * The addon's test helpers, kept off the public binding: `native()`'s type does not list them and
 * the package does not export this module. torchts's own tests use them to compare the native
 * loss and batch preparation with PyTorch's.
 */
import { native, type NativeBatch, type NativeBinding, type NativeMix } from './native';

/**
 * Arguments of the test helper `nativeInternals().lossCheck` (lib/native-internal.ts): logits and
 * labels (or targets) as the Learner's loss sees them.
 */
export interface NativeLossCheck {
  /** n*classes logits, row-major. */
  logits: Float32Array;
  n: number;
  classes: number;
  labels?: Int32Array;
  targets?: Float32Array;
  /** Label smoothing epsilon, default 0. */
  eps?: number;
  /** Mixup partners and weights (the box is ignored). */
  mix?: NativeMix;
}

export interface NativeInternals {
  /** The Learner's loss on given logits, per sample and its mean. */
  lossCheck(args: NativeLossCheck): { loss: number; perSample: Float32Array };
  /** What a checkpoint file holds (any format this build reads), without a model. */
  readCheckpoint(file: string): { meta: Record<string, string>; tensors: string[] };
  /** Writes a small checkpoint in format 1 (a libtorch archive), as torchts wrote before format 2. */
  writeFormat1Checkpoint(file: string, meta: string): void;
  /**
   * The float NCHW images (n*3*size*size, contiguous) the model would see for `batch`: uint8 ->
   * [0, 1], augment, lighting, (x - mean)/std, mix. Runs synchronously on the CPU.
   */
  prepareBatch(batch: NativeBatch, stats?: { mean: number[]; std: number[] }): Float32Array;
}

/** The addon's `__internal` entry. */
export function nativeInternals(): NativeInternals {
  const internal = (native() as unknown as { __internal?: NativeInternals }).__internal;
  if (!internal) throw new Error('torchts: this addon has no test helpers (__internal); rebuild it from source');
  return internal;
}

/**
 * The addon as loaded, without `native()`'s filling of left-out options (`native()` returns an
 * object whose prototype is the addon): it requires every option.
 */
export function addonBinding(): NativeBinding {
  return Object.getPrototypeOf(native()) as NativeBinding;
}
