/**
 * Finds and loads the native addon, and types its raw surface.
 *
 * The binding is deliberately small: a Learner that owns a model, its optimizer
 * and its loss on one native thread, plus a few process-wide functions. Every
 * tensor lives on the native side; TypeScript hands it uint8 batches and the
 * decisions (learning rates, augmentation matrices, mix partners).
 */
import * as fs from 'fs';
import * as path from 'path';

/** What the loaded libtorch build can do. */
export interface NativeInfo {
  /** torchts addon version. */
  version: string;
  /** libtorch version, e.g. "1.13.1". */
  torchVersion: string;
  /** Where the build found libtorch ("LIBTORCH", "python torch", "system", ...). */
  libtorchSource: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /** Intra-op threads libtorch uses now. */
  threads: number;
  /** Compiled and usable features: "cuda", "mkldnn", "openmp", "gloo", "bf16", ... */
  features: string[];
}

/** Row-major 3x3 projective matrices, one per image. */
export type Matrices3x3 = Float32Array;

/**
 * Batch-level augmentation performed on the device in one grid sample.
 * Each matrix maps output coordinates to input coordinates, both normalised
 * to [-1, 1] (align_corners = true), bilinear, reflection padding.
 */
export interface NativeAugment {
  /** Output side length in pixels (square). */
  size: number;
  /** n*9 floats; omit for a plain resize to `size`. */
  matrices?: Matrices3x3;
  /** n floats added in logit space (0 = unchanged). */
  brightness?: Float32Array;
  /** n floats multiplying in logit space (1 = unchanged). Applied after brightness. */
  contrast?: Float32Array;
}

/** Mixup / CutMix partners and weights, chosen in TypeScript. */
export interface NativeMix {
  /** Partner index for each sample (a permutation of 0..n-1). */
  perm: Int32Array;
  /** Weight of the sample itself, one per sample (CutMix: the area-corrected lambda, repeated). */
  lambda: Float32Array;
  /** CutMix box [x0, y0, x1, y1) in pixels of the (augmented) image; absent for mixup. */
  box?: [number, number, number, number];
}

/** One batch: contiguous uint8 NHWC RGB pixels plus labels or soft targets. */
export interface NativeBatch {
  images: Uint8Array;
  n: number;
  h: number;
  w: number;
  /** n class indices in [0, numClasses). */
  labels?: Int32Array;
  /** n*numClasses target probabilities (rows sum to 1), instead of labels. */
  targets?: Float32Array;
  augment?: NativeAugment;
  mix?: NativeMix;
}

/** Per-step hyper-parameters: one lr per parameter group (stem, body, head) and beta1/momentum. */
export interface NativeHyper {
  lrs: number[];
  mom: number;
}

export interface NativeLearnerOptions {
  arch: string;
  numClasses: number;
  /** 'auto' | 'cpu' | 'cuda' | 'cuda:N' */
  device: string;
  optimizer: 'adamw' | 'sgd';
  /** Decoupled weight decay (AdamW) or L2 (SGD). Not applied to biases and norm parameters. */
  weightDecay: number;
  /** Adam beta2 ("sqr_mom"). */
  beta2: number;
  /** Adam epsilon. */
  eps: number;
  /** Label-smoothing epsilon for the cross entropy; 0 = plain cross entropy. */
  labelSmoothing: number;
  /** Per-channel mean and std applied as (x/255 - mean)/std on the device; null = x/255 only. */
  mean: number[] | null;
  std: number[] | null;
  /** 'none' | 'bf16' | 'fp16' (fp16 uses loss scaling). Ignored on CPU. */
  amp: 'none' | 'bf16' | 'fp16';
  /** Seeds weight initialisation and native randomness. */
  seed: number;
}

export interface NativeParam {
  name: string;
  shape: number[];
  group: number;
  trainable: boolean;
}

export interface NativeEvalResult {
  /** Mean loss over the batch. */
  loss: number;
  /** Number of samples whose arg-max equals the label. */
  correct: number;
  /** n*numClasses softmax probabilities, when asked for. */
  probs?: Float32Array;
}

export interface NativeLoadReport {
  loaded: string[];
  skipped: string[];
}

export interface NativeLearner {
  readonly device: string;
  readonly groupCount: number;
  /** Forward, backward and an optimizer step; resolves with the batch's mean loss. */
  trainStep(batch: NativeBatch, hyper: NativeHyper): Promise<{ loss: number }>;
  /** Forward in eval mode without gradients. */
  evalStep(batch: NativeBatch, options?: { probs?: boolean }): Promise<NativeEvalResult>;
  /** Softmax probabilities, n*numClasses, eval mode. */
  predict(batch: NativeBatch): Promise<Float32Array>;
  /** Freeze groups [0, upTo) (requires_grad false, BN in frozen groups keeps training its stats as fastai does). 0 unfreezes all. */
  freeze(upTo: number): void;
  /** Drops optimizer state (moments, step counts). */
  resetOptimizer(): void;
  /** Weights, optimizer state and `meta` (JSON text) in one file, written atomically. */
  save(file: string, meta: string): Promise<void>;
  /** Restores what save wrote; resolves with its meta. */
  load(file: string): Promise<string>;
  /** Loads a torch.save(model.state_dict()) file; skipHead leaves the classifier when shapes differ. */
  loadTorchvision(file: string, options?: { skipHead?: boolean }): Promise<NativeLoadReport>;
  parameters(): NativeParam[];
  /** Frees native memory now; the learner is unusable afterwards. */
  dispose(): void;
}

export interface NativeBinding {
  info(): NativeInfo;
  setThreads(n: number): void;
  manualSeed(seed: number): void;
  modelNames(): string[];
  Learner: new (options: NativeLearnerOptions) => NativeLearner;
}

const ADDON_NAME = 'torchts.node';

/** The package root: the nearest folder above this file with our package.json (works from lib/ and dist/lib/). */
export function packageRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'torchts') return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from, '..');
    dir = up;
  }
}

/** Places the addon may be, most specific first. */
export function addonCandidates(root = packageRoot()): string[] {
  const candidates: string[] = [];
  if (process.env.TORCHTS_ADDON) candidates.push(path.resolve(process.env.TORCHTS_ADDON));
  candidates.push(
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, ADDON_NAME),
    path.join(root, 'build', 'Release', ADDON_NAME),
    path.join(root, 'build', 'Debug', ADDON_NAME),
  );
  return candidates;
}

let cached: NativeBinding | undefined;

/** Loads the addon once; throws an Error that says how to build it when it is missing. */
export function native(): NativeBinding {
  if (cached) return cached;
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(file) as NativeBinding;
      return cached;
    } catch (err) {
      tried.push(`${file} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw new Error(
    `torchts: the native addon could not be loaded. Tried:\n  ${tried.join('\n  ')}\n` +
      'Build it with `npm run build:native` (it needs libtorch: see scripts/setup-libtorch).',
  );
}
