/** Mixup and CutMix: draws each training batch's mix. */
import { Random } from '../../data/random';
import { sampleMix, type MixOptions } from '../mixup';
import type { Callback, FitControl } from '../types';

/** Sets `control.mix` for training batches; the draws come from a stream per (seed, data epoch, batch). */
export class MixCallback implements Callback {
  readonly name = 'MixCallback';
  readonly order = -10;

  constructor(
    private readonly options: MixOptions,
    private readonly seed: number,
  ) {}

  beforeBatch(control: FitControl): void {
    const batch = control.batch;
    if (!control.training || !batch) return;
    // A stream per batch: resuming mid-epoch draws the same mixes.
    // Each rank of a group draws its own mixes.
    const keys = control.worldSize > 1 ? [control.batchIndex, 'rank', control.rank] : [control.batchIndex];
    const rng = Random.stream(this.seed, 'mix', control.dataEpoch, ...keys);
    control.mix = sampleMix(this.options, batch.n, batch.augment?.size ?? batch.w, batch.augment?.size ?? batch.h, rng);
  }
}
