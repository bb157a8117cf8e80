/**
 * Test-time augmentation: combining the probabilities of n augmented passes
 * and one plain pass over the validation set, as the reference does.
 */
import type { Batch, DataLoaders, LoaderSettings } from '../data/types';
import { TTA_DEFAULTS } from '../defaults';
import type { NativeLearner } from '../native';
import { concat, toNative, type LoopGroup } from './loop';
import { accuracyOf } from './metrics';
import type { TtaResult } from './options';

/** How TTA passes are combined. */
export interface TtaOptions {
  /** Augmented passes (training transforms). Default `TTA_DEFAULTS.n`. */
  n?: number;
  /** Weight of the plain pass: result = (1 - beta) * mean(aug) + beta * plain. Default `TTA_DEFAULTS.beta`. */
  beta?: number;
  /** Elementwise max over the augmented passes, then max with the plain pass, instead of the mean. Default `TTA_DEFAULTS.useMax`. */
  useMax?: boolean;
}

export { TTA_DEFAULTS };

/**
 * Combines probability arrays of equal length. `augmented` holds one array per
 * augmented pass (may be empty: the plain pass is then the result).
 */
export function combineTta(
  augmented: readonly Float32Array[],
  plain: Float32Array,
  options: Pick<TtaOptions, 'beta' | 'useMax'> = {},
): Float32Array {
  const beta = options.beta ?? TTA_DEFAULTS.beta;
  const useMax = options.useMax ?? TTA_DEFAULTS.useMax;
  if (!(beta >= 0 && beta <= 1)) throw new Error(`tta beta: expected a number in [0, 1], got ${beta}`);
  for (const probs of augmented) {
    if (probs.length !== plain.length) {
      throw new Error(`tta: every pass must cover the same items (${probs.length} vs ${plain.length} values)`);
    }
  }
  if (augmented.length === 0) return Float32Array.from(plain);
  const out = new Float32Array(plain.length);
  if (useMax) {
    for (let i = 0; i < out.length; i++) {
      let m = plain[i];
      for (const probs of augmented) m = Math.max(m, probs[i]);
      out[i] = m;
    }
    return out;
  }
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (const probs of augmented) sum += probs[i];
    const mean = sum / augmented.length;
    out[i] = mean + beta * (plain[i] - mean);
  }
  return out;
}

/**
 * Runs TTA over the validation set: one plain pass and `n` augmented passes
 * (the training transforms), each aligned to the plain pass's item order, then combined.
 */
export async function runTta(
  data: DataLoaders,
  model: NativeLearner,
  numClasses: number,
  settings: LoaderSettings,
  options: TtaOptions,
  group?: LoopGroup,
): Promise<TtaResult> {
  const n = options.n ?? TTA_DEFAULTS.n;
  if (!Number.isInteger(n) || n < 0) throw new Error(`tta n: expected an integer >= 0, got ${n}`);
  const shard = group?.shard;
  const plain = await collectProbs(model, data.valid(settings, shard));
  const rowOf = new Map<number, number>();
  plain.indices.forEach((datasetIndex, row) => rowOf.set(datasetIndex, row));
  const augmented: Float32Array[] = [];
  for (let pass = 0; pass < n; pass++) {
    const run = await collectProbs(model, data.validAugmented(settings, pass, shard));
    const aligned = new Float32Array(plain.probs.length);
    run.indices.forEach((datasetIndex, row) => {
      const target = rowOf.get(datasetIndex);
      if (target === undefined) return;
      aligned.set(run.probs.subarray(row * numClasses, (row + 1) * numClasses), target * numClasses);
    });
    augmented.push(aligned);
  }
  const probs = combineTta(augmented, plain.probs, options);
  const items = plain.targets.length;
  let accuracy = accuracyOf(probs, plain.targets, numClasses);
  if (group) {
    // This rank's shard: the accuracy of the whole set from every rank's hits and count.
    const [hits, total] = await group.reduce([items > 0 ? Math.round(accuracy * items) : 0, items]);
    accuracy = total > 0 ? hits / total : NaN;
  }
  return { probs, targets: plain.targets, indices: plain.indices, accuracy };
}

async function collectProbs(model: NativeLearner, loader: AsyncIterable<Batch>): Promise<{ probs: Float32Array; targets: Int32Array; indices: Int32Array }> {
  const probs: Float32Array[] = [];
  const targets: Int32Array[] = [];
  const indices: Int32Array[] = [];
  for await (const batch of loader) {
    probs.push(await model.predict(toNative(batch)));
    targets.push(batch.labels);
    indices.push(batch.indices);
  }
  return { probs: concat(probs, (k) => new Float32Array(k)), targets: concat(targets, (k) => new Int32Array(k)), indices: concat(indices, (k) => new Int32Array(k)) };
}
