/**
 * `torchts-train predict IMAGES...`: class probabilities for image files from
 * a trained model, optionally with test-time augmentation.
 */
import * as fs from 'fs';
import { kindOf } from '../util/files';
import { UsageError, deviceName, integerIn } from './args';
import { resolveModel, shortPath } from './common';
import { textTable } from '../report';
import { decodeTransformed, Random } from '../data';
import { Predictor, combineTta, TTA_DEFAULTS } from '../learn';
import { predictionRequest } from '../learn/predictor';
import type { FlagsOf } from './flags';

/** The raw flags of `predict` (declared in flags.ts) and its image files. */
export type PredictFlags = FlagsOf<'predict'> & { images?: unknown };

/** One image's answer. */
export interface Prediction {
  file: string;
  /** The K most probable classes, most probable first. */
  top: { label: string; probability: number }[];
}

/** Checks the flags; nothing is loaded yet. */
export function predictConfigFrom(flags: PredictFlags) {
  const images = (Array.isArray(flags.images) ? flags.images : []).map(String);
  if (images.length === 0) throw new UsageError('IMAGES: expected at least one image file');
  for (const image of images) {
    if (!fs.existsSync(image)) throw new UsageError(`IMAGES: ${image} does not exist; expected an image file`);
    const stat = fs.statSync(image);
    if (!stat.isFile()) throw new UsageError(`IMAGES: ${image} is ${kindOf(stat)}; expected an image file`);
  }
  const model = resolveModel(flags.model);
  const top = flags.top === undefined ? 1 : integerIn('top', flags.top, 1, model.meta.classes.length);
  return {
    images,
    model,
    top,
    tta: Boolean(flags.tta),
    json: Boolean(flags.json),
    device: flags.device === undefined ? 'auto' : deviceName(flags.device),
    seed: flags.seed === undefined ? 0 : integerIn('seed', flags.seed, 0, 2 ** 31 - 1),
  };
}

const BATCH = 64;

/** Runs the model on the images; resolves with one prediction per file. */
export async function runPredict(config: ReturnType<typeof predictConfigFrom>): Promise<Prediction[]> {
  const predictor = await Predictor.load(config.model.file, { device: config.device });
  const size = config.model.meta.size;
  const classes = predictor.classes;
  try {
    const probsOf = async (view: (file: string, index: number) => Promise<Buffer>): Promise<Float32Array> => {
      const out = new Float32Array(config.images.length * classes.length);
      for (let start = 0; start < config.images.length; start += BATCH) {
        const files = config.images.slice(start, start + BATCH);
        const pixels = await Promise.all(files.map((f, i) => view(f, start + i)));
        const images = new Uint8Array(files.length * size * size * 3);
        pixels.forEach((p, i) => images.set(p, i * size * size * 3));
        const result = await predictor.predict({ images, n: files.length, h: size, w: size });
        out.set(result.probs, start * classes.length);
      }
      return out;
    };
    const decode = async (file: string, request: Parameters<typeof decodeTransformed>[1]) => {
      try {
        return (await decodeTransformed(file, request)).pixels;
      } catch (err) {
        throw new UsageError(`IMAGES: ${file} could not be read as an image (${(err as Error).message}); expected JPEG, PNG, WebP, ...`);
      }
    };
    const plain = await probsOf((file) => decode(file, predictionRequest(size)));
    let probs = plain;
    if (config.tta) {
      const passes: Float32Array[] = [];
      for (let pass = 0; pass < TTA_DEFAULTS.n; pass++) {
        passes.push(
          await probsOf((file, i) =>
            decode(file, { transform: { type: 'randomResizedCrop', minScale: 0.75 }, flip: true, size, rng: Random.stream(config.seed, 'predict-tta', pass, i) }),
          ),
        );
      }
      probs = combineTta(passes, plain);
    }
    return config.images.map((file, i) => {
      const row = Array.from(probs.subarray(i * classes.length, (i + 1) * classes.length));
      const order = row.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      return { file, top: order.slice(0, config.top).map(([p, c]) => ({ label: classes[c], probability: p })) };
    });
  } finally {
    predictor.dispose();
  }
}

/** The predictions as a terminal table: file, then label (probability) for each of the top K. */
export function predictionTable(predictions: readonly Prediction[]): string {
  const k = predictions[0]?.top.length ?? 1;
  const header = ['file', ...Array.from({ length: k }, (_, i) => (k === 1 ? 'prediction' : `top ${i + 1}`))];
  return textTable(header, predictions.map((p) => [shortPath(p.file), ...p.top.map((t) => `${t.label} (${t.probability.toFixed(4)})`)]));
}
