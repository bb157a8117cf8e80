/**
 * Weight files: our checkpoints (save/load round trip, atomic writes, clear errors on
 * foreign files) and torch.save() state_dicts written by PyTorch in every form we
 * accept (zip: OrderedDict, dict, pickle protocol 4; the pre-1.6 legacy stream) or refuse.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { native, NativeBatch, NativeLearner, NativeLearnerOptions } from '../../lib/native';
import { nativeInternals } from '../../lib/native-internal';
import { TSL_READER_PY, makeTempDir, removeTempDir, runPython } from '../helpers/python';
import { TEST_DEVICE } from '../helpers/device';
import { isRoot, skipUnless } from '../helpers/skip';

function learner(arch: string, numClasses: number, seed: number): NativeLearner {
  const options: Partial<NativeLearnerOptions> = { arch, numClasses, device: TEST_DEVICE, seed, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  return new (native().Learner)(options as NativeLearnerOptions);
}

/** A deterministic batch: pixel bytes from a fixed linear congruential sequence. */
function batch(n: number, size: number, numClasses: number, seed: number): NativeBatch {
  const images = new Uint8Array(n * size * size * 3);
  let state = seed >>> 0;
  for (let i = 0; i < images.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    images[i] = state >>> 24;
  }
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % numClasses);
  return { images, n, h: size, w: size, labels };
}

const HYPER = { lrs: [1e-3, 1e-3, 1e-3], mom: 0.9 };

describe('native checkpoints', function () {
  let dir: string;
  before(function () {
    dir = makeTempDir('torchts-ckpt-');
  });
  after(function () {
    removeTempDir(dir);
  });

  describe('save / load', function () {
    it('round trip: a fresh learner loading the file predicts identically', async function () {
      const a = learner('xresnet18', 4, 1);
      const b = learner('xresnet18', 4, 2);
      const file = path.join(dir, 'round-trip.ckpt');
      const probe = batch(3, 32, 4, 99);
      try {
        // Two steps: BN running statistics and optimizer moments are no longer initial values.
        await a.trainStep(batch(4, 32, 4, 1), HYPER);
        await a.trainStep(batch(4, 32, 4, 2), HYPER);
        const before = await a.predict(probe);
        assert.notDeepEqual(await b.predict(probe), before, 'different seeds must start different');
        await a.save(file, JSON.stringify({ epoch: 3, note: 'ü' }));
        const meta = await b.load(file);
        assert.deepEqual(JSON.parse(meta), { epoch: 3, note: 'ü' });
        assert.deepEqual(await b.predict(probe), before);
      } finally {
        a.dispose();
        b.dispose();
      }
    });

    it('writes atomically: no temporary file is left and a second save replaces the first', async function () {
      const model = learner('resnet18', 3, 5);
      const file = path.join(dir, 'atomic.ckpt');
      try {
        await model.save(file, 'first');
        await model.trainStep(batch(2, 32, 3, 3), HYPER);
        await model.save(file, 'second');
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('atomic')), ['atomic.ckpt']);
        assert.equal(await model.load(file), 'second');
      } finally {
        model.dispose();
      }
    });

    it('a failed save names the path and leaves nothing behind', async function () {
      const model = learner('resnet18', 3, 5);
      const file = path.join(dir, 'no-such-folder', 'x.ckpt');
      try {
        await assert.rejects(model.save(file, ''), (err: Error) => err.message.includes(file));
        assert.ok(!fs.existsSync(path.dirname(file)));
      } finally {
        model.dispose();
      }
    });

    it('a full disk rejects the save with a clear error, leaves no temporary file, and the process lives on', async function () {
      skipUnless(this, isRoot(), 'mounting a small tmpfs needs root');
      const disk = path.join(dir, 'tiny-disk');
      fs.mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=300k', 'tmpfs', disk]);
      const model = learner('resnet18', 3, 5);
      try {
        await assert.rejects(model.save(path.join(disk, 'best.tsl'), ''), /best\.tsl: could not write checkpoint: No space left on device \(the disk is full; nothing was replaced\)/);
        assert.deepEqual(fs.readdirSync(disk), []);
        await model.trainStep(batch(2, 32, 3, 3), HYPER); // still usable
      } finally {
        model.dispose();
        execFileSync('umount', [disk]);
      }
    });

    it('refuses files that are not torchts checkpoints, naming the file', async function () {
      const model = learner('resnet18', 3, 5);
      const garbage = path.join(dir, 'garbage.ckpt');
      fs.writeFileSync(garbage, Buffer.from('definitely not a checkpoint'.repeat(40)));
      try {
        await assert.rejects(model.load(path.join(dir, 'missing.ckpt')), /missing\.ckpt/);
        await assert.rejects(model.load(garbage), (err: Error) => /garbage\.ckpt: not a torchts checkpoint/.test(err.message));
      } finally {
        model.dispose();
      }
    });
  });

  describe('format 2: integrity and versions', function () {
    let file: string;
    let whole: Buffer;
    before(async function () {
      const model = learner('resnet18', 3, 5);
      file = path.join(dir, 'integrity.tsl');
      try {
        await model.save(file, '{"note":"x"}');
      } finally {
        model.dispose();
      }
      whole = fs.readFileSync(file);
    });
    const damagedCopy = (name: string, change: (b: Buffer) => Buffer) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, change(Buffer.from(whole)));
      return f;
    };
    const refuses = async (f: string, pattern: RegExp) => {
      const model = learner('resnet18', 3, 5);
      try {
        await assert.rejects(model.load(f), pattern);
      } finally {
        model.dispose();
      }
    };

    it('starts with its magic and version, and reads back in Python (test/helpers/tsl_reader.py)', async function () {
      assert.equal(whole.subarray(0, 8).toString('latin1'), 'TSCKPT\r\n');
      assert.equal(whole.readUInt32LE(8), 2);
      const out = await runPython(`${TSL_READER_PY}\nimport sys\nmeta, tensors = load_tsl(sys.argv[1])\nprint(meta['meta'], len(tensors), tuple(tensors['fc.weight'].shape))\n`, { args: [file] });
      assert.equal(out.trim(), '{"note":"x"} 122 (3, 512)');
    });

    it('refuses a flipped bit in the tensor bytes, naming the tensor', async function () {
      // Bit flips spread over the data section, as a damaged download or disk would leave them.
      for (const at of [0.3, 0.6, 0.95]) {
        await refuses(damagedCopy('flipped.tsl', (b) => ((b[Math.floor(b.length * at)] ^= 0x10), b)), /flipped\.tsl: damaged checkpoint \(tensor '.+' fails its checksum: the file changed after it was written\)/);
      }
    });

    it('refuses a flipped bit in the header, a truncated file and trailing bytes', async function () {
      await refuses(damagedCopy('header.tsl', (b) => ((b[40] ^= 0x01), b)), /header\.tsl: damaged checkpoint \(its header fails its checksum\)/);
      await refuses(damagedCopy('short.tsl', (b) => b.subarray(0, b.length - 100)), /short\.tsl: damaged checkpoint \(.*(truncated|outside the file).*\)/);
      await refuses(damagedCopy('long.tsl', (b) => Buffer.concat([b, Buffer.from('extra')])), /long\.tsl: damaged checkpoint \(it has bytes after its last tensor\)/);
    });

    it('says a file of a newer format was written by a newer torchts', async function () {
      await refuses(damagedCopy('newer.tsl', (b) => (b.writeUInt32LE(3, 8), b)), /newer\.tsl: written by a newer torchts \(checkpoint format 3; this torchts reads formats 1 to 2\): upgrade torchts/);
    });

    it('still reads format 1 (the libtorch archive torchts wrote before)', function () {
      const old = path.join(dir, 'format1.tsl');
      nativeInternals().writeFormat1Checkpoint(old, 'from before');
      assert.deepEqual(nativeInternals().readCheckpoint(old), { meta: { meta: 'from before' }, tensors: ['w', 'n'] });
    });

    it('refuses a damaged format 1 file by its zip CRC-32 before libtorch sees it (libtorch leaks when it refuses one)', function () {
      const old = path.join(dir, 'format1-damaged.tsl');
      nativeInternals().writeFormat1Checkpoint(old, 'from before');
      const bytes = fs.readFileSync(old);
      const at = bytes.indexOf(Buffer.from([0, 0, 0x80, 0x3f])); // 1.0f in the tensor w = [0, 1, ..., 5]
      assert.ok(at > 0);
      bytes[at + 3] ^= 0x01;
      fs.writeFileSync(old, bytes);
      assert.throws(() => nativeInternals().readCheckpoint(old), /format1-damaged\.tsl: not a torchts checkpoint \(.*fails its CRC-32/);
    });

    it('refuses what the fuzzer found libtorch leaking on, by our own checks (test/fixtures/fuzz)', function () {
      const found = path.join(__dirname, '..', 'fixtures', 'fuzz', 'checkpoint-reader-leak-1.tsl');
      assert.throws(() => nativeInternals().readCheckpoint(found), /checkpoint-reader-leak-1\.tsl: not a torchts checkpoint \(not one archive folder\)/);
      // A zip64 end record that says 0 entries while the classic one says 7: miniz believes the first.
      const second = path.join(__dirname, '..', 'fixtures', 'fuzz', 'checkpoint-reader-leak-2.tsl');
      assert.throws(() => nativeInternals().readCheckpoint(second), /broken zip64 archive \(its end record disagrees with the classic one\)/);
      // Zip fields libtorch's reader reads otherwise than ours ("encrypted"): libtorch now reads a
      // copy its own writer made from what ours read, and refuses the content instead.
      const third = path.join(__dirname, '..', 'fixtures', 'fuzz', 'checkpoint-reader-leak-3.tsl');
      assert.throws(() => nativeInternals().readCheckpoint(third), /checkpoint-reader-leak-3\.tsl: not a torchts checkpoint \(.+\)/);
    });

    it('refuses a format 1 file whose pickle nests 150,000 levels before libtorch parses it', async function () {
      const nested = path.join(dir, 'nested.tsl');
      await runPython(
        'import sys, zipfile\nn = 150_000\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n    z.writestr("nested/data.pkl", b"\\x80\\x02" + b"]" * n + b"a" * (n - 1) + b".")\n    z.writestr("nested/version", "3\\n")\n    z.writestr("nested/constants.pkl", b"\\x80\\x02).")\n',
        { args: [nested] },
      );
      assert.throws(() => nativeInternals().readCheckpoint(nested), /nested\.tsl: nested\/data\.pkl: values nested more than 64 levels deep/);
      await refuses(nested, /values nested more than 64 levels deep/);
    });
  });

  describe('torch.save state_dict import', function () {
    const files = {
      ordered: 'resnet18-ordered.pth',
      plainDict: 'resnet18-dict.pth',
      protocol4: 'resnet18-p4.pth',
      legacy: 'resnet18-legacy.pth',
      nested: 'nested.pth',
      script: 'script.pt',
      strided: 'strided.pth',
      headless: 'resnet18-headless.pth',
      compressed: 'compressed.pth',
      cyclic: 'cyclic.pth',
      fuzzLeak: path.join(__dirname, '..', 'fixtures', 'fuzz', 'pth-reader-leak-1.pth'),
    };
    before(async function () {
      await runPython(
        `
import sys, collections, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18()
state = model.state_dict()
assert type(state) is collections.OrderedDict
torch.save(state, f'{out}/${files.ordered}')
torch.save(dict(state), f'{out}/${files.plainDict}')
torch.save(state, f'{out}/${files.protocol4}', pickle_protocol=4)
torch.save(state, f'{out}/${files.legacy}', _use_new_zipfile_serialization=False)
torch.save(collections.OrderedDict((k, v) for k, v in state.items() if not k.startswith('fc.')), f'{out}/${files.headless}')
small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
torch.save({'model': small.state_dict(), 'epoch': 3}, f'{out}/${files.nested}')
torch.jit.save(torch.jit.script(small), f'{out}/${files.script}')
# The same archive re-zipped with deflate: torch.save never compresses, so we refuse it.
import io, zipfile
buffer = io.BytesIO()
torch.save(small.state_dict(), buffer)
with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(f'{out}/${files.compressed}', 'w', zipfile.ZIP_DEFLATED) as dst:
    for name in src.namelist():
        dst.writestr(name, src.read(name))
# A list that holds itself (memoize, get, append): a reference cycle our reader must still free.
with zipfile.ZipFile(f'{out}/${files.cyclic}', 'w') as z:
    z.writestr('cyclic/data.pkl', b'\\x80\\x02]q\\x00h\\x00a.')
    z.writestr('cyclic/version', '3\\n')
# Views into shared storages, with offsets and transposed strides.
big = torch.randn(512, 2000)
strided = collections.OrderedDict(state)
strided['fc.weight'] = big[:, 7:1007].t()
strided['fc.bias'] = big[3, 1000:]
torch.save(strided, f'{out}/${files.strided}')
`,
        { args: [dir] },
      );
    });

    async function predictionAfterLoad(file: string): Promise<Float32Array> {
      const model = learner('resnet18', 1000, 11);
      try {
        await model.loadTorchvision(path.join(dir, file));
        return await model.predict(batch(2, 32, 1000, 4));
      } finally {
        model.dispose();
      }
    }

    it('the OrderedDict, plain dict, pickle protocol 4 and legacy forms load to the same weights', async function () {
      const reference = await predictionAfterLoad(files.ordered);
      assert.deepEqual(await predictionAfterLoad(files.plainDict), reference);
      assert.deepEqual(await predictionAfterLoad(files.protocol4), reference);
      assert.deepEqual(await predictionAfterLoad(files.legacy), reference);
      // Sanity: a learner with its own random weights predicts something else.
      const other = learner('resnet18', 1000, 11);
      try {
        assert.notDeepEqual(await other.predict(batch(2, 32, 1000, 4)), reference);
      } finally {
        other.dispose();
      }
    });

    it('rebuilds strided views of shared storages', async function () {
      // The strided file differs from the ordered one only in the head, so outputs must differ,
      // and Python's own view of the head must match ours: compare through a checkpoint.
      const model = learner('resnet18', 1000, 11);
      const ckpt = path.join(dir, 'strided.ckpt');
      try {
        await model.loadTorchvision(path.join(dir, files.strided));
        await model.save(ckpt, '');
      } finally {
        model.dispose();
      }
      const verdict = await runPython(
        `${TSL_READER_PY}
import sys, torch
ours = load_tsl(sys.argv[1])[1]
theirs = torch.load(sys.argv[2])
bad = [k for k in theirs if not torch.equal(ours[k], theirs[k])]
print('ok' if not bad else 'differ: ' + ', '.join(bad))
`,
        { args: [ckpt, path.join(dir, files.strided)] },
      );
      assert.equal(verdict.trim(), 'ok');
    });

    it('a file without a classifier loads with skipHead, which reports the head as skipped', async function () {
      const model = learner('resnet18', 5, 1);
      try {
        await assert.rejects(model.loadTorchvision(path.join(dir, files.headless)), /missing keys: fc\.bias, fc\.weight/);
        const report = await model.loadTorchvision(path.join(dir, files.headless), { skipHead: true });
        assert.deepEqual([...report.skipped].sort(), ['fc.bias', 'fc.weight']);
        assert.equal(report.loaded.length, 120);
      } finally {
        model.dispose();
      }
    });

    const refusals: Array<[string, keyof typeof files | string, RegExp]> = [
      ['a dict holding more than tensors', 'nested', /entry 'model' is a dict, not a tensor/],
      ['a TorchScript archive', 'script', /TorchScript/],
      ['a zip with compressed entries', 'compressed', /data\.pkl' is compressed \(method 8\)/],
      ['a missing file', 'missing.pth', /missing\.pth: cannot open/],
      // Under scripts/sanitize.sh, LeakSanitizer checks that the cycle is freed.
      ['a pickle whose list holds itself', 'cyclic', /cyclic\.pth: .+/],
      ['what the fuzzer found leaking (test/fixtures/fuzz)', 'fuzzLeak', /pth-reader-leak-1\.pth: unsupported pickle opcode 0x69/],
    ];
    for (const [label, which, pattern] of refusals) {
      it(`refuses ${label} with a clear error`, async function () {
        const file = path.resolve(dir, which in files ? files[which as keyof typeof files] : which);
        const model = learner('resnet18', 1000, 1);
        try {
          await assert.rejects(model.loadTorchvision(file), pattern);
        } finally {
          model.dispose();
        }
      });
    }

    it('never runs code a pickle asks for (os.system, eval): refused, nothing runs', async function () {
      const marker = path.join(dir, 'payload-ran');
      for (const [name, call] of [['system.pth', 'os.system'], ['eval.pth', 'eval']]) {
        const file = path.join(dir, name);
        await runPython(
          `import os, pickle, sys, zipfile\nclass P:\n    def __reduce__(self):\n        return (${call}, (${call === 'eval' ? '"open(sys.argv[2], \\"w\\")"' : '"touch " + sys.argv[2]'},))\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n    z.writestr("archive/data.pkl", pickle.dumps({"w": P()}, protocol=2))\n`,
          { args: [file, marker] },
        );
        const model = learner('resnet18', 3, 5);
        try {
          await assert.rejects(model.loadTorchvision(file), /unsupported object (posix\.system|__builtin__\.eval) \(only state_dicts of tensors are supported\)/);
        } finally {
          model.dispose();
        }
        assert.ok(!fs.existsSync(marker), `${name}: the payload did not run`);
      }
    });

    it('refuses a pickle nested a million levels deep without exhausting the stack', async function () {
      const file = path.join(dir, 'nested.pth');
      // A million empty lists, each appended to the one before: 2 MB that once crashed the freeing.
      await runPython(
        'import sys, zipfile\nn = 1_000_000\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n    z.writestr("archive/data.pkl", b"\\x80\\x02" + b"]" * n + b"a" * (n - 1) + b".")\n',
        { args: [file] },
      );
      const model = learner('resnet18', 3, 5);
      try {
        await assert.rejects(model.loadTorchvision(file), /nested\.pth: expected a state_dict \(a dict of tensors\) but the file holds a list/);
      } finally {
        model.dispose();
      }
    });

    it('refuses truncated, empty and garbage files, and leaves the model unchanged', async function () {
      const whole = fs.readFileSync(path.join(dir, files.ordered));
      const legacy = fs.readFileSync(path.join(dir, files.legacy));
      const cases: Array<[string, Buffer, RegExp]> = [
        ['truncated-start.pth', whole.subarray(0, 100_000), /truncated zip archive/],
        ['truncated-end.pth', whole.subarray(0, whole.length - 1000), /truncated zip archive/],
        ['legacy-truncated-pickle.pth', legacy.subarray(0, 2000), /truncated|larger than the file/],
        ['legacy-truncated-data.pth', legacy.subarray(0, legacy.length - 1000), /truncated file/],
        ['empty.pth', Buffer.alloc(0), /not a zip archive/],
        ['garbage.pth', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + 7) % 256)), /not a zip archive/],
        // torch.save has no checksum, but its zip entries do: a flipped bit in the weights is found.
        ['flipped.pth', Buffer.from(whole).fill(whole[Math.floor(whole.length * 0.5)] ^ 0x04, Math.floor(whole.length * 0.5), Math.floor(whole.length * 0.5) + 1), /fails its CRC-32: the file changed after it was written/],
      ];
      const model = learner('resnet18', 1000, 3);
      try {
        const probe = batch(2, 32, 1000, 8);
        const before = await model.predict(probe);
        for (const [name, bytes, pattern] of cases) {
          const file = path.join(dir, name);
          fs.writeFileSync(file, bytes);
          await assert.rejects(
            model.loadTorchvision(file),
            (err: Error) => err.message.includes(name) && pattern.test(err.message),
            name,
          );
        }
        assert.deepEqual(await model.predict(probe), before);
      } finally {
        model.dispose();
      }
    });

    it('refuses a state_dict of another architecture, listing missing keys, without changing the model', async function () {
      const model = learner('resnet34', 1000, 3);
      try {
        const probe = batch(1, 32, 1000, 8);
        const before = await model.predict(probe);
        // The message names the file that does not fit, then what is missing.
        await assert.rejects(model.loadTorchvision(path.join(dir, files.ordered)), new RegExp(`${files.ordered.replace(/\./g, "\\.")}: state_dict does not fit the model:.*missing keys: layer1\\.2\\.`));
        assert.deepEqual(await model.predict(probe), before);
      } finally {
        model.dispose();
      }
    });
  });
});
