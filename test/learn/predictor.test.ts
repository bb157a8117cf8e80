/**
 * Predictor: a tiny exported model (xresnet18 at 16 px, one epoch on 24
 * coloured images) classifying files, encoded bytes and raw pixels, alone
 * and from many concurrent callers sharing native batches.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { imageFolder } from '../../lib/data';
import { decodeTransformed } from '../../lib/data/decode';
import { Learner } from '../../lib/learn';
import { ImageInputError, Predictor, predictionRequest, type Classification, type PredictorStats } from '../../lib/learn/predictor';
import { native } from '../../lib/native';
import { TEST_DEVICE } from '../helpers/device';
import { CLASS_COLOURS, rawImage, removeDir, tempDir, texturedColour, writeClassFolder } from '../helpers/images';

/** Float rounding differs between batch sizes in libtorch's CPU kernels (measured up to 2.4e-7). */
const TOLERANCE = 1e-6;

function assertClose(got: Float32Array, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= TOLERANCE, `${what}: class ${i}: ${got[i]} vs ${want[i]}`);
}

/** Raw decoded pixels of an image file with the channels it stores (sharp's raw output is sRGB unless told). */
async function rawPixelsOf(file: string) {
  const stored = await sharp(file).metadata();
  const decode = stored.channels === 1 ? sharp(file).toColourspace('b-w') : sharp(file);
  const { data, info } = await decode.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as 1 | 3 | 4 };
}

/** Resolves once `predicate` holds, checking after each turn of the event loop. */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** The relations every stats() must satisfy. */
function assertConsistent(stats: PredictorStats): void {
  assert.ok(stats.largestBatch <= stats.images && (stats.batches === 0) === (stats.images === 0), JSON.stringify(stats));
  assert.equal(stats.meanBatchSize, stats.batches ? stats.images / stats.batches : 0);
  assert.equal(stats.imagesPerSecond, stats.busySeconds > 0 ? stats.images / stats.busySeconds : 0);
  assert.equal(stats.wallImagesPerSecond, stats.wallSeconds > 0 ? stats.images / stats.wallSeconds : 0);
  // Batches run one at a time, after the first request: their busy time fits in the wall time.
  assert.ok(stats.busySeconds <= stats.wallSeconds + 1e-9, JSON.stringify(stats));
}

describe('learn/Predictor: serving', function () {
  this.timeout(120_000);
  let dir: string;
  let run: string;
  let model: string;
  /** Images of each kind the test feeds: RGB, RGBA and grayscale PNGs, and a JPEG. */
  const inputs: Record<'rgb' | 'rgba' | 'gray' | 'jpeg', string> = { rgb: '', rgba: '', gray: '', jpeg: '' };
  /** 20 files of the three classes. */
  let many: string[];

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-predictor-');
    many = await writeClassFolder(dir, { classes: { red: 8, green: 8, blue: 8 }, split: 'train' });
    await writeClassFolder(dir, { classes: { red: 3, green: 3, blue: 3 }, split: 'val' });
    const data = await imageFolder(dir, { seed: 0, log: () => undefined });
    const learn = new Learner({ data, arch: 'xresnet18', device: TEST_DEVICE, size: 16, bs: 8, seed: 1 });
    await learn.fit(1, 1e-3);
    run = path.join(dir, 'run');
    fs.mkdirSync(run);
    model = path.join(run, 'last.tsl');
    await learn.export(model);
    learn.dispose();
    many = many.slice(0, 20);
    await writeInputs(path.join(dir, 'inputs'));
  });
  after(() => removeDir(dir));

  /** Odd sizes, so the centre crop and the resize both matter. */
  async function writeInputs(folder: string): Promise<void> {
    fs.mkdirSync(folder);
    const [w, h] = [37, 23];
    const rgb = rawImage(w, h, texturedColour(CLASS_COLOURS[0], 5));
    const rgba = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([...rgb.subarray(i * 3, i * 3 + 3), 255 - (i % 200)], i * 4);
    inputs.rgb = path.join(folder, 'rgb.png');
    inputs.rgba = path.join(folder, 'rgba.png');
    inputs.gray = path.join(folder, 'gray.png');
    inputs.jpeg = path.join(folder, 'photo.jpg');
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(inputs.rgb);
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toFile(inputs.rgba);
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).toColourspace('b-w').png().toFile(inputs.gray);
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(inputs.jpeg);
  }

  /** What the batch path (`predict`) gives for `files`, prepared as the CLI prepares them. */
  async function batchProbs(predictor: Predictor, files: readonly string[]): Promise<Float32Array[]> {
    const size = predictor.size;
    const bytes = size * size * 3;
    const images = new Uint8Array(files.length * bytes);
    for (const [i, file] of files.entries()) images.set((await decodeTransformed(file, predictionRequest(size))).pixels, i * bytes);
    const { probs } = await predictor.predict({ images, n: files.length, h: size, w: size });
    const k = predictor.classes.length;
    return files.map((_, i) => probs.slice(i * k, (i + 1) * k));
  }

  it('loads from a run folder and from the file alike; a folder without a model is refused naming what it lacks', async () => {
    await using fromRun = await Predictor.load(run, { device: TEST_DEVICE });
    await using fromFile = await Predictor.load(model, { device: TEST_DEVICE });
    assert.deepEqual(fromRun.classes, ['blue', 'green', 'red']);
    assert.equal(fromRun.size, 16);
    assert.deepEqual((await fromRun.classify(inputs.rgb)).probs, (await fromFile.classify(inputs.rgb)).probs);
    await assert.rejects(Predictor.load(path.join(dir, 'inputs')), /^Error: Predictor\.load: .*inputs holds no exported model \(expected last\.tsl and last\.tsl\.json/);
    await assert.rejects(Predictor.load(path.join(dir, 'nothing')), /^Error: Predictor\.load: .*nothing does not exist; expected a model file or a run folder$/);
    await assert.rejects(Predictor.load(run, { maxBatch: 0 }), /maxBatch must be an integer in 1\.\.65536, got 0/);
  });

  it('paths, encoded bytes and raw pixels (1, 3 and 4 channels) answer as the batch path on the same prepared pixels', async () => {
    await using predictor = await Predictor.load(run, { device: TEST_DEVICE });
    const files = [inputs.rgb, inputs.rgba, inputs.gray, inputs.jpeg];
    const want = await batchProbs(predictor, files);
    for (const [i, file] of files.entries()) {
      const bytes = fs.readFileSync(file);
      assertClose((await predictor.classify(file)).probs, want[i], `${file} by path`);
      assertClose((await predictor.classify(bytes)).probs, want[i], `${file} as a Buffer`);
      assertClose((await predictor.classify(new Uint8Array(bytes))).probs, want[i], `${file} as a Uint8Array`);
    }
    // Raw pixels of the lossless files take the same pipeline after the decode.
    const channels: number[] = [];
    for (const [i, file] of [inputs.rgb, inputs.rgba, inputs.gray].entries()) {
      const raw = await rawPixelsOf(file);
      channels.push(raw.channels);
      assertClose((await predictor.classify(raw)).probs, want[i], `${file} as raw pixels`);
    }
    assert.deepEqual(channels, [3, 4, 1]);
  });

  it('answers with probabilities, the class and the top K (default 5, capped at the class count)', async () => {
    await using predictor = await Predictor.load(run, { device: TEST_DEVICE });
    const [want] = await batchProbs(predictor, [many[0]]);
    const answer = await predictor.classify(many[0]);
    const order = [0, 1, 2].sort((a, b) => want[b] - want[a]);
    assert.equal(answer.index, order[0]);
    assert.equal(answer.label, predictor.classes[order[0]]);
    assert.deepEqual(answer.top.map((t) => t.index), order, 'all three classes: the default 5 is capped');
    const two = await predictor.classify(many[0], { topK: 2 });
    assert.deepEqual(two.top.map((t) => [t.label, t.index]), order.slice(0, 2).map((c) => [predictor.classes[c], c]));
    assert.ok(two.top.every((t) => t.probability === two.probs[t.index]));
    const list = await predictor.classify([many[0], many[1]], { topK: 1 });
    assert.equal(list.length, 2);
    assertClose(list[0].probs, answer.probs, 'in a list');
    await assert.rejects(predictor.classify(many[0], { topK: 0 }), /topK must be a positive integer, got 0/);
  });

  it('20 concurrent calls share native batches and answer as one-at-a-time calls; a lone call does not wait for a full batch', async () => {
    // A wait far longer than the test: every batch here runs because it is full.
    await using batched = await Predictor.load(run, { device: TEST_DEVICE, maxBatch: 5, maxWaitMs: 600_000 });
    const together = await Promise.all(many.map((file) => batched.classify(file)));
    const stats = batched.stats();
    assert.deepEqual([stats.images, stats.batches, stats.largestBatch, stats.meanBatchSize, stats.queued, stats.failed], [20, 4, 5, 5, 0, 0]);
    assertConsistent(stats);

    // The default wait is bounded: each lone call runs in a batch of its own.
    await using alone = await Predictor.load(run, { device: TEST_DEVICE });
    const oneByOne: Classification[] = [];
    for (const file of many) oneByOne.push(await alone.classify(file));
    assert.deepEqual([alone.stats().batches, alone.stats().meanBatchSize], [20, 1]);
    assertConsistent(alone.stats());
    for (const [i, answer] of together.entries()) {
      assertClose(answer.probs, oneByOne[i].probs, many[i]);
      assert.equal(answer.label, oneByOne[i].label);
    }

    // One call with the 20 as an array: decoded 2 x maxBatch ahead, the same full batches.
    await using listed = await Predictor.load(run, { device: TEST_DEVICE, maxBatch: 5, maxWaitMs: 600_000 });
    const asList = await listed.classify(many);
    assert.deepEqual([listed.stats().images, listed.stats().batches], [20, 4]);
    asList.forEach((answer, i) => assertClose(answer.probs, together[i].probs, `${many[i]} in a list`));
  });

  it('an image that cannot be used rejects only its own call, naming what it got; the others of its batch succeed', async () => {
    await using predictor = await Predictor.load(run, { device: TEST_DEVICE, maxBatch: 4, maxWaitMs: 600_000 });
    const png = fs.readFileSync(many[0]);
    const bad = [
      predictor.classify(Buffer.from('not an image, just text')),
      predictor.classify(png.subarray(0, png.length >> 1)),
      predictor.classify(Buffer.alloc(0)),
      predictor.classify({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }),
      predictor.classify(path.join(dir, 'missing.png')),
    ];
    const good = many.slice(0, 4).map((file) => predictor.classify(file));
    const outcomes = await Promise.allSettled(bad);
    const messages = outcomes.map((o) => {
      assert.equal(o.status, 'rejected');
      assert.ok(o.reason instanceof ImageInputError);
      return o.reason.message;
    });
    assert.match(messages[0], /^Predictor\.classify: a Buffer of 23 bytes beginning "not an image, ju" is not a usable image: not a readable image/);
    assert.match(messages[1], new RegExp(`^Predictor\\.classify: a Buffer of ${png.length >> 1} bytes beginning 89 50 4e 47 .* is not a usable image`));
    assert.match(messages[2], /^Predictor\.classify: an empty Buffer is not a usable image: empty \(0 bytes\)$/);
    assert.match(messages[3], /raw pixels \(4x4, 3 channels\) is not a usable image: raw pixels of 4x4x3 need a Uint8Array of 48 bytes, got 10 bytes$/);
    assert.match(messages[4], /the file .*missing\.png is not a usable image: ENOENT/);
    assert.equal((await Promise.all(good)).length, 4);
    const stats = predictor.stats();
    assert.deepEqual([stats.images, stats.batches, stats.failed], [4, 1, 5]);
    assertConsistent(stats);
  });

  it('dispose rejects the calls still queued or decoding, clearly; later calls say it was disposed', async () => {
    const predictor = await Predictor.load(run, { device: TEST_DEVICE, maxWaitMs: 600_000 });
    const queued = many.slice(0, 3).map((file) => predictor.classify(file));
    await until(() => predictor.stats().queued === 3);
    const decoding = predictor.classify(many[3]);
    await predictor[Symbol.asyncDispose]();
    for (const call of [...queued, decoding]) await assert.rejects(call, /^Error: Predictor: disposed before this image was classified$/);
    await assert.rejects(predictor.classify(many[0]), /^Error: Predictor: used after dispose\(\)$/);
    assert.deepEqual([predictor.stats().images, predictor.stats().queued], [0, 0]);
  });
});
