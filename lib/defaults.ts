/**
 * Every default and limit of torchts, stated once. The Learner, the data
 * loaders, the CLI and the docs read them from here; the native layer receives
 * complete options and states none of its own (it keeps only the checks that
 * protect memory).
 */

/** Object.freeze with the fields' types widened (number, not the literal 0.25). */
function frozen<T extends object>(value: T): Readonly<T> {
  return Object.freeze(value);
}

/** Limits on what a caller may ask for. */
export const LIMITS = frozen({
  /** Image side in pixels: the models need 8; the loaders resize up to 4096. */
  size: frozen({ min: 8, max: 4096 }),
  /** Items per batch. */
  bs: frozen({ min: 1, max: 65536 }),
});

/** Optimizer settings: the reference's Adam with decoupled weight decay. */
export const OPTIMIZER_DEFAULTS = frozen({
  kind: 'adamw' as 'adamw' | 'sgd',
  /** Never applied to biases and norm parameters. */
  weightDecay: 0.01,
  /** Adam beta2 ("sqr_mom"). */
  beta2: 0.99,
  /** Adam epsilon. */
  eps: 1e-5,
});

/** The one-cycle policy (fastai's fit_one_cycle). */
export const ONE_CYCLE_DEFAULTS = frozen({
  pctStart: 0.25,
  div: 25,
  divFinal: 1e5,
  /** Momentum (Adam beta1) at the start, at the peak lr, and at the end. */
  moms: [0.95, 0.85, 0.95] as readonly [number, number, number],
});

/** Transfer learning (fastai's fine_tune). */
export const FINE_TUNE_DEFAULTS = frozen({
  freezeEpochs: 1,
  baseLr: 2e-3,
  lrMult: 100,
  pctStart: 0.3,
  div: 5,
});

/** The Learner's own settings. */
export const LEARNER_DEFAULTS = frozen({
  arch: 'xresnet50',
  device: 'auto',
  amp: 'none' as 'none' | 'bf16' | 'fp16',
  size: 224,
  bs: 64,
  /** Seeds the initial weights, native randomness and mix draws (the data has its own, `DATA_SEED`). */
  seed: 0,
  /** lr of `fit` (constant) and peak lr of `fitOneCycle` / `fitPhases`. */
  lr: 1e-3,
  /** Momentum of `fit`'s constant schedule. */
  mom: 0.9,
  /** Smoothing of the reported training loss (debiased exponential average). */
  lossBeta: 0.98,
});

/** The defaults of `Predictor.load` and `classify`, stated once. */
export const PREDICTOR_DEFAULTS = frozen({
  /** Most images in one native batch of `classify`. */
  maxBatch: 32,
  /** Longest the oldest queued image waits for others before its batch runs (ms). */
  maxWaitMs: 3,
  /** Classes listed per image (capped at the model's class count). */
  topK: 5,
});

/**
 * Data-parallel training (`DistributedOptions`): where the rendezvous is, and how long a rank
 * waits. torchrun's default port; a collective that waits longer than `timeout` seconds ends the
 * run with an error naming the rank at fault (PyTorch's default, 30 minutes, hides a hung rank
 * for that long); `joinTimeout` covers ranks that start later than others (other machines).
 */
export const DISTRIBUTED_DEFAULTS = frozen({
  masterAddr: '127.0.0.1',
  masterPort: 29500,
  backend: 'auto' as 'auto' | 'gloo' | 'nccl',
  /** Seconds. */
  timeout: 30,
  /** Seconds. */
  joinTimeout: 300,
  overlap: true,
});

/** aug_transforms' defaults (fastai): the device augmentation of training batches. */
export const AUGMENT_DEFAULTS = frozen({
  mult: 1,
  doFlip: true,
  flipVert: false,
  maxRotate: 10,
  minZoom: 1,
  maxZoom: 1.1,
  maxLighting: 0.2,
  maxWarp: 0.2,
  pAffine: 0.75,
  pLighting: 0.75,
  minScale: 1,
  ratio: [1, 1] as [number, number],
});

/** Seeds the split, the shuffles and every random transform of the data, and the CLI's runs. */
export const DATA_SEED = 42;

/** Label smoothing's epsilon when `{ kind: 'labelSmoothing' }` gives none. */
export const LABEL_SMOOTHING_EPS = 0.1;

/** Beta(alpha, alpha) of the mix draws. */
export const MIX_ALPHA = frozen({ mixup: 0.4, cutmix: 1.0 });

/** Test-time augmentation. */
export const TTA_DEFAULTS = frozen({ n: 4, beta: 0.25, useMax: false });

/** The learning-rate finder. */
export const LR_FIND_DEFAULTS = frozen({ startLr: 1e-7, endLr: 10, numIt: 100, stopDiv: true });

/** Checks an image size and batch size against `LIMITS`; returns them. `who` starts the error message. */
export function checkLoaderSettings<S extends { size: number; bs: number }>(settings: S, who: string): S {
  const { size, bs } = LIMITS;
  if (!Number.isInteger(settings.size) || settings.size < size.min || settings.size > size.max) {
    throw new Error(`${who}size must be an integer in ${size.min}..${size.max}, got ${settings.size}`);
  }
  if (!Number.isInteger(settings.bs) || settings.bs < bs.min || settings.bs > bs.max) {
    throw new Error(`${who}bs must be an integer in ${bs.min}..${bs.max}, got ${settings.bs}`);
  }
  return settings;
}

/** The fill-in of an options object: `defaults` overridden by every field of `options` that is set. */
export function withDefaults<D extends object>(defaults: Readonly<D>, options: { [K in keyof D]?: D[K] | undefined } = {}): D {
  const set = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  return { ...defaults, ...set } as D;
}
