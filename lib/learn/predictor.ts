/** Inference: a model exported by `Learner.export`, loaded without training state. */
import * as fs from 'fs';
import { LEARNER_DEFAULTS } from '../defaults';
import { announceDevice, native, type NativeModel } from '../native';
import { NativeOwner } from '../util/native-owner';
import { parseMeta, readSidecar, type NormalizeStats } from './checkpoint';
import type { PredictInput, PredictResult } from './options';

/** An exported model for inference only: the native Model holds the network and no optimizer. */
export class Predictor extends NativeOwner<NativeModel> {
  private constructor(
    native: NativeModel,
    readonly arch: string,
    readonly classes: readonly string[],
    /** The image size it was trained at last. */
    readonly size: number,
    readonly normalize: NormalizeStats,
  ) {
    super('Predictor', native);
  }

  /** Loads what `Learner.export` (or `save`) wrote. Default device `LEARNER_DEFAULTS.device`. */
  static async load(file: string, options: { device?: string } = {}): Promise<Predictor> {
    if (!fs.existsSync(file)) throw new Error(`Predictor.load: no such file ${file}`);
    const head = readSidecar(file);
    const model = new (native().Model)({
      arch: head.arch,
      numClasses: head.classes.length,
      device: announceDevice(options.device ?? LEARNER_DEFAULTS.device),
      mean: head.normalize?.mean ?? null,
      std: head.normalize?.std ?? null,
      amp: 'none',
    });
    try {
      parseMeta(await model.load(file), file);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return new Predictor(model, head.arch, head.classes, head.size, head.normalize);
  }

  /** The native model (for what this class does not wrap). */
  get model(): NativeModel {
    return this.live();
  }

  async predict(images: PredictInput): Promise<PredictResult> {
    return predictWith(this.live(), this.classes, images);
  }
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
