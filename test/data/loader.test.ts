import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { imageFolder, ImageLoader, type ImageFolderOptions } from '../../lib/data/loader';
import { normalizedBatchStats, IMAGENET_STATS } from '../../lib/data/stats';
import type { Batch, DataLoader } from '../../lib/data/types';
import { CLASS_COLOURS, removeDir, tempDir, writeClassFolder } from '../helpers/images';

async function collect(loader: DataLoader): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

describe('data/loader', () => {
  let dir: string;
  let root: string;
  const quiet: string[] = [];
  const base = (extra: ImageFolderOptions = {}): ImageFolderOptions => ({ home: path.join(dir, 'home'), log: (l) => quiet.push(l), ...extra });

  before(async () => {
    dir = tempDir();
    root = path.join(dir, 'ds');
    await writeClassFolder(root, { split: 'train', classes: { a: 6, b: 6, c: 5 }, width: 48, height: 32, format: 'jpeg' });
    await writeClassFolder(root, { split: 'val', classes: { a: 2, b: 2, c: 1 }, width: 32, height: 40, format: 'png' });
  });
  after(() => removeDir(dir));

  it('training batches: contiguous NHWC at the presize, labels match pixels, dropLast, matrices to the final size', async () => {
    const dls = await imageFolder(root, base());
    assert.deepEqual(dls.classes, ['a', 'b', 'c']);
    const loader = dls.train({ size: 16, bs: 4 }, 0);
    assert.equal(loader.length, 4, '17 items, bs 4, dropLast');
    assert.equal(loader.itemCount, 17);
    const batches = await collect(loader);
    assert.equal(batches.length, 4);
    const seen = new Set<number>();
    for (const b of batches) {
      assert.equal(b.n, 4);
      assert.equal(b.h, 24, 'presize = ceil(16*1.25/8)*8');
      assert.equal(b.w, 24);
      assert.equal(b.images.length, 4 * 24 * 24 * 3);
      assert.equal(b.augment!.size, 16);
      assert.equal(b.augment!.matrices!.length, 4 * 9);
      assert.equal(b.augment!.brightness!.length, 4);
      for (let i = 0; i < b.n; i++) {
        seen.add(b.indices[i]);
        // The image's mean colour is its class colour.
        const px = b.images.subarray(i * 24 * 24 * 3, (i + 1) * 24 * 24 * 3);
        const mean = [0, 1, 2].map((c) => px.filter((_, k) => k % 3 === c).reduce((s, v) => s + v, 0) / (24 * 24));
        const colour = CLASS_COLOURS[b.labels[i]];
        mean.forEach((m, c) => assert.ok(Math.abs(m - colour[c]) < 20, `label ${b.labels[i]} channel ${c}: ${m}`));
        assert.equal(dls.trainItems[b.indices[i]].label, b.labels[i]);
      }
    }
    assert.equal(seen.size, 16, 'no item twice in an epoch');
  });

  it('seeded: same epoch -> same batches; another epoch -> another order; another seed -> another order', async () => {
    const dls = await imageFolder(root, base());
    const a = await collect(dls.train({ size: 16, bs: 4 }, 0));
    const b = await collect(dls.train({ size: 16, bs: 4 }, 0));
    const c = await collect(dls.train({ size: 16, bs: 4 }, 1));
    const other = await imageFolder(root, base({ seed: 7 }));
    const d = await collect(other.train({ size: 16, bs: 4 }, 0));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.map((x) => Array.from(x.indices)), c.map((x) => Array.from(x.indices)));
    assert.notDeepEqual(a.map((x) => Array.from(x.indices)), d.map((x) => Array.from(x.indices)));
  });

  it('validation: in order, no dropLast, centre crop matrices, no lighting; progressive resizing reuses the dataset', async () => {
    const dls = await imageFolder(root, base());
    const v = await collect(dls.valid({ size: 16, bs: 2 }));
    assert.deepEqual(v.map((b) => b.n), [2, 2, 1]);
    assert.deepEqual(v.flatMap((b) => Array.from(b.indices)), [17, 18, 19, 20, 21]);
    const m = Array.from(v[0].augment!.matrices!.subarray(0, 9));
    // 32x40 portrait: all of x, the middle 32/40 of y.
    [1, 0, 0, 0, 0.8, 0, 0, 0, 1].forEach((e, k) => assert.ok(Math.abs(m[k] - e) < 1e-6, `m = ${m}`));
    assert.equal(v[0].augment!.brightness, undefined);
    const bigger = await collect(dls.valid({ size: 32, bs: 5 }));
    assert.equal(bigger[0].h, 40);
    assert.equal(bigger[0].augment!.size, 32);
    const tta0 = await collect(dls.validAugmented({ size: 16, bs: 5 }, 0));
    const tta1 = await collect(dls.validAugmented({ size: 16, bs: 5 }, 1));
    assert.deepEqual(Array.from(tta0[0].indices), [17, 18, 19, 20, 21]);
    assert.notDeepEqual(tta0[0].augment!.matrices, tta1[0].augment!.matrices);
  });

  it('the decoded cache gives identical batches, and later epochs read it instead of decoding', async () => {
    const plain = await imageFolder(root, base());
    const cached = await imageFolder(root, base({ cache: true }));
    const want = await collect(plain.train({ size: 16, bs: 4 }, 3));
    const first = await collect(cached.train({ size: 16, bs: 4 }, 3));
    assert.deepEqual(first, want);
    await cached.close();
    const files = fs.readdirSync(path.join(dir, 'home', 'presized'));
    assert.ok(files.some((f) => f.endsWith('-p24.u8')) && files.some((f) => f.endsWith('-p24.json')), files.join(','));
    // Prove the bytes come from the cache: overwrite the cached pixels of every item with a marker.
    const u8 = path.join(dir, 'home', 'presized', files.find((f) => f.endsWith('-p24.u8'))!);
    const again = await imageFolder(root, base({ cache: true }));
    assert.deepEqual(await collect(again.train({ size: 16, bs: 4 }, 3)), want, 'reopened cache: identical');
    await again.close();
    fs.writeFileSync(u8, Buffer.alloc(fs.statSync(u8).size, 77));
    const marked = await imageFolder(root, base({ cache: true }));
    const batches = await collect(marked.train({ size: 16, bs: 4 }, 3));
    assert.ok(batches.every((b) => b.images.every((v) => v === 77)), 'later epochs skip decoding');
    assert.deepEqual(batches.map((b) => b.augment), want.map((b) => b.augment), 'same augmentation with the cache');
    await marked.close();
  });

  it('normalisation: imagenet preset, explicit, none, and dataset stats (cached) that normalise a batch to about 0 and 1', async () => {
    assert.deepEqual((await imageFolder(root, base())).stats, { mean: IMAGENET_STATS.mean, std: IMAGENET_STATS.std });
    assert.equal((await imageFolder(root, base({ normalize: 'none' }))).stats, null);
    assert.deepEqual((await imageFolder(root, base({ normalize: { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] } }))).stats!.mean, [0.5, 0.5, 0.5]);
    await assert.rejects(imageFolder(root, base({ normalize: { mean: [0.5], std: [1, 1, 1] } })), /mean must be 3 finite numbers/);
    const dls = await imageFolder(root, base({ normalize: 'dataset' }));
    const stats = dls.stats!;
    assert.ok(stats.mean.every((m) => m > 0.1 && m < 0.95), `mean ${stats.mean}`);
    const statsDir = path.join(dir, 'home', 'stats');
    assert.equal(fs.readdirSync(statsDir).length, 1, 'stats cached');
    const batch = (await collect(dls.valid({ size: 16, bs: 64 })))[0];
    const all = (await collect(dls.train({ size: 16, bs: 16 }, 0)))[0];
    const s = normalizedBatchStats(all, stats);
    s.mean.forEach((m) => assert.ok(Math.abs(m) < 0.35, `normalised mean ${s.mean}`));
    s.std.forEach((v) => assert.ok(Math.abs(v - 1) < 0.35, `normalised std ${s.std}`));
    const raw = normalizedBatchStats(batch, null);
    assert.ok(raw.mean.every((m) => m > 0 && m < 1), 'x/255 only');
  });

  it('bad files are skipped with a warning and listed; strict names the file; the process survives', async () => {
    const badRoot = path.join(dir, 'bad');
    await writeClassFolder(badRoot, { classes: { x: 4, y: 4 }, format: 'jpeg' });
    const zero = path.join(badRoot, 'x', 'zero.jpg');
    fs.writeFileSync(zero, '');
    const text = path.join(badRoot, 'y', 'text.png');
    fs.writeFileSync(text, 'hello');
    const good = fs.readFileSync(path.join(badRoot, 'y', 'y_0.jpg'));
    const trunc = path.join(badRoot, 'y', 'trunc.jpg');
    fs.writeFileSync(trunc, good.subarray(0, good.length >> 1));
    const lines: string[] = [];
    const dls = await imageFolder(badRoot, { home: path.join(dir, 'home'), validPct: 0, log: (l) => lines.push(l) });
    assert.equal(dls.trainItems.length, 11);
    const loader = dls.train({ size: 8, bs: 11 }, 0);
    const batches = await collect(loader);
    assert.equal(batches[0].n, 8, 'three skipped, eight kept');
    assert.deepEqual(loader.skipped.map((s) => s.file).sort(), [text, trunc, zero].sort());
    assert.ok(lines.some((l) => l.includes(`skipping ${zero}`)));
    assert.ok(lines.some((l) => l.includes('3 file(s) skipped in this train pass')));
    // Second epoch: still listed, warned once.
    const again = dls.train({ size: 8, bs: 11 }, 1);
    await collect(again);
    assert.equal(again.skipped.length, 3);
    assert.equal(lines.filter((l) => l.includes(`skipping ${zero}`)).length, 1);
    const strict = await imageFolder(badRoot, { validPct: 0, strict: true, log: () => undefined });
    await assert.rejects(collect(strict.train({ size: 8, bs: 11 }, 0)), /strict: cannot use .*(zero|text|trunc)/);
  });

  it('prefetch bounds the work ahead of a stalled consumer', async () => {
    const dls = await imageFolder(root, base({ prefetch: 2 }));
    const loader = dls.train({ size: 16, bs: 2 }, 0) as ImageLoader;
    assert.equal(loader.length, 8);
    const it = loader[Symbol.asyncIterator]();
    await it.next();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(loader.batchesStarted, 3, 'the consumed batch plus two ahead');
    await it.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(loader.batchesStarted, 4);
    await it.return!(undefined);
  });

  it('per-image sharp transforms: final-size bytes, deterministic, device does the rest', async () => {
    const dls = await imageFolder(root, base({ itemTransforms: 'sharp' }));
    const a = await collect(dls.train({ size: 12, bs: 4 }, 0));
    const b = await collect(dls.train({ size: 12, bs: 4 }, 0));
    assert.deepEqual(a, b);
    assert.equal(a[0].h, 12);
    assert.equal(a[0].images.length, 4 * 12 * 12 * 3);
    const m = a[0].augment!.matrices!;
    for (let i = 0; i < 4; i++) assert.ok(m[i * 9] > 0, 'no device flip: the CPU flips');
    const v = await collect(dls.valid({ size: 12, bs: 8 }));
    assert.deepEqual(v[0].augment, { size: 12 });
    await assert.rejects(imageFolder(root, base({ itemTransforms: 'sharp', prefetch: 0 })), /prefetch must be a positive integer/);
    assert.throws(() => dls.train({ size: 0, bs: 4 }, 0), /size must be an integer/);
  });
});
