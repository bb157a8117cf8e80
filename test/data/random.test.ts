import { strict as assert } from 'assert';
import { Random } from '../../lib/data/random';

function meanVar(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return [m, xs.reduce((a, b) => a + (b - m) * (b - m), 0) / xs.length];
}

describe('data/random', () => {
  it('is deterministic per (seed, keys) and differs across keys', () => {
    const a = Random.stream(7, 'train', 3, 'shuffle');
    const b = Random.stream(7, 'train', 3, 'shuffle');
    const c = Random.stream(7, 'train', 4, 'shuffle');
    const d = Random.stream(8, 'train', 3, 'shuffle');
    const draw = (r: Random) => Array.from({ length: 8 }, () => r.nextUint32());
    const da = draw(a);
    assert.deepEqual(da, draw(b));
    assert.notDeepEqual(da, draw(c));
    assert.notDeepEqual(da, draw(d));
  });

  it('uniform draws have the moments of U[lo, hi)', () => {
    const r = Random.stream(1, 'uniform');
    const xs = Array.from({ length: 20000 }, () => r.uniform(2, 6));
    assert.ok(xs.every((x) => x >= 2 && x < 6));
    const [m, v] = meanVar(xs);
    assert.ok(Math.abs(m - 4) < 0.05, `mean ${m}`);
    assert.ok(Math.abs(v - 16 / 12) < 0.05, `var ${v}`);
  });

  it('int covers [lo, hi) evenly and rejects bad bounds', () => {
    const r = Random.stream(2, 'int');
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 10000; i++) counts[r.int(3, 8) - 3]++;
    for (const c of counts) assert.ok(Math.abs(c - 2000) < 200, `counts ${counts}`);
    assert.throws(() => r.int(3, 3), /lo < hi/);
  });

  it('normal draws are N(mean, std^2)', () => {
    const r = Random.stream(3, 'normal');
    const [m, v] = meanVar(Array.from({ length: 20000 }, () => r.normal(1, 2)));
    assert.ok(Math.abs(m - 1) < 0.06, `mean ${m}`);
    assert.ok(Math.abs(v - 4) < 0.15, `var ${v}`);
  });

  it('gamma and beta have the right means and variances (alpha < 1 too)', () => {
    const r = Random.stream(4, 'beta');
    for (const alpha of [0.4, 1, 3]) {
      const xs = Array.from({ length: 20000 }, () => r.beta(alpha));
      assert.ok(xs.every((x) => x >= 0 && x <= 1));
      const [m, v] = meanVar(xs);
      assert.ok(Math.abs(m - 0.5) < 0.015, `beta(${alpha}) mean ${m}`);
      const expected = 1 / (4 * (2 * alpha + 1));
      assert.ok(Math.abs(v - expected) < 0.01, `beta(${alpha}) var ${v} vs ${expected}`);
    }
    const g = Array.from({ length: 20000 }, () => r.gamma(2.5));
    const [gm, gv] = meanVar(g);
    assert.ok(Math.abs(gm - 2.5) < 0.08 && Math.abs(gv - 2.5) < 0.2, `gamma mean ${gm} var ${gv}`);
    assert.throws(() => r.gamma(0), /shape must be > 0/);
  });

  it('permutation is a permutation, seeded, and roughly uniform in position', () => {
    const p = Random.stream(5, 'perm').permutation(100);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    assert.deepEqual(p, Random.stream(5, 'perm').permutation(100));
    const r = Random.stream(6, 'perm');
    let firstIsZero = 0;
    for (let i = 0; i < 4000; i++) if (r.permutation(4)[0] === 0) firstIsZero++;
    assert.ok(Math.abs(firstIsZero - 1000) < 120, `first=0 ${firstIsZero} times`);
  });
});
