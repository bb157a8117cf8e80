import { strict as assert } from 'assert';
import { Random } from '../../lib/data/random';
import { cutBox, mixedTargets, sampleCutMix, sampleMixup } from '../../lib/learn';

describe('learn/mixup: mixup and cutmix draws', () => {
  it('mixup: one lambda per sample in [0.5, 1], a permutation of the batch', () => {
    const rng = Random.stream(1, 'test');
    const mix = sampleMixup(256, 0.4, rng);
    assert.equal(mix.lambda.length, 256);
    assert.equal(mix.box, undefined);
    for (const l of mix.lambda) assert.ok(l >= 0.5 && l <= 1, `lambda ${l}`);
    assert.deepEqual([...mix.perm].sort((a, b) => a - b), Array.from({ length: 256 }, (_, i) => i));
    // Beta(0.4, 0.4) folded at 0.5 has mean ~0.84 and puts real mass near 0.5 and near 1.
    const mean = mix.lambda.reduce((s, l) => s + l, 0) / 256;
    assert.ok(mean > 0.78 && mean < 0.9, `mean lambda ${mean}`);
    assert.ok(mix.lambda.some((l) => l < 0.6) && mix.lambda.some((l) => l > 0.99));
  });

  it('the same stream gives the same draws', () => {
    const a = sampleMixup(32, 0.4, Random.stream(7, 'mix', 0, 3));
    const b = sampleMixup(32, 0.4, Random.stream(7, 'mix', 0, 3));
    const c = sampleMixup(32, 0.4, Random.stream(7, 'mix', 0, 4));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.lambda, c.lambda);
  });

  it('cutmix: a box inside the image and lambda corrected to 1 - box area / image area', () => {
    const rng = Random.stream(3, 'cutmix');
    for (let k = 0; k < 200; k++) {
      const mix = sampleCutMix(16, 32, 24, 1.0, rng);
      assert.ok(mix.box);
      const [x0, y0, x1, y1] = mix.box;
      assert.ok(0 <= x0 && x0 <= x1 && x1 <= 32 && 0 <= y0 && y0 <= y1 && y1 <= 24, `box ${mix.box}`);
      const expected = 1 - ((x1 - x0) * (y1 - y0)) / (32 * 24);
      for (const l of mix.lambda) assert.ok(Math.abs(l - expected) < 1e-6);
    }
  });

  it('cutmix: an uncut box has the drawn side lengths; a clamped one shrinks and raises lambda', () => {
    // Centre in the middle: nothing clamps, sides are round(W sqrt(1 - lambda)) (even here).
    const centre = { uniform: () => 0.5 };
    const inside = cutBox(40, 40, 0.75, centre); // sqrt(0.25) * 40 = 20
    assert.deepEqual(inside.box, [10, 10, 30, 30]);
    assert.ok(Math.abs(inside.lambda - 0.75) < 1e-12);
    // Centre at the corner: three quarters of the box fall outside.
    const corner = cutBox(40, 40, 0.75, { uniform: () => 0 });
    assert.deepEqual(corner.box, [0, 0, 10, 10]);
    assert.ok(Math.abs(corner.lambda - (1 - 100 / 1600)) < 1e-12);
  });

  it('mixed targets: each row sums to 1, weights go to the sample and its partner, smoothing kept', () => {
    const labels = Int32Array.from([0, 1, 2, 1]);
    const mix = sampleMixup(4, 0.4, Random.stream(5, 'targets'));
    for (const smoothing of [0, 0.1]) {
      const t = mixedTargets(labels, mix, 3, smoothing);
      for (let i = 0; i < 4; i++) {
        const row = [...t.subarray(i * 3, i * 3 + 3)];
        assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-6, `row ${i} sums to ${row}`);
        if (smoothing === 0 && labels[i] !== labels[mix.perm[i]]) {
          assert.ok(Math.abs(row[labels[i]] - mix.lambda[i]) < 1e-6);
          assert.ok(Math.abs(row[labels[mix.perm[i]]] - (1 - mix.lambda[i])) < 1e-6);
        }
        if (smoothing > 0) for (const v of row) assert.ok(v >= 0.1 / 3 - 1e-7);
      }
    }
  });

  it('rejects a non-positive alpha', () => {
    assert.throws(() => sampleMixup(4, 0, Random.stream(1)), /alpha/);
  });
});
