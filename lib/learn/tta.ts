/**
 * Test-time augmentation: combining the probabilities of n augmented passes
 * and one plain pass over the validation set, as the reference does.
 */

/** How TTA passes are combined. */
export interface TtaOptions {
  /** Augmented passes (training transforms). Default 4. */
  n?: number;
  /** Weight of the plain pass: result = (1 - beta) * mean(aug) + beta * plain. Default 0.25. */
  beta?: number;
  /** Elementwise max over the augmented passes, then max with the plain pass, instead of the mean. Default false. */
  useMax?: boolean;
}

export const TTA_DEFAULTS: Required<TtaOptions> = { n: 4, beta: 0.25, useMax: false };

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
