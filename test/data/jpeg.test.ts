import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { DecodeError, decodePresized, decodePresizedInto, nativeJpegDecoder } from '../../lib/data/decode';
import { imageFolder } from '../../lib/data/loader';
import { removeDir, tempDir } from '../helpers/images';

// Real photographs that python3-skimage ships (the same source as scripts/bench/data.ts).
const SKIMAGE = '/usr/lib/python3/dist-packages/skimage/data';
const PHOTOS = ['astronaut.png', 'chelsea.png', 'coffee.png'].map((f) => path.join(SKIMAGE, f)).filter((f) => fs.existsSync(f));

interface JpegCase {
  name: string;
  width: number;
  height: number;
  make: (s: sharp.Sharp) => sharp.Sharp;
}

// Sizes at presize 160: Imagenette-160 landscape and portrait (no DCT scaling), larger ones
// (DCT scaling 1/2, 1/4, 1/8 as sharp's shrink-on-load picks it), one smaller than presize
// (enlarging); baseline, progressive, 4:4:4, grayscale.
const CASES: JpegCase[] = [
  { name: '213x160 baseline', width: 213, height: 160, make: (s) => s.jpeg({ quality: 90 }) },
  { name: '160x240 progressive', width: 160, height: 240, make: (s) => s.jpeg({ quality: 90, progressive: true }) },
  { name: '500x375 4:4:4', width: 500, height: 375, make: (s) => s.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }) },
  { name: '640x480 baseline', width: 640, height: 480, make: (s) => s.jpeg({ quality: 85 }) },
  { name: '90x70 upscaled', width: 90, height: 70, make: (s) => s.jpeg({ quality: 90 }) },
  { name: '300x200 grayscale', width: 300, height: 200, make: (s) => s.toColourspace('b-w').jpeg({ quality: 90 }) },
  // DCT shrink-on-load by 8, 4 and 2 with odd sides (the partial last block is dropped).
  { name: '1501x1353 shrink 8', width: 1501, height: 1353, make: (s) => s.jpeg({ quality: 90 }) },
  { name: '1403x1067 shrink 4', width: 1403, height: 1067, make: (s) => s.jpeg({ quality: 90 }) },
  { name: '551x501 shrink 2', width: 551, height: 501, make: (s) => s.jpeg({ quality: 90 }) },
];

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

describe('data/jpeg (native libjpeg-turbo decode)', function () {
  let dir: string;
  const files: string[] = [];
  const hasNative = nativeJpegDecoder() !== null;

  before(async function () {
    dir = tempDir('torchts-jpeg-');
    assert.ok(PHOTOS.length > 0, `no skimage photographs in ${SKIMAGE} (install python3-skimage)`);
    for (const [k, c] of CASES.entries()) {
      const file = path.join(dir, `${k}.jpg`);
      await c.make(sharp(PHOTOS[k % PHOTOS.length]).resize(c.width, c.height, { fit: 'fill' }).removeAlpha()).toFile(file);
      files.push(file);
    }
  });
  after(() => removeDir(dir));

  beforeEach(function () {
    // The project's test machines have libjpeg-dev (.ci/run installs it), so an addon built
    // without the native decoder is a build problem to report, not a case to pass over.
    // (Users without libjpeg still get a working loader: it falls back to sharp.)
    if (!hasNative && this.currentTest?.title.startsWith('native:')) {
      throw new Error('the addon was built without the native JPEG decoder: install libjpeg-dev and run `npm run build:native`');
    }
  });

  it('native: matches the sharp presized output (mean |diff| < 0.5/255 per image, the issue allows 3/255) and the aspect ratio', async () => {
    const presize = 160;
    const bytes = presize * presize * 3;
    const out = new Uint8Array(files.length * bytes);
    const results = await decodePresizedInto(files, presize, out, files.map((_, i) => i * bytes), { jpeg: 'native' });
    const diffs: string[] = [];
    for (const [i, file] of files.entries()) {
      const r = results[i];
      assert.ok(!(r instanceof DecodeError), `${CASES[i].name}: ${r instanceof DecodeError ? r.reason : ''}`);
      const ref = await decodePresized(file, presize);
      assert.equal(r.aspect, ref.aspect, CASES[i].name);
      const diff = meanAbsDiff(out.subarray(i * bytes, (i + 1) * bytes), ref.pixels);
      diffs.push(`${CASES[i].name} ${diff.toFixed(3)}`);
      assert.ok(diff < 0.5, `${CASES[i].name}: mean |native - sharp| = ${diff.toFixed(3)} (of 255)`);
    }
    console.log(`      mean |native - sharp| per image (of 255): ${diffs.join(', ')}`);
  });

  it('native: a grayscale JPEG comes out as three equal channels', async () => {
    const gray = files[CASES.findIndex((c) => c.name.includes('grayscale'))];
    const out = new Uint8Array(32 * 32 * 3);
    const [error] = await nativeJpegDecoder()!([fs.readFileSync(gray)], 32, out, [0]);
    assert.equal(error, null);
    for (let p = 0; p < out.length; p += 3) assert.ok(out[p] === out[p + 1] && out[p] === out[p + 2], `pixel ${p / 3}`);
  });

  it('native: writes only its own slots, at the given offsets', async () => {
    const side = 24;
    const bytes = side * side * 3;
    const out = new Uint8Array(4 * bytes).fill(0xab);
    const data = [fs.readFileSync(files[0]), fs.readFileSync(files[1])];
    assert.deepEqual(await nativeJpegDecoder()!(data, side, out, [3 * bytes, 1 * bytes], 2), [null, null]);
    for (const slot of [0, 2]) assert.ok(out.subarray(slot * bytes, (slot + 1) * bytes).every((v) => v === 0xab), `slot ${slot} untouched`);
    const alone = new Uint8Array(bytes);
    await nativeJpegDecoder()!([data[0]], side, alone, [0]);
    assert.deepEqual(out.subarray(3 * bytes, 4 * bytes), alone, 'slot 3 holds the first image, decoded the same alone');
  });

  it('native: buffers transferred or overwritten while decoding are never read or written by the pool', async () => {
    const decode = nativeJpegDecoder()!;
    const side = 32;
    const bytes = side * side * 3;
    const data = Array.from({ length: 24 }, (_, i) => new Uint8Array(fs.readFileSync(files[i % 4])));
    const expected = new Uint8Array(data.length * bytes);
    await decode(data, side, expected, data.map((_, i) => i * bytes), 1);
    // Inputs: each call decodes what the inputs held when it was made.
    const inputs = data.map((d) => d.slice());
    const out = new Uint8Array(data.length * bytes);
    const pending = decode(inputs, side, out, data.map((_, i) => i * bytes), 1);
    for (const input of inputs) new Uint8Array(structuredClone(input.buffer, { transfer: [input.buffer] })).fill(0);
    assert.deepEqual(await pending, data.map(() => null));
    assert.deepEqual(out, expected);
    // out: a transferred output buffer is not written to; the call says why.
    const lost = new Uint8Array(data.length * bytes);
    const refused = decode(data, side, lost, data.map((_, i) => i * bytes), 1);
    const moved = new Uint8Array(structuredClone(lost.buffer, { transfer: [lost.buffer] })).fill(7);
    await assert.rejects(refused, /out was detached/);
    assert.ok(moved.every((v) => v === 7), 'the moved buffer was not written');
  });

  it('native: truncated, corrupt, CMYK and non-JPEG inputs are refused with a reason, never a crash', async () => {
    const good = fs.readFileSync(files[0]);
    const cmyk = await sharp(PHOTOS[0]).resize(64, 48).toColourspace('cmyk').jpeg().toBuffer();
    const inputs = [good.subarray(0, Math.floor(good.length / 2)), Buffer.from('not a jpeg at all'), cmyk, good.subarray(0, 2), good];
    const out = new Uint8Array(inputs.length * 16 * 16 * 3);
    const errors = await nativeJpegDecoder()!(inputs, 16, out, inputs.map((_, i) => i * 16 * 16 * 3), 3);
    assert.match(String(errors[0]), /libjpeg: .*(premature|end)/i, 'truncated: libjpeg warning counts as an error');
    assert.match(String(errors[1]), /not a JPEG/);
    assert.match(String(errors[2]), /CMYK/);
    assert.match(String(errors[3]), /not a JPEG/);
    assert.equal(errors[4], null);
    // Seeded random byte damage after the headers: either decoded or refused, the process survives.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const damaged = Array.from({ length: 40 }, () => {
      const copy = Buffer.from(good);
      for (let k = 0; k < 8; k++) copy[200 + Math.floor(rand() * (copy.length - 200))] = Math.floor(rand() * 256);
      return copy;
    });
    const results = await nativeJpegDecoder()!(damaged, 16, new Uint8Array(40 * 768), damaged.map((_, i) => i * 768), 2);
    assert.equal(results.length, 40);
    assert.ok(results.every((r) => r === null || typeof r === 'string'));
  });

  it('native: a header claiming 65500 x 65500 pixels is refused before anything is allocated', async () => {
    const good = Buffer.from(fs.readFileSync(files[0]));
    // Rewrite the frame header's height and width (SOF0/SOF2: FFC0/FFC2, length, precision, H, W).
    let sof = -1;
    for (let i = 2; i + 8 < good.length && sof < 0; i++) if (good[i] === 0xff && (good[i + 1] === 0xc0 || good[i + 1] === 0xc2)) sof = i;
    assert.ok(sof > 0, 'a frame header');
    good.writeUInt16BE(65500, sof + 5);
    good.writeUInt16BE(65500, sof + 7);
    const before = process.memoryUsage().rss;
    const errors = await nativeJpegDecoder()!([good], 16, new Uint8Array(16 * 16 * 3), [0], 1);
    assert.match(String(errors[0]), /image too large for the native decoder/);
    // Decoding at 1/8 scale would have needed 8187 x 8187 x 3 bytes (about 200 MB).
    assert.ok(process.memoryUsage().rss - before < 64 * 2 ** 20, `rss grew by ${((process.memoryUsage().rss - before) / 2 ** 20).toFixed(0)} MB`);
  });

  it('native: bad arguments throw errors that name the argument', () => {
    const decode = nativeJpegDecoder()!;
    const buf = fs.readFileSync(files[0]);
    assert.throws(() => decode([buf], 16, new Uint8Array(16 * 16 * 3), [1]), /offsets\[0\] must be an integer in \[0, 0\]/);
    assert.throws(() => decode([buf], 0, new Uint8Array(3), [0]), /presize must be an integer/);
    assert.throws(() => decode(['x' as unknown as Uint8Array], 4, new Uint8Array(48), [0]), /inputs\[0\] must be a Uint8Array/);
    assert.throws(() => decode([buf], 4, new Float32Array(48) as unknown as Uint8Array, [0]), /out must be a Uint8Array/);
    assert.throws(() => decode([buf, buf], 4, new Uint8Array(96), [0]), /offsets has 1 entries, expected one per input \(2\)/);
    // Overlapping offsets: more pixels than memory holds is an error, not an abort.
    const many = Array.from({ length: 4096 }, () => new Uint8Array(4));
    const side = 8192;
    assert.throws(() => decode(many, side, new Uint8Array(side * side * 3), many.map(() => 0)), /out of memory for 4096 images/);
  });

  it('native: decodes on the pool without blocking the event loop', async () => {
    const data = Array.from({ length: 48 }, (_, i) => fs.readFileSync(files[i % 4]));
    const bytes = 160 * 160 * 3;
    let ticks = 0;
    let done = false;
    const tick = () => {
      if (done) return;
      ticks++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const errors = await nativeJpegDecoder()!(data, 160, new Uint8Array(48 * bytes), data.map((_, i) => i * bytes), 2);
    done = true;
    assert.ok(errors.every((e) => e === null));
    assert.ok(ticks > 1, `the event loop turned ${ticks} times while 48 images decoded`);
  });

  it('EXIF-rotated, CMYK and truncated JPEGs take the sharp path: same pixels as decodePresized, truncated is a DecodeError', async () => {
    const rotated = path.join(dir, 'rotated.jpg');
    await sharp(PHOTOS[0]).resize(120, 80).withMetadata({ orientation: 6 }).jpeg().toFile(rotated);
    const cmyk = path.join(dir, 'cmyk.jpg');
    await sharp(PHOTOS[1]).resize(120, 80).toColourspace('cmyk').jpeg().toFile(cmyk);
    const truncated = path.join(dir, 'truncated.jpg');
    const whole = fs.readFileSync(files[0]);
    fs.writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const side = 40;
    const bytes = side * side * 3;
    const out = new Uint8Array(3 * bytes);
    const results = await decodePresizedInto([rotated, cmyk, truncated], side, out, [0, bytes, 2 * bytes]);
    for (const [i, file] of [rotated, cmyk].entries()) {
      const ref = await decodePresized(file, side);
      const r = results[i];
      assert.ok(!(r instanceof DecodeError));
      assert.equal(r.aspect, ref.aspect);
      assert.deepEqual(out.subarray(i * bytes, (i + 1) * bytes), new Uint8Array(ref.pixels), path.basename(file));
    }
    assert.equal((results[0] as { aspect: number }).aspect, 80 / 120, 'orientation 6 swaps the axes');
    assert.ok(results[2] instanceof DecodeError && results[2].file === truncated, 'truncated file is bad');
  });

  it("the loader gives the same batches with jpegDecoder 'auto' as with 'sharp' (up to the small pixel difference) and skips a truncated file with one warning", async () => {
    const root = path.join(dir, 'folder');
    for (const [i, file] of files.entries()) {
      const dest = path.join(root, 'train', `c${i % 2}`, `img${i}.jpg`);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(file, dest);
    }
    const whole = fs.readFileSync(files[0]);
    fs.writeFileSync(path.join(root, 'train', 'c1', 'truncated.jpg'), whole.subarray(0, Math.floor(whole.length * 0.5)));
    const run = async (jpegDecoder: 'auto' | 'sharp') => {
      const logs: string[] = [];
      const dls = await imageFolder(root, { validPct: 0, normalize: 'none', jpegDecoder, log: (l) => logs.push(l) });
      const loader = dls.train({ size: 32, bs: files.length + 1 }, 0);
      const batches = [];
      for await (const b of loader) batches.push(b);
      await dls.close();
      return { batches, logs, skipped: loader.skipped };
    };
    const auto = await run('auto');
    const viaSharp = await run('sharp');
    assert.equal(auto.batches.length, 1);
    const [a, s] = [auto.batches[0], viaSharp.batches[0]];
    assert.equal(a.n, files.length, 'the truncated file is dropped from the batch');
    assert.deepEqual(a.indices, s.indices);
    assert.deepEqual(a.labels, s.labels);
    assert.deepEqual(a.augment?.matrices, s.augment?.matrices, 'same aspect ratios -> same crop matrices');
    const diff = meanAbsDiff(a.images, s.images);
    assert.ok(hasNative ? diff > 0 && diff < 0.5 : diff === 0, `mean |auto - sharp| over the batch: ${diff.toFixed(3)}`);
    for (const r of [auto, viaSharp]) {
      assert.equal(r.skipped.length, 1);
      assert.match(r.skipped[0].file, /truncated\.jpg$/);
      assert.equal(r.logs.filter((l) => l.startsWith('torchts: skipping') && l.includes('truncated.jpg')).length, 1);
    }
  });
});
