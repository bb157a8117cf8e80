/**
 * Finds and loads the native addon, and types its raw surface.
 *
 * The binding is deliberately small: a Learner that owns a model, its optimizer
 * and its loss on one native thread, a Model for inference alone, plus a few
 * process-wide functions. Every tensor lives on the native side; TypeScript hands
 * it uint8 batches and the decisions (learning rates, augmentation matrices, mix
 * partners). The addon requires every option; `native()` fills the ones a caller
 * leaves out from lib/defaults.ts. Test helpers are not part of this binding
 * (lib/native-internal.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { LEARNER_DEFAULTS, OPTIMIZER_DEFAULTS } from './defaults';

/** What the loaded libtorch build can do. */
export interface NativeInfo {
  /** torchts addon version. */
  version: string;
  /** libtorch version, e.g. "1.13.1". */
  torchVersion: string;
  /**
   * Where libtorch came from: "LIBTORCH", "Torch_DIR", "python torch (<interpreter>)", "system",
   * "cache (<folder>)".
   */
  libtorchSource: string;
  /** The folder of the libtorch shared libraries in use (absent when TORCHTS_ADDON chose the addon). */
  libtorchDir?: string;
  /** Whether the addon and libtorch use libstdc++'s C++11 ABI. */
  cxx11Abi: boolean;
  /** Whether this libtorch is a CUDA build (it may still see no device: see `cudaAvailable`). */
  cudaBuild: boolean;
  /** CUDA version of a CUDA build, e.g. "13.0". */
  cudaVersion?: string;
  /** 'prebuilt' (shipped in the package), 'source' (built at install) or 'TORCHTS_ADDON'. */
  binary: 'prebuilt' | 'source' | 'TORCHTS_ADDON';
  /** The binary's variant, e.g. "torch2.13-cxx11-cpu". */
  variant?: string;
  /** Whether a CUDA device is usable now. */
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  /**
   * Intra-op threads libtorch uses now. Default: `TORCHTS_THREADS` when set, otherwise the
   * CPUs this process may run on (sched_getaffinity); change it with `setThreads`.
   */
  threads: number;
  /**
   * Compiled and usable features: "cuda", "cudnn", "mkldnn", "mkl", "openmp", the data-parallel
   * backends "c10d-gloo" and "c10d-nccl", and, when a CUDA
   * device is usable, "amp-bf16", "amp-fp16", "pinned-memory", "channels-last".
   */
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
  /** n*9 floats; omit for a plain bilinear resize to `size` (align_corners = false). */
  matrices?: Matrices3x3;
  /** n floats added in logit space (0 = unchanged). */
  brightness?: Float32Array;
  /** n floats multiplying in logit space (1 = unchanged). Applied after brightness. */
  contrast?: Float32Array;
  // Lighting is y = sigmoid((logit(x) + brightness) * contrast) on [0, 1] values (logit clamped
  // at 1e-7), applied after the warp and before normalisation.
}

/**
 * Mixup / CutMix partners and weights, chosen in TypeScript. Mixing acts on the normalised
 * images: mixup x = x[perm] + lambda*(x - x[perm]); cutmix pastes `box` from x[perm]. The loss is
 * lambda*L(pred, y) + (1 - lambda)*L(pred, y[perm]) per sample, then the mean.
 */
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

/**
 * Options of a native Model. Every field but `arch` and `numClasses` may be left out: `native()`
 * fills it in (device and amp from `LEARNER_DEFAULTS`, no normalisation).
 */
export interface NativeModelOptions {
  /** A name from `modelNames()`. */
  arch: string;
  numClasses: number;
  /** 'auto' | 'cpu' | 'cuda' | 'cuda:N'; 'auto' is the first CUDA device, else the CPU. */
  device?: string;
  /** Per-channel mean and std applied as (x/255 - mean)/std on the device; null = x/255 only. */
  mean?: number[] | null;
  std?: number[] | null;
  /** 'none' | 'bf16' | 'fp16' (fp16 uses dynamic loss scaling in training). Ignored on CPU. */
  amp?: 'none' | 'bf16' | 'fp16';
}

/**
 * Options of a native Learner: the model's and the optimizer's. Every field but `arch` and
 * `numClasses` may be left out: `native()` fills it in from lib/defaults.ts (`OPTIMIZER_DEFAULTS`,
 * `LEARNER_DEFAULTS`: fastai's AdamW settings, seed 0) with no label smoothing and no
 * normalisation.
 */
export interface NativeLearnerOptions extends NativeModelOptions {
  optimizer?: 'adamw' | 'sgd';
  /** Decoupled weight decay (AdamW) or L2 (SGD). Not applied to 1-D parameters (biases, norm weights). */
  weightDecay?: number;
  /** Adam beta2 ("sqr_mom"). */
  beta2?: number;
  /** Adam epsilon. */
  eps?: number;
  /** Label-smoothing epsilon for the cross entropy (training and evaluation); 0 = plain cross entropy. */
  labelSmoothing?: number;
  /** Seeds weight initialisation (the same seed gives the same weights). */
  seed?: number;
  /** BatchNorm layers use their running statistics while training and leave them unchanged. */
  frozenBatchNorm?: boolean;
}

/**
 * How a native Learner joins a data-parallel group (`NativeLearner.joinGroup`). Every field is
 * required: lib/learn/distributed.ts resolves them from the torchrun environment or the user's options.
 */
export interface NativeGroupOptions {
  rank: number;
  worldSize: number;
  /** Host of the rendezvous store (rank 0's machine, or torchrun's agent). */
  masterAddr: string;
  masterPort: number;
  /** Rank 0 hosts the store (false under torchrun, whose agent already does). */
  hostStore: boolean;
  /** Key prefix in the store. */
  prefix: string;
  /** Network interface for Gloo ('' = the one that routes to masterAddr). */
  iface: string;
  backend: 'auto' | 'gloo' | 'nccl';
  /** Limit of one collective, and of the rendezvous, in milliseconds. */
  timeoutMs: number;
  joinTimeoutMs: number;
  /** All-reduce gradient buckets from backward's hooks (true) or after backward (false). */
  overlap: boolean;
}

/** The group a learner joined. */
export interface NativeGroup {
  rank: number;
  worldSize: number;
  backend: 'gloo' | 'nccl';
}

/** What a training step resolves with. */
export interface NativeStepResult {
  /** The batch's mean loss (in a data-parallel group: the mean over every rank). */
  loss: number;
  /** In a data-parallel group: some rank called `requestStop`, so every rank stops here. */
  stop: boolean;
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

/**
 * A model, its optimizer and its loss on one device. Every method that touches tensors runs on
 * the learner's own native thread (not the JS thread, not a libuv pool thread), in call order;
 * failures reject with an Error whose stack is the caller's.
 */
export interface NativeLearner extends NativeWeightsSource {
  /** The device in use: 'cpu' or 'cuda:N'. */
  readonly device: string;
  /** Parameter groups: 3 (stem, body, head). */
  readonly groupCount: number;
  readonly numClasses: number;
  /**
   * Forward, backward and an optimizer step; resolves with the batch's mean loss. A NaN or
   * infinite loss rejects and leaves the weights as they were.
   */
  trainStep(batch: NativeBatch, hyper: NativeHyper): Promise<NativeStepResult>;
  /** Forward in eval mode without gradients; loss uses the learner's label smoothing. */
  evalStep(batch: NativeBatch, options?: { probs?: boolean }): Promise<NativeEvalResult>;
  /** Softmax probabilities, n*numClasses, eval mode; rejects when they are not finite (a diverged or damaged model). */
  predict(batch: NativeBatch): Promise<Float32Array>;
  /** The logits before the softmax, n*numClasses, eval mode (what exports are checked against). */
  logits(batch: NativeBatch): Promise<Float32Array>;
  /**
   * Freeze groups [0, upTo): their weights stop training, but their 1-D parameters (norm weights
   * and biases) keep training, as fastai's train_bn does; BN statistics keep updating. 0
   * unfreezes all. Takes effect in call order after the steps already queued.
   */
  freeze(upTo: number): void;
  /** Drops optimizer state (moments, step counts), in call order. */
  resetOptimizer(): void;
  /**
   * Weights (parameters and buffers, by their state_dict names), optimizer state (tensors named
   * "opt.<param>.<field>": step, exp_avg, exp_avg_sq for AdamW, momentum_buffer for SGD) and `meta`
   * (JSON text) in one file, written atomically.
   */
  save(file: string, meta: string): Promise<void>;
  /** Restores what save wrote (same arch and class count); resolves with its meta. */
  load(file: string): Promise<string>;
  /** Loads a torch.save(model.state_dict()) file; skipHead leaves the classifier when shapes differ. */
  loadTorchvision(file: string, options?: { skipHead?: boolean }): Promise<NativeLoadReport>;
  parameters(): NativeParam[];
  /** Names of the parameters and buffers holding NaN or infinite values (empty when every weight is finite). */
  nonFiniteWeights(): Promise<string[]>;
  /**
   * Joins a data-parallel group: blocks (on the learner's thread) until every rank has joined,
   * then copies rank 0's weights to every rank. From then on each training step averages the
   * gradients over the ranks, and its loss is the mean over the ranks.
   */
  joinGroup(options: NativeGroupOptions): Promise<NativeGroup>;
  /** Sums the values over every rank, in call order with the steps (the values themselves without a group). */
  allReduce(values: readonly number[] | Float64Array): Promise<Float64Array>;
  /** Tells the other ranks that this one fails with `message`: they stop at their next collective and name it. */
  reportFailure(message: string): Promise<void>;
  /** Every rank stops after the next training step (its result says `stop`); safe while a step runs. */
  requestStop(): void;
  /** Seconds spent waiting for collectives: the gradient all-reduces, and all of them. */
  groupStats(): Promise<{ gradientWaitSeconds: number; waitSeconds: number }>;
  /**
   * Frees native memory now: waits for the running step, rejects queued calls, stops the
   * thread. The learner is unusable afterwards. Garbage collection does the same.
   */
  dispose(): void;
}

/**
 * A model for inference: no optimizer, no loss, no training state. It loads the weights of a
 * Learner's checkpoint (the optimizer state in the file is read and dropped) and predicts on its
 * own native thread, in call order, as a Learner does.
 */
/** One floating-point parameter or buffer of a model, as a copy. */
export interface NativeWeight {
  /** Its state_dict name. */
  name: string;
  shape: number[];
  /** Its values, row-major, as float32. */
  data: Float32Array;
}

/** Reading a model's weights out, for the exporters (lib/export). */
export interface NativeWeightsSource {
  /** The floating-point parameters and buffers in state_dict order. */
  weights(): Promise<NativeWeight[]>;
  /**
   * Writes every parameter and buffer as `torch.save(state_dict)` does (a zip archive Python's
   * `torch.load` reads), renamed by `names` ([ours, theirs] pairs covering each tensor once).
   */
  savePyTorch(file: string, names: readonly (readonly [string, string])[]): Promise<void>;
}

export interface NativeModel extends NativeWeightsSource {
  /** The device in use: 'cpu' or 'cuda:N'. */
  readonly device: string;
  readonly numClasses: number;
  /** Softmax probabilities, n*numClasses, eval mode. */
  predict(batch: NativeBatch): Promise<Float32Array>;
  /** The logits before the softmax, n*numClasses, eval mode (what exports are checked against). */
  logits(batch: NativeBatch): Promise<Float32Array>;
  /** Loads the weights a Learner's `save` wrote (same arch and class count); resolves with its meta. */
  load(file: string): Promise<string>;
  /** Frees native memory now (see NativeLearner.dispose); the model is unusable afterwards. */
  dispose(): void;
}

export interface NativeBinding {
  info(): NativeInfo;
  /** Intra-op threads for every learner (applied before each step). */
  setThreads(n: number): void;
  manualSeed(seed: number): void;
  modelNames(): string[];
  /**
   * Builds the model and its optimizer synchronously (seeded initialisation: tens to a few
   * hundred ms for the larger models); throws an Error naming a bad option. Each learner owns
   * one native thread, stopped by dispose(), by garbage collection, or at process exit (after
   * the running step finishes).
   */
  Learner: new (options: NativeLearnerOptions) => NativeLearner;
  /**
   * Builds a model for inference, without an optimizer; its initial weights are random until
   * `load`. Throws an Error naming a bad option; owns one native thread like a Learner.
   */
  Model: new (options: NativeModelOptions) => NativeModel;
  /**
   * Present only when the addon was built with libjpeg(-turbo) (CMake's find_package(JPEG)).
   * Decodes each JPEG in `inputs` (file bytes) with DCT scaling by 1/2, 1/4 or 1/8 where sharp's
   * shrink-on-load would use it, converts grayscale to RGB, squishes it to presize x presize with
   * sharp's "linear" fill resize reproduced (box + triangle when shrinking, bilinear when
   * enlarging; mean difference from sharp's output under 0.2/255) and writes the
   * presize*presize*3 RGB bytes (HWC) into `out` at byte offset `offsets[i]`. Runs on libuv's pool with `workers`
   * threads (default 1) pulling images from the batch; the buffers are kept alive until it
   * settles. Resolves with one entry per input: null when decoded, otherwise why not (corrupt
   * or truncated data, as libjpeg warnings count as errors; CMYK/YCCK; too large), leaving
   * that slot of `out` unspecified. Throws an Error naming a bad argument; rejects only when
   * `out` is detached or resized before the decode finishes.
   */
  decodeJpegInto?(inputs: Uint8Array[], presize: number, out: Uint8Array, offsets: number[], workers?: number): Promise<Array<string | null>>;
  /** The JPEG library compiled in, e.g. "libjpeg-turbo 2.1.5"; absent when built without one. */
  jpegVersion?(): string;
}

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

/** How an addon is loaded: scripts/binary.js, shared with the install step (plain JavaScript). */
interface LibtorchSummary {
  version: string;
  source: string;
  dir: string;
  cuda: string | null;
  cxx11Abi: boolean | null;
}
interface BindingRecord {
  kind: 'prebuilt' | 'source';
  variant: string;
  addon: string;
  libtorch: LibtorchSummary;
}
interface FoundLibtorch {
  torchDir: string;
  source: string;
}
interface BinaryModule {
  readRecord(root: string): BindingRecord | null;
  recordUsable(root: string, record: BindingRecord): boolean;
  loadRecord(root: string, record: BindingRecord): NativeBinding;
  matchPrebuilt(root: string, lib: object): { record?: BindingRecord; reason?: string };
  sourceRecord(lib: object): BindingRecord;
  probeRecord(root: string, record: BindingRecord): string | null;
  writeRecord(root: string, record: BindingRecord): void;
  noBinaryMessage(root: string, lib: object, reasons: string[]): string;
}
interface FindModule {
  findLibtorch(env?: NodeJS.ProcessEnv): FoundLibtorch | null;
  describeLibtorch(found: FoundLibtorch): object;
}

function scriptModule<T>(root: string, name: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(root, 'scripts', name)) as T;
}

/**
 * Which addon to load. The install step's choice (torchts-binding.json) when its files are still
 * there; otherwise, as after `npm install --ignore-scripts`, the same choice made now: the shipped
 * binary matching the libtorch found, else a source build in build/Release.
 */
function chooseRecord(root: string, binary: BinaryModule): BindingRecord {
  const recorded = binary.readRecord(root);
  if (recorded && binary.recordUsable(root, recorded)) return recorded;
  const finder = scriptModule<FindModule>(root, 'find-libtorch.js');
  const found = finder.findLibtorch();
  if (!found) {
    throw new Error(
      'torchts: no libtorch found. Install PyTorch (pip install torch), set LIBTORCH to a libtorch folder, ' +
        'or run `node node_modules/torchts/scripts/setup-libtorch.js`.',
    );
  }
  const lib = finder.describeLibtorch(found);
  const { record, reason } = binary.matchPrebuilt(root, lib);
  if (!record) {
    const built = binary.sourceRecord(lib);
    if (fs.existsSync(path.join(root, built.addon))) return built;
    throw new Error(`torchts: ${binary.noBinaryMessage(root, lib, [reason ?? ''])}`);
  }
  // Tried once in a child process, as the install step would have, so a binary that does not fit
  // this libtorch is an Error here rather than a crash; then remembered like an install's choice.
  const failure = binary.probeRecord(root, record);
  if (failure) {
    throw new Error(`torchts: ${binary.noBinaryMessage(root, lib, [`the prebuilt ${record.variant} binary does not load here (${failure})`])}`);
  }
  try {
    binary.writeRecord(root, record);
  } catch {
    // A read-only install folder: the choice is made again by the next process.
  }
  return record;
}

/** The addon TORCHTS_ADDON names, for tests and custom builds. */
function loadNamedAddon(file: string): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const binding = require(path.resolve(file)) as NativeBinding;
  return presented(binding, { binary: 'TORCHTS_ADDON' });
}

/**
 * What a left-out option means. The addon states no defaults of its own and requires every
 * option; these come from lib/defaults.ts, except the two "off" values (no label smoothing, no
 * normalisation).
 */
function modelDefaults(): Required<Omit<NativeModelOptions, 'arch' | 'numClasses'>> {
  return { device: LEARNER_DEFAULTS.device, mean: null, std: null, amp: LEARNER_DEFAULTS.amp };
}
function learnerDefaults(): Required<Omit<NativeLearnerOptions, 'arch' | 'numClasses'>> {
  const { kind, weightDecay, beta2, eps } = OPTIMIZER_DEFAULTS;
  return { ...modelDefaults(), optimizer: kind, weightDecay, beta2, eps, labelSmoothing: 0, seed: LEARNER_DEFAULTS.seed, frozenBatchNorm: false };
}

/**
 * A constructor that fills the options left out (undefined or null) before calling `Native`.
 * Anything but a plain object goes through unchanged, so the addon names it in its Error.
 */
function fillingOptions<O extends object, T>(Native: new (options: O) => T, defaults: () => object): new (options: O) => T {
  function Filled(options: O): T {
    const plain = typeof options === 'object' && options !== null && !Array.isArray(options) && !ArrayBuffer.isView(options);
    if (!plain) return new Native(options);
    const filled: Record<string, unknown> = { ...(options as Record<string, unknown>) };
    for (const [key, value] of Object.entries(defaults())) filled[key] ??= value;
    return new Native(filled as O);
  }
  Filled.prototype = Native.prototype; // instanceof still holds
  Object.defineProperty(Filled, 'name', { value: Native.name });
  return Filled as unknown as new (options: O) => T;
}

/**
 * The binding as `native()` returns it: info() completed with the loader's facts, options filled.
 * Its prototype is the addon itself, which lib/native-internal.ts reaches through it.
 */
function presented(binding: NativeBinding, facts: Partial<NativeInfo>): NativeBinding {
  const nativeInfo = binding.info.bind(binding);
  return Object.assign(Object.create(binding) as NativeBinding, {
    info: () => ({ ...nativeInfo(), ...facts }),
    Learner: fillingOptions(binding.Learner, learnerDefaults),
    Model: fillingOptions(binding.Model, modelDefaults),
  });
}

let cached: NativeBinding | undefined;

/** Loads the addon once; throws an Error that names the libtorch found and what to do. */
export function native(): NativeBinding {
  if (cached) return cached;
  if (process.env.TORCHTS_ADDON) return (cached = loadNamedAddon(process.env.TORCHTS_ADDON));
  const root = packageRoot();
  const binary = scriptModule<BinaryModule>(root, 'binary.js');
  const record = chooseRecord(root, binary);
  let binding: NativeBinding;
  try {
    binding = binary.loadRecord(root, record);
  } catch (err) {
    throw new Error(
      `torchts: the native addon ${record.addon} (${record.variant}) could not be loaded: ` +
        `${(err as Error).message.split('\n')[0]}\nRebuild it with \`TORCHTS_BUILD_FROM_SOURCE=1 npm rebuild torchts\`.`,
    );
  }
  cached = presented(binding, {
    binary: record.kind,
    variant: record.variant,
    libtorchSource: record.libtorch.source,
    libtorchDir: record.libtorch.dir,
  });
  return cached;
}

let fallbackNoted = false;

/**
 * Passes a device spec through, saying once per process, on stderr, when 'auto' means the CPU
 * on a CUDA build of libtorch (a GPU machine's install used on a machine without a usable GPU).
 */
export function announceDevice(device: string): string {
  if (device !== 'auto' || fallbackNoted) return device;
  const info = native().info();
  if (info.cudaBuild && !info.cudaAvailable) {
    fallbackNoted = true;
    process.stderr.write(
      `torchts: libtorch ${info.torchVersion} is a CUDA ${info.cudaVersion ?? ''} build but no CUDA device is usable here; using the CPU\n`,
    );
  }
  return device;
}
