/**
 * Inference: a model exported by `Learner.export`, loaded without training
 * state, for batches of prepared pixels (`predict`) or for single images from
 * many concurrent callers (`classify`), which share native batches.
 */
import * as fs from 'fs';
import * as path from 'path';
import { LEARNER_DEFAULTS, LIMITS, PREDICTOR_DEFAULTS } from '../defaults';
import { announceDevice, native, type NativeModel } from '../native';
import { NativeOwner } from '../util/native-owner';
import { decodeTransformed, DecodeError, transformImage, type RawPixels, type TransformRequest } from '../data/decode';
import { Batcher, type BatchingOptions } from './batcher';
import { exportOnnx, type OnnxExportOptions, type OnnxExportReport } from '../export/onnx';
import { exportPyTorch, type PyTorchExportReport } from '../export/pytorch';
import { parseMeta, readSidecar, sidecarOf, type CheckpointMeta, type NormalizeStats } from './checkpoint';
import type { PredictInput, PredictResult } from './options';

/** The model file of a run folder (`torchts-train` writes it, with its sidecar, when training ends). */
export const RUN_MODEL_FILE = 'last.tsl';

/** An image for `classify`: a file path, encoded bytes (JPEG, PNG, WebP, ...: any format sharp reads), or raw pixels. */
export type ImageInput = string | Uint8Array | RawPixels;

export type { RawPixels };

/** One class and its probability. */
export interface RankedClass {
  label: string;
  /** Its index in `Predictor.classes`. */
  index: number;
  probability: number;
}

/** The answer for one image. */
export interface Classification {
  /** Softmax probability of every class, in `Predictor.classes` order. */
  probs: Float32Array;
  /** The most probable class's index in `Predictor.classes`. */
  index: number;
  /** Its name. */
  label: string;
  /** The `topK` most probable classes, most probable first (ties: lower index first). */
  top: RankedClass[];
}

/** Options of `classify`. */
export interface ClassifyOptions {
  /** Classes in `top`; default `PREDICTOR_DEFAULTS.topK`, capped at the class count. */
  topK?: number;
}

/** Options of `Predictor.load`. */
export interface PredictorOptions extends Partial<BatchingOptions> {
  /** Default `LEARNER_DEFAULTS.device`. */
  device?: string;
}

/** Throughput of `classify` (the `predict` method is not counted). */
export interface PredictorStats {
  /** Images that ran through the model. */
  images: number;
  /** Native batches they ran in. */
  batches: number;
  /** images / batches (0 before the first batch). */
  meanBatchSize: number;
  largestBatch: number;
  /** Images refused before reaching the model (not decodable, bad raw pixels). */
  failed: number;
  /** Images waiting for the next batch now. */
  queued: number;
  /** Seconds the model spent on classify's batches. */
  busySeconds: number;
  /** Seconds from the first `classify` call to the last answered batch. */
  wallSeconds: number;
  /** images / busySeconds: what the model sustains while it runs. */
  imagesPerSecond: number;
  /** images / wallSeconds: what the callers got, waits and decoding included. */
  wallImagesPerSecond: number;
}

/** An image `classify` could not use (not decodable, bad raw pixels); other images are unaffected. */
export class ImageInputError extends Error {
  constructor(
    /** What was given, e.g. `a Buffer of 11 bytes beginning "hello world"`. */
    readonly input: string,
    /** Why it could not be used. */
    readonly reason: string,
  ) {
    super(`Predictor.classify: ${input} is not a usable image: ${reason}`);
    this.name = 'ImageInputError';
  }
}

/** Where an exported model lives, found by `locateModel`. */
export interface LocatedModel {
  /** The weights (absolute path). */
  file: string;
  /** Its sidecar's description of the model. */
  meta: CheckpointMeta;
  /** The folder holding it. */
  runFolder: string;
}

/**
 * Finds an exported model: `modelOrRun` is a `.tsl` file written by
 * `Learner.export` (with its `.json` sidecar) or a run folder (its
 * `RUN_MODEL_FILE`). Throws naming what is missing or unreadable.
 */
export function locateModel(modelOrRun: string): LocatedModel {
  let file = path.resolve(modelOrRun);
  if (!fs.existsSync(file)) throw new Error(`${modelOrRun} does not exist; expected a model file or a run folder`);
  if (fs.statSync(file).isDirectory()) file = path.join(file, RUN_MODEL_FILE);
  const sidecar = sidecarOf(file);
  if (!fs.existsSync(file) || !fs.existsSync(sidecar)) {
    throw new Error(`${modelOrRun} holds no exported model (expected ${path.basename(file)} and ${path.basename(sidecar)}, as train writes)`);
  }
  try {
    return { file, meta: readSidecar(file), runFolder: path.dirname(file) };
  } catch (err) {
    throw new Error(`${(err as Error).message.replace(/^(load|Predictor\.load): /, '')}; expected the model description train writes`);
  }
}

/** How `classify` and the CLI's `predict` prepare an image: the centred square, resized to the model's size. */
export function predictionRequest(size: number): TransformRequest {
  return { transform: { type: 'resize', method: 'crop' }, flip: false, size, rng: null };
}

/** An exported model for inference only: the native Model holds the network and no optimizer. */
export class Predictor extends NativeOwner<NativeModel> {
  private readonly batcher: Batcher<Uint8Array, Float32Array>;
  private failed = 0;
  private firstRequestAt: number | undefined;

  private constructor(
    native: NativeModel,
    readonly arch: string,
    readonly classes: readonly string[],
    /** The image size it was trained at last: every image is prepared at this size. */
    readonly size: number,
    readonly normalize: NormalizeStats,
    private readonly batching: BatchingOptions,
  ) {
    super('Predictor', native);
    this.batcher = new Batcher((images) => this.runBatch(images), batching);
  }

  /**
   * Loads what `Learner.export` (or `save`) wrote, from the file or from a run
   * folder (see `locateModel`). Options: `device` (default
   * `LEARNER_DEFAULTS.device`), `maxBatch` and `maxWaitMs` (default
   * `PREDICTOR_DEFAULTS`) for `classify`'s batches.
   */
  static async load(modelOrRun: string, options: PredictorOptions = {}): Promise<Predictor> {
    const batching = checkBatching(options);
    let located: LocatedModel;
    try {
      located = locateModel(modelOrRun);
    } catch (err) {
      throw new Error(`Predictor.load: ${(err as Error).message}`);
    }
    const { file, meta } = located;
    const model = new (native().Model)({
      arch: meta.arch,
      numClasses: meta.classes.length,
      device: announceDevice(options.device ?? LEARNER_DEFAULTS.device),
      mean: meta.normalize?.mean ?? null,
      std: meta.normalize?.std ?? null,
      amp: 'none',
    });
    try {
      parseMeta(await model.load(file), file);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return new Predictor(model, meta.arch, meta.classes, meta.size, meta.normalize, batching);
  }

  /** The native model (for what this class does not wrap). */
  get model(): NativeModel {
    return this.live();
  }

  /** Class probabilities of a batch of prepared pixels (uint8 RGB NHWC), in one native call. */
  async predict(images: PredictInput): Promise<PredictResult> {
    return predictWith(this.live(), this.classes, images);
  }

  /**
   * Classifies one image, or each of an array (rejecting if any fails; an
   * array is decoded at most 2 x maxBatch images ahead, so its memory stays
   * bounded), prepared as `predictionRequest` says. Concurrent calls share
   * native batches (see `PredictorOptions`). An image that cannot be used
   * rejects its own call with an ImageInputError; the images batched with it
   * are unaffected. Bytes and pixels must not change until the call settles.
   */
  classify(input: ImageInput, options?: ClassifyOptions): Promise<Classification>;
  classify(inputs: readonly ImageInput[], options?: ClassifyOptions): Promise<Classification[]>;
  async classify(input: ImageInput | readonly ImageInput[], options: ClassifyOptions = {}): Promise<Classification | Classification[]> {
    this.live();
    const k = this.topKOf(options.topK);
    this.firstRequestAt ??= performance.now();
    if (isImageList(input)) return mapWithLimit(input, 2 * this.batching.maxBatch, (one) => this.classifyOne(one, k));
    return this.classifyOne(input, k);
  }

  /**
   * Writes an ONNX model that onnxruntime (Node, web, Python) runs with this model's
   * predictions; options and defaults: `OnnxExportOptions`.
   */
  async exportOnnx(file: string, options: OnnxExportOptions = {}): Promise<OnnxExportReport> {
    return exportOnnx(this, file, options);
  }

  /** Writes the weights as a PyTorch state_dict for torchvision's resnet or fastai's xresnet. */
  async exportPyTorch(file: string): Promise<PyTorchExportReport> {
    return exportPyTorch(this, file);
  }

  /** What `classify` has done so far; see `PredictorStats` for what each rate measures. */
  stats(): PredictorStats {
    const counts = this.batcher.stats();
    const busySeconds = counts.busyMs / 1000;
    const wallSeconds = this.firstRequestAt !== undefined && counts.lastSettledAt !== undefined ? (counts.lastSettledAt - this.firstRequestAt) / 1000 : 0;
    const rate = (seconds: number) => (seconds > 0 ? counts.items / seconds : 0);
    return {
      images: counts.items,
      batches: counts.batches,
      meanBatchSize: counts.batches > 0 ? counts.items / counts.batches : 0,
      largestBatch: counts.largestBatch,
      failed: this.failed,
      queued: counts.queued,
      busySeconds,
      wallSeconds,
      imagesPerSecond: rate(busySeconds),
      wallImagesPerSecond: rate(wallSeconds),
    };
  }

  /** Frees the model; images still queued (or being decoded) for `classify` reject. A running batch still answers. */
  override dispose(): void {
    this.batcher.close('Predictor: disposed before this image was classified');
    super.dispose();
  }

  private async classifyOne(input: ImageInput, k: number): Promise<Classification> {
    const pixels = await this.prepare(input);
    const probs = await this.batcher.submit(pixels);
    return rank(probs, this.classes, k);
  }

  /** The image's pixels as the model takes them, or an ImageInputError naming what was given. */
  private async prepare(input: ImageInput): Promise<Uint8Array> {
    const request = predictionRequest(this.size);
    try {
      if (typeof input !== 'string' && (typeof input !== 'object' || input === null)) {
        throw new DecodeError(input === null ? 'null' : `a ${typeof input}`, 'expected a file path, encoded image bytes or raw pixels');
      }
      const decoded = typeof input === 'string' ? await decodeTransformed(input, request) : await transformImage(describeInput(input), input, request);
      return decoded.pixels;
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.failed += 1;
      throw new ImageInputError(typeof input === 'string' ? `the file ${input}` : err.file, err.reason);
    }
  }

  private async runBatch(images: Uint8Array[]): Promise<Float32Array[]> {
    const bytes = this.size * this.size * 3;
    const batch = new Uint8Array(images.length * bytes);
    images.forEach((pixels, i) => batch.set(pixels, i * bytes));
    const probs = await this.live().predict({ images: batch, n: images.length, h: this.size, w: this.size });
    const numClasses = this.classes.length;
    return images.map((_, i) => probs.slice(i * numClasses, (i + 1) * numClasses));
  }

  private topKOf(topK: number | undefined): number {
    const k = topK ?? PREDICTOR_DEFAULTS.topK;
    if (!Number.isInteger(k) || k < 1) throw new Error(`Predictor.classify: topK must be a positive integer, got ${k}`);
    return Math.min(k, this.classes.length);
  }
}

function checkBatching(options: Partial<BatchingOptions>): BatchingOptions {
  const maxBatch = options.maxBatch ?? PREDICTOR_DEFAULTS.maxBatch;
  const maxWaitMs = options.maxWaitMs ?? PREDICTOR_DEFAULTS.maxWaitMs;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > LIMITS.bs.max) {
    throw new Error(`Predictor.load: maxBatch must be an integer in 1..${LIMITS.bs.max}, got ${maxBatch}`);
  }
  if (!Number.isFinite(maxWaitMs) || maxWaitMs < 0) throw new Error(`Predictor.load: maxWaitMs must be a finite number >= 0, got ${maxWaitMs}`);
  return { maxBatch, maxWaitMs };
}

/** `fn` of each item, at most `limit` at a time, in order; stops starting new ones after a failure. */
async function mapWithLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

function isImageList(input: ImageInput | readonly ImageInput[]): input is readonly ImageInput[] {
  return Array.isArray(input);
}

/** Names an in-memory image for messages: its size and, for bytes, how they begin. */
function describeInput(input: Uint8Array | RawPixels): string {
  if (!(input instanceof Uint8Array)) {
    const { width, height, channels } = input ?? {};
    return `raw pixels (${width}x${height}, ${channels} channels)`;
  }
  const kind = Buffer.isBuffer(input) ? 'Buffer' : 'Uint8Array';
  if (input.length === 0) return `an empty ${kind}`;
  return `a ${kind} of ${input.length} bytes beginning ${preview(input.subarray(0, 16))}`;
}

/** Printable ASCII as text, anything else as hex bytes. */
function preview(head: Uint8Array): string {
  const printable = head.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09);
  if (printable) return JSON.stringify(Buffer.from(head).toString('latin1'));
  return Array.from(head, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** The answer for one image's probabilities. */
function rank(probs: Float32Array, classes: readonly string[], k: number): Classification {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  const top = order.slice(0, k).map((index) => ({ label: classes[index], index, probability: probs[index] }));
  return { probs, index: order[0], label: classes[order[0]], top };
}

/** Class probabilities and the most probable class of each image. */
export async function predictWith(model: Pick<NativeModel, 'predict'>, classes: readonly string[], images: PredictInput): Promise<PredictResult> {
  checkImages(images);
  const probs = await model.predict({ images: images.images, n: images.n, h: images.h, w: images.w, augment: images.augment });
  const numClasses = classes.length;
  const predicted = new Int32Array(images.n);
  for (let i = 0; i < images.n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[i * numClasses + c] > probs[i * numClasses + best]) best = c;
    predicted[i] = best;
  }
  return { probs, predicted, labels: Array.from(predicted, (c) => classes[c]) };
}

function checkImages(images: PredictInput): void {
  const { n, h, w } = images;
  for (const [name, v] of Object.entries({ n, h, w })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`predict: ${name} must be a positive integer, got ${v}`);
  }
  if (!(images.images instanceof Uint8Array) || images.images.length !== n * h * w * 3) {
    throw new Error(`predict: images must be a Uint8Array of n*h*w*3 = ${n * h * w * 3} bytes (RGB NHWC), got ${images.images?.length}`);
  }
}
