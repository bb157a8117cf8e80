import { strict as assert } from 'assert';
import {
  AUG_DEFAULTS,
  NO_AUGMENT,
  applyMatrix,
  referenceWarp,
  resolveAugment,
  sampleAugment,
  squareCropBox,
  warpMatrix,
  zoomMatrix,
} from '../../lib/data/augment';
import { Random } from '../../lib/data/random';

const close = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol;

function matrixOf(m: Float32Array, i: number): number[] {
  return Array.from(m.subarray(i * 9, i * 9 + 9));
}

describe('data/augment sampler', () => {
  it('is the identity when every probability is 0 and the crop is the whole image', () => {
    const aug = resolveAugment({ pAffine: 0, pLighting: 0, doFlip: false });
    const out = sampleAugment({ rng: Random.stream(1, 'a'), aspects: [1, 1, 1], size: 32, crop: 'none', augment: aug });
    for (let i = 0; i < 3; i++) {
      matrixOf(out.matrices!, i).forEach((v, k) => assert.ok(close(v, [1, 0, 0, 0, 1, 0, 0, 0, 1][k]), `m[${k}] = ${v}`));
      assert.equal(out.brightness![i], 0);
      assert.equal(out.contrast![i], 1);
    }
    assert.equal(out.size, 32);
  });

  it('validation (no augment, centre crop) of a square image is the identity and has no lighting', () => {
    const out = sampleAugment({ rng: Random.stream(1, 'v'), aspects: [1], size: 16, crop: 'centre', augment: null });
    assert.deepEqual(matrixOf(out.matrices!, 0), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.equal(out.brightness, undefined);
    assert.equal(out.contrast, undefined);
  });

  it('centre crop of a 2:1 image takes the middle half of x and all of y', () => {
    const out = sampleAugment({ rng: Random.stream(1, 'c'), aspects: [2], size: 8, crop: 'centre', augment: null });
    const m = matrixOf(out.matrices!, 0);
    assert.deepEqual(applyMatrix(m, -1, -1), [-0.5, -1]);
    assert.deepEqual(applyMatrix(m, 1, 1), [0.5, 1]);
    // Portrait 1:2: all of x, middle half of y.
    const p = matrixOf(sampleAugment({ rng: Random.stream(1, 'c'), aspects: [0.5], size: 8, crop: 'centre', augment: null }).matrices!, 0);
    assert.deepEqual(applyMatrix(p, 1, 1), [1, 0.5]);
  });

  it('random square crops stay inside the image and cover the short side', () => {
    const rng = Random.stream(2, 'sq');
    let minCx = 1;
    let maxCx = -1;
    for (let i = 0; i < 2000; i++) {
      const b = squareCropBox(4 / 3, rng);
      assert.ok(close(b.hw, 0.75) && b.hh === 1 && b.cy === 0);
      assert.ok(b.cx - b.hw >= -1 - 1e-12 && b.cx + b.hw <= 1 + 1e-12);
      minCx = Math.min(minCx, b.cx);
      maxCx = Math.max(maxCx, b.cx);
    }
    assert.ok(minCx < -0.24 && maxCx > 0.24, `positions span [${minCx}, ${maxCx}]`);
  });

  it('a flip-only augmentation flips x with p = 0.5 and leaves y alone', () => {
    const aug = resolveAugment({ ...NO_AUGMENT, doFlip: true });
    const n = 4000;
    const out = sampleAugment({ rng: Random.stream(3, 'f'), aspects: new Array(n).fill(1), size: 8, crop: 'none', augment: aug });
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      const m = matrixOf(out.matrices!, i);
      if (close(m[0], -1)) {
        flipped++;
        assert.deepEqual(m, [-1, 0, 0, 0, 1, 0, 0, 0, 1]);
      } else {
        assert.deepEqual(m, [1, 0, 0, 0, 1, 0, 0, 0, 1]);
      }
    }
    assert.ok(Math.abs(flipped / n - 0.5) < 0.03, `flip rate ${flipped / n}`);
  });

  it('random-resized crop boxes keep the area in [minScale, 1] of the square and the ratio', () => {
    const aug = resolveAugment({ ...NO_AUGMENT, minScale: 0.35 });
    const n = 3000;
    const out = sampleAugment({ rng: Random.stream(4, 'rrc'), aspects: new Array(n).fill(1.5), size: 8, crop: 'random', augment: aug });
    let minArea = 1;
    for (let i = 0; i < n; i++) {
      const m = matrixOf(out.matrices!, i);
      // Box half-extents in input coords: x is relative to width (square side = h = w/1.5).
      const hwSquare = m[0] * 1.5;
      const hh = m[4];
      assert.ok(close(hwSquare, hh, 1e-5), 'ratio (1, 1) keeps the crop square in pixels');
      const area = hh * hh;
      assert.ok(area >= 0.35 - 1e-6 && area <= 1 + 1e-6, `area ${area}`);
      minArea = Math.min(minArea, area);
      assert.ok(Math.abs(m[2]) + m[0] <= 1 + 1e-6 && Math.abs(m[5]) + m[4] <= 1 + 1e-6, 'box inside the image');
    }
    assert.ok(minArea < 0.4, `smallest area ${minArea}`);
  });

  it('draws each transform with its probability (defaults: flip 0.5, affine 0.75, lighting 0.75)', () => {
    const n = 6000;
    const counts = { rotate: 0, zoom: 0, brightness: 0, contrast: 0 };
    const rot = resolveAugment({ ...NO_AUGMENT, maxRotate: 10, pAffine: 0.75 });
    const o1 = sampleAugment({ rng: Random.stream(5, 'p'), aspects: new Array(n).fill(1), size: 8, crop: 'none', augment: rot });
    for (let i = 0; i < n; i++) {
      const m = matrixOf(o1.matrices!, i);
      if (!close(m[1], 0, 1e-7)) {
        counts.rotate++;
        const deg = (Math.atan2(m[3], m[0]) * 180) / Math.PI;
        assert.ok(Math.abs(deg) <= 10 + 1e-4, `rotation ${deg}`);
      }
    }
    const zoom = resolveAugment({ ...NO_AUGMENT, maxZoom: 1.1 });
    const o2 = sampleAugment({ rng: Random.stream(5, 'z'), aspects: new Array(n).fill(1), size: 8, crop: 'none', augment: zoom });
    for (let i = 0; i < n; i++) {
      const s = o2.matrices![i * 9];
      if (!close(s, 1, 1e-7)) {
        counts.zoom++;
        assert.ok(s >= 1 / 1.1 - 1e-6 && s <= 1, `zoom scale ${s}`);
        assert.ok(Math.abs(o2.matrices![i * 9 + 2]) <= 1 - s + 1e-6, 'zoom keeps the view inside');
      }
    }
    const light = resolveAugment({ ...NO_AUGMENT, maxLighting: 0.2 });
    const o3 = sampleAugment({ rng: Random.stream(5, 'l'), aspects: new Array(n).fill(1), size: 8, crop: 'none', augment: light });
    const lim = Math.log(0.6 / 0.4);
    for (let i = 0; i < n; i++) {
      const b = o3.brightness![i];
      const c = o3.contrast![i];
      if (b !== 0) counts.brightness++;
      if (c !== 1) counts.contrast++;
      assert.ok(Math.abs(b) <= lim + 1e-6, `brightness ${b}`);
      assert.ok(c >= 0.8 - 1e-6 && c <= 1 / 0.8 + 1e-6, `contrast ${c}`);
    }
    for (const [k, v] of Object.entries(counts)) assert.ok(Math.abs(v / n - 0.75) < 0.025, `${k} rate ${v / n}`);
    assert.equal(AUG_DEFAULTS.pAffine, 0.75);
    assert.equal(AUG_DEFAULTS.maxRotate, 10);
    assert.equal(AUG_DEFAULTS.maxZoom, 1.1);
    assert.equal(AUG_DEFAULTS.maxWarp, 0.2);
    assert.equal(AUG_DEFAULTS.maxLighting, 0.2);
  });

  it('warp maps the corners to the keystone corners, and no warp is the identity', () => {
    const m = warpMatrix(0.1, -0.15);
    for (const [x, y] of [[-1, -1], [-1, 1], [1, -1], [1, 1]]) {
      const [u, v] = applyMatrix(m, x, y);
      assert.ok(close(u, x * (1 - y * -0.15)) && close(v, y * (1 - x * 0.1)), `corner (${x}, ${y}) -> (${u}, ${v})`);
    }
    assert.deepEqual(warpMatrix(0, 0), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
    assert.deepEqual(applyMatrix(zoomMatrix(2, 1, 0), 1, 1), [1, 0]);
  });

  it('is deterministic for a seed and changes with it', () => {
    const aug = resolveAugment({ minScale: 0.5 });
    const args = { aspects: [1.2, 0.8, 1, 1.5], size: 24, crop: 'random' as const, augment: aug };
    const a = sampleAugment({ ...args, rng: Random.stream(9, 'train', 0, 'batch', 0) });
    const b = sampleAugment({ ...args, rng: Random.stream(9, 'train', 0, 'batch', 0) });
    const c = sampleAugment({ ...args, rng: Random.stream(9, 'train', 1, 'batch', 0) });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.matrices, c.matrices);
  });

  it('rejects bad options naming the value', () => {
    assert.throws(() => resolveAugment({ pAffine: 1.5 }), /pAffine must be a number in \[0, 1\], got 1.5/);
    assert.throws(() => resolveAugment({ ratio: [2, 1] }), /ratio/);
    assert.throws(() => sampleAugment({ rng: Random.stream(1), aspects: [0], size: 8, crop: 'centre', augment: null }), /aspect ratio must be > 0/);
  });

  describe('geometry on a known image (CPU reference sampler)', () => {
    // 4 x 4 image, pixel value = 10*x + y in every channel... distinct per position.
    const w = 4;
    const h = 4;
    const img = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = 10 * x + y + c;

    it('identity reproduces the image; flip mirrors x', () => {
      const id = referenceWarp(img, h, w, [1, 0, 0, 0, 1, 0, 0, 0, 1], 4);
      assert.deepEqual(Array.from(id), Array.from(img));
      const flip = referenceWarp(img, h, w, [-1, 0, 0, 0, 1, 0, 0, 0, 1], 4);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.equal(flip[(y * w + x) * 3], img[(y * w + (w - 1 - x)) * 3]);
    });

    it('a box matrix crops: the right half of x, resampled at its pixel centres', () => {
      // Box x in [0, 1] -> source x in [1.5, 3] pixels; 3 output samples at 1.5, 2.25, 3.
      const out = referenceWarp(img, h, w, [0.5, 0, 0.5, 0, 1, 0, 0, 0, 1], 3);
      const row0 = [0, 1, 2].map((x) => out[x * 3]);
      assert.deepEqual(row0.map((v) => Math.round(v * 100) / 100), [15, 22.5, 30]);
    });

    it('reflection padding mirrors about the edge pixel centres', () => {
      // Shift by a full width: x' = x + 2 (normalised) reflects back onto the image mirrored.
      const out = referenceWarp(img, h, w, [1, 0, 2, 0, 1, 0, 0, 0, 1], 4);
      for (let x = 0; x < w; x++) assert.equal(out[x * 3], img[(w - 1 - x) * 3]);
    });
  });
});
