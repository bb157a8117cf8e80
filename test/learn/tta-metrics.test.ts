import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  accuracy,
  combineTta,
  confusionMatrix,
  CsvLogger,
  EarlyStopping,
  errorRate,
  SmoothedLoss,
  topK,
  valley,
  type EpochRecord,
  type FitState,
} from '../../lib/learn';

const approx = (a: ArrayLike<number>, b: number[]) =>
  assert.ok(b.every((v, i) => Math.abs(a[i] - v) < 1e-6), `${Array.from(a)} != ${b}`);

describe('learn/tta: combining passes', () => {
  const plain = Float32Array.from([0.6, 0.4, 0.2, 0.8]);
  const aug = [Float32Array.from([0.2, 0.8, 0.4, 0.6]), Float32Array.from([0.4, 0.6, 0.0, 1.0])];

  it('mean mode: (1 - beta) * mean(augmented) + beta * plain', () => {
    // mean(aug) = [0.3, 0.7, 0.2, 0.8]
    approx(combineTta(aug, plain, { beta: 0.25 }), [0.375, 0.625, 0.2, 0.8]);
    approx(combineTta(aug, plain, { beta: 0 }), [0.3, 0.7, 0.2, 0.8]);
    approx(combineTta(aug, plain, { beta: 1 }), [0.6, 0.4, 0.2, 0.8]);
    approx(combineTta(aug, plain), [0.375, 0.625, 0.2, 0.8]); // default beta 0.25
  });

  it('max mode: elementwise max of the augmented passes and the plain one', () => {
    approx(combineTta(aug, plain, { useMax: true }), [0.6, 0.8, 0.4, 1.0]);
  });

  it('refuses passes of different lengths', () => {
    assert.throws(() => combineTta([new Float32Array(2)], plain), /same items/);
  });
});

describe('learn/metrics', () => {
  const probs = Float32Array.from([0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.5, 0.4, 0.1]);
  const labels = Int32Array.from([0, 1, 1]);

  it('accuracy, error rate and top-k accumulate over batches', () => {
    const [acc, err, top2] = [accuracy(), errorRate(), topK(2)];
    for (const m of [acc, err, top2]) {
      m.reset();
      m.accumulate({ n: 3, labels, correct: 1, probs, numClasses: 3 });
      m.accumulate({ n: 1, labels: Int32Array.from([2]), correct: 1, probs: Float32Array.from([0, 0, 1]), numClasses: 3 });
    }
    assert.equal(acc.value(), 0.5);
    assert.equal(err.value(), 0.5);
    assert.equal(top2.value(), 1); // sample 1 (label 1) is second; sample 2 (label 1) is second
    assert.equal(topK(1).needsProbs, true);
    assert.deepEqual(confusionMatrix(probs, labels, 3), [
      [1, 0, 0],
      [1, 0, 1],
      [0, 0, 0],
    ]);
  });
});

describe('learn/lr-find pure parts', () => {
  it('smoothed loss is the debiased exponential average', () => {
    const s = new SmoothedLoss(0.98);
    assert.equal(s.add(2), 2); // debiasing makes the first value exact
    const v = s.add(4);
    const avg = 0.98 * (0.02 * 2) + 0.02 * 4;
    assert.ok(Math.abs(v - avg / (1 - 0.98 ** 2)) < 1e-12);
  });

  it('valley picks a point along the longest decreasing run (start + len/3 + len/6, as the reference computes it)', () => {
    const lrs = Array.from({ length: 100 }, (_, i) => 1e-7 * Math.pow(1e8, i / 100));
    // Flat noise, a long descent from 20 to 70, then divergence.
    const losses = lrs.map((_, i) => (i < 20 ? 2.3 + (i % 2) * 0.01 : i <= 70 ? 2.3 - (i - 20) * 0.03 : 0.8 + (i - 70) * 0.2));
    const { index, lr } = valley(lrs, losses, 100);
    // The run is 2.31 (i = 11, inside the trimmed range) then i = 20..70: 52 points ending at 70,
    // so start = 70 - 52 = 18 and the pick is 18 + floor(52/3) + floor(52/6) = 43, mid-descent.
    assert.equal(index, 43);
    assert.equal(lr, lrs[index]);
  });
});

describe('learn/callbacks', () => {
  const record = (epoch: number, validLoss: number, accuracy: number): EpochRecord => ({
    epoch, phase: 0, size: 32, bs: 8, trainLoss: 1, validLoss, metrics: { accuracy }, seconds: 1.5,
  });
  const fakeState = (records: EpochRecord[]) => {
    const state = { records, stopped: undefined as string | undefined } as unknown as FitState & { stopped?: string };
    (state as { stop: (r: string) => void }).stop = (r: string) => ((state as { stopped?: string }).stopped = r);
    return state;
  };

  it('early stopping stops after `patience` epochs without improvement', () => {
    const cb = new EarlyStopping({ monitor: 'accuracy', patience: 2 });
    const state = fakeState([]);
    cb.beforeFit();
    for (const [i, acc] of [0.5, 0.6, 0.55, 0.58].entries()) {
      state.record = record(i, 1, acc);
      cb.afterEpoch(state);
      if (i < 3) assert.equal((state as { stopped?: string }).stopped, undefined);
    }
    assert.match((state as { stopped?: string }).stopped ?? '', /accuracy/);
  });

  it('CSV logger writes a header and a line per epoch', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-csv-')), 'log.csv');
    const cb = new CsvLogger(file);
    cb.beforeFit();
    const state = fakeState([]);
    state.record = record(0, 0.9, 0.7);
    await cb.afterEpoch(state);
    state.record = record(1, 0.8, 0.75);
    await cb.afterEpoch(state);
    assert.deepEqual(fs.readFileSync(file, 'utf8').trim().split('\n'), [
      'epoch,phase,size,train_loss,valid_loss,accuracy,time',
      '0,0,32,1,0.9,0.7,1.500',
      '1,0,32,1,0.8,0.75,1.500',
    ]);
  });
});
