import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { DecodeError, decodePresized, decodeTransformed, sniffJpeg } from '../../lib/data/decode';
import { Random } from '../../lib/data/random';
import { halvesImage, rawImage, removeDir, tempDir, writeImage } from '../helpers/images';

/** Mean RGB of a region of an HWC image. */
function meanOf(px: Uint8Array, w: number, x0: number, y0: number, x1: number, y1: number): number[] {
  const s = [0, 0, 0];
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++, n++) for (let c = 0; c < 3; c++) s[c] += px[(y * w + x) * 3 + c];
  return s.map((v) => v / n);
}

describe('data/decode', () => {
  let dir: string;
  const orange: [number, number, number] = [240, 128, 32];
  before(() => (dir = tempDir()));
  after(() => removeDir(dir));

  it('reads JPEG, PNG, WebP, TIFF and GIF as 8-bit RGB', async () => {
    const raw = rawImage(20, 10, () => orange);
    for (const format of ['jpeg', 'png', 'webp', 'tiff', 'gif'] as const) {
      const file = path.join(dir, `img.${format}`);
      await writeImage(file, raw, 20, 10, format);
      const d = await decodePresized(file, 8);
      assert.equal(d.pixels.length, 8 * 8 * 3, format);
      assert.equal(d.aspect, 2, format);
      const m = meanOf(d.pixels, 8, 0, 0, 8, 8);
      m.forEach((v, c) => assert.ok(Math.abs(v - orange[c]) < 12, `${format} channel ${c}: ${v}`));
    }
  });

  it('grayscale, CMYK, alpha, 16-bit and animated GIF all come out as 3-channel 8-bit RGB', async () => {
    const raw = rawImage(12, 12, () => orange);
    const base = () => sharp(raw, { raw: { width: 12, height: 12, channels: 3 } });
    const cases: Record<string, Buffer> = {
      gray: await base().toColourspace('b-w').png().toBuffer(),
      cmyk: await base().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer(),
      alpha: await base().ensureAlpha(0.5).png().toBuffer(),
      png16: await base().toColourspace('rgb16').png().toBuffer(),
      animated: await sharp(Buffer.concat([raw, Buffer.alloc(raw.length)]), { raw: { width: 12, height: 24, channels: 3, pageHeight: 12 } } as sharp.SharpOptions)
        .gif()
        .toBuffer(),
    };
    assert.equal((await sharp(cases.gray).metadata()).channels, 1);
    assert.equal((await sharp(cases.png16).metadata()).depth, 'ushort');
    assert.equal((await sharp(cases.animated, { pages: -1 }).metadata()).pages, 2);
    for (const [name, data] of Object.entries(cases)) {
      const file = path.join(dir, `${name}.img`);
      fs.writeFileSync(file, data);
      const d = await decodePresized(file, 6);
      assert.equal(d.pixels.length, 6 * 6 * 3, name);
      assert.equal(d.aspect, 1, `${name}: first frame only`);
      const m = meanOf(d.pixels, 6, 0, 0, 6, 6);
      if (name === 'gray') assert.ok(Math.abs(m[0] - m[1]) < 1 && Math.abs(m[1] - m[2]) < 1, `gray stays gray: ${m}`);
      // CMYK goes through colour profiles both ways: the hue survives, not the exact values.
      else if (name === 'cmyk') assert.ok(m[0] > 200 && m[0] > m[1] + 60 && m[1] > m[2] + 40, `cmyk is still orange: ${m}`);
      else m.forEach((v, c) => assert.ok(Math.abs(v - orange[c]) < 16, `${name} channel ${c}: ${v} vs ${orange[c]}`));
    }
  });

  it('applies EXIF orientation (6 = rotate 90 degrees clockwise)', async () => {
    // Stored 40x20: left red, right blue, top rows green. Orientation 6 shows it 20x40 with
    // the stored top (green) on the right, the stored left (red) on top.
    const file = path.join(dir, 'exif.jpg');
    await sharp(halvesImage(40, 20), { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file);
    const d = await decodeTransformed(file, { transform: { type: 'resize', method: 'squish' }, flip: false, size: 20, rng: null });
    assert.equal(d.aspect, 0.5);
    const top = meanOf(d.pixels, 20, 2, 1, 12, 8);
    const bottom = meanOf(d.pixels, 20, 2, 12, 12, 19);
    const right = meanOf(d.pixels, 20, 17, 2, 20, 18);
    assert.ok(top[0] > 180 && top[2] < 80, `top is red ${top}`);
    assert.ok(bottom[2] > 180 && bottom[0] < 80, `bottom is blue ${bottom}`);
    assert.ok(right[1] > 150, `right is green ${right}`);
  });

  it('the JS JPEG header reader agrees with sharp, and the plain-JPEG fast path gives the full pipeline\'s pixels', async () => {
    const plain = path.join(dir, 'plain.jpg');
    await writeImage(plain, rawImage(50, 30, (x, y) => [x * 5, y * 8, 128]), 50, 30, 'jpeg');
    const rotated = path.join(dir, 'rot8.jpg');
    await sharp(plain).withMetadata({ orientation: 8 }).jpeg().toFile(rotated);
    const gray = path.join(dir, 'gray.jpg');
    await sharp(plain).toColourspace('b-w').jpeg().toFile(gray);
    const progressive = path.join(dir, 'prog.jpg');
    await sharp(plain).jpeg({ progressive: true }).toFile(progressive);
    for (const [file, , components] of [[plain, 1, 3], [rotated, 8, 3], [gray, 1, 1], [progressive, 1, 3]] as const) {
      const h = sniffJpeg(fs.readFileSync(file));
      const m = await sharp(file).metadata();
      assert.ok(h, file);
      assert.deepEqual([h.width, h.height, h.orientation, h.components, h.precision], [m.width, m.height, m.orientation ?? 1, components, 8], file);
    }
    assert.equal(sniffJpeg(Buffer.from('not a jpeg')), null);
    const fast = await decodePresized(plain, 24);
    const full = await decodeTransformed(plain, { transform: { type: 'resize', method: 'squish' }, flip: false, size: 24, rng: null });
    assert.deepEqual(fast.pixels, full.pixels);
    assert.equal(fast.aspect, 50 / 30);
    assert.equal((await decodePresized(rotated, 24)).aspect, 30 / 50, 'orientation 8 swaps the axes');
  });

  it('zero-byte, truncated and non-image files fail with a DecodeError naming the file', async () => {
    const zero = path.join(dir, 'zero.jpg');
    fs.writeFileSync(zero, '');
    const text = path.join(dir, 'text.jpg');
    fs.writeFileSync(text, 'this is not a JPEG');
    const good = path.join(dir, 'good.jpg');
    await writeImage(good, rawImage(64, 64, (x, y) => [x * 4, y * 4, 100]), 64, 64, 'jpeg');
    const truncated = path.join(dir, 'truncated.jpg');
    const bytes = fs.readFileSync(good);
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    for (const file of [zero, text, truncated, path.join(dir, 'missing.jpg')]) {
      await assert.rejects(decodePresized(file, 8), (err: unknown) => err instanceof DecodeError && err.file === file && err.message.startsWith(file));
    }
  });

  describe('per-image sharp transforms', () => {
    let file: string;
    before(async () => {
      file = path.join(dir, 'halves.png');
      await writeImage(file, halvesImage(60, 40), 60, 40, 'png');
    });

    it('each method gives size x size, deterministic for a seed', async () => {
      const transforms = [
        { type: 'resize', method: 'crop' },
        { type: 'resize', method: 'squish' },
        { type: 'resize', method: 'pad', padMode: 'zeros' },
        { type: 'resize', method: 'pad', padMode: 'border' },
        { type: 'resize', method: 'pad', padMode: 'reflection' },
        { type: 'randomResizedCrop' },
      ] as const;
      for (const transform of transforms) {
        const run = (seed: number) => decodeTransformed(file, { transform, flip: true, size: 16, rng: Random.stream(seed, 'item') });
        const a = await run(1);
        const b = await run(1);
        assert.equal(a.pixels.length, 16 * 16 * 3, JSON.stringify(transform));
        assert.deepEqual(a.pixels, b.pixels, `${JSON.stringify(transform)} is deterministic`);
        const valid = await decodeTransformed(file, { transform, flip: true, size: 16, rng: null });
        assert.equal(valid.pixels.length, 16 * 16 * 3);
      }
    });

    it('pad zeros leaves black bars; crop in validation takes the centre square', async () => {
      const pad = await decodeTransformed(file, { transform: { type: 'resize', method: 'pad', padMode: 'zeros' }, flip: false, size: 30, rng: null });
      // 60x40 fits as 30x20 with 5 rows of black above and below.
      assert.deepEqual(meanOf(pad.pixels, 30, 0, 0, 30, 4), [0, 0, 0]);
      assert.deepEqual(meanOf(pad.pixels, 30, 0, 26, 30, 30), [0, 0, 0]);
      const crop = await decodeTransformed(file, { transform: { type: 'resize', method: 'crop' }, flip: false, size: 40, rng: null });
      // Centre 40x40 of 60x40: x in [10, 50): left 20 columns red, right 20 blue (below the green band).
      const left = meanOf(crop.pixels, 40, 0, 12, 18, 40);
      const right = meanOf(crop.pixels, 40, 22, 12, 40, 40);
      assert.ok(left[0] > 240 && left[2] < 15, `left ${left}`);
      assert.ok(right[2] > 240 && right[0] < 15, `right ${right}`);
    });

    it('flip mirrors the image (seen over draws: some flipped, some not)', async () => {
      const seen = new Set<string>();
      for (let seed = 0; seed < 12; seed++) {
        const d = await decodeTransformed(file, { transform: { type: 'resize', method: 'squish' }, flip: true, size: 20, rng: Random.stream(seed) });
        const left = meanOf(d.pixels, 20, 0, 10, 8, 20);
        seen.add(left[0] > 200 ? 'red-left' : left[2] > 200 ? 'blue-left' : 'other');
      }
      assert.deepEqual([...seen].sort(), ['blue-left', 'red-left']);
    });
  });
});
