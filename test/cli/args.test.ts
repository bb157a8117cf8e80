import { strict as assert } from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  UsageError,
  deviceName,
  existingFile,
  existingFolder,
  integerIn,
  optionalAmount,
  parsePhases,
  positiveNumber,
  timestampedRunFolder,
  writableFolder,
} from '../../lib/cli/args';
import { rewordYargs } from '../../lib/cli/main';
import { FolderLockedError, LOCK_FILE, lockFolder } from '../../lib/util/run-lock';

describe('cli/args', () => {
  it('parses progressive-resizing phases with optional batch sizes', () => {
    assert.deepEqual(parsePhases('64:2,128:3'), [{ size: 64, epochs: 2 }, { size: 128, epochs: 3 }]);
    assert.deepEqual(parsePhases(' 64:2@128 , 128:3@64'), [{ size: 64, epochs: 2, bs: 128 }, { size: 128, epochs: 3, bs: 64 }]);
  });

  it('rejects phases that do not parse or are out of range, naming the item', () => {
    const bad: [string, RegExp][] = [
      ['', /empty value/],
      ['64', /"64" does not parse/],
      ['64:2,', /"" does not parse/],
      ['64:2:3', /"64:2:3" does not parse/],
      ['-64:2', /"-64:2" does not parse/],
      ['4:2', /size 4 in "4:2" is out of range; expected 8\.\.4096/],
      ['64:0', /epochs in "64:0" must be at least 1/],
      ['64:2@0', /batch size in "64:2@0" must be at least 1/],
      ['64:1.5', /does not parse/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => parsePhases(text), (err: Error) => err instanceof UsageError && err.message.startsWith('--phases: ') && message.test(err.message), text);
    }
  });

  it('checks numbers and words', () => {
    assert.equal(positiveNumber('lr', '3e-3'), 3e-3);
    assert.throws(() => positiveNumber('lr', '-1'), /--lr: expected a number > 0, got "-1"/);
    assert.throws(() => positiveNumber('lr', 'fast'), /--lr: expected a number > 0/);
    assert.equal(integerIn('size', '128', 8, 4096), 128);
    assert.throws(() => integerIn('size', '0', 8, 4096), /--size: expected an integer in 8\.\.4096, got "0"/);
    assert.throws(() => integerIn('bs', '2.5', 1), /--bs: expected an integer >= 1/);
    assert.equal(optionalAmount('mixup', undefined, 0.4), undefined);
    assert.equal(optionalAmount('mixup', '', 0.4), 0.4);
    assert.equal(optionalAmount('mixup', '0.2', 0.4), 0.2);
    assert.throws(() => optionalAmount('mixup', '0', 0.4), /--mixup: expected nothing or a number > 0/);
    assert.equal(optionalAmount('label-smoothing', '0', 0.1, 1, true), 0);
    assert.throws(() => optionalAmount('label-smoothing', '1', 0.1, 1, true), /in \[0, 1\)/);
    assert.equal(deviceName('cuda:1'), 'cuda:1');
    assert.throws(() => deviceName('gpu'), /--device: expected auto, cpu, cuda or cuda:N, got "gpu"/);
  });

  describe('paths', () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-args-'))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('tells files and folders apart', () => {
      const file = path.join(dir, 'f.txt');
      fs.writeFileSync(file, 'x');
      assert.equal(existingFile('pretrained', file), file);
      assert.throws(() => existingFile('pretrained', dir), /--pretrained: .* is a folder; expected a file/);
      assert.throws(() => existingFolder('data', file), /--data: .* is a file; expected a folder/);
      assert.throws(() => existingFolder('data', path.join(dir, 'nope')), /does not exist; expected a folder/);
    });

    it('locks a run folder: a live holder refuses the second run, a dead one is taken over', () => {
      const lock = path.join(dir, LOCK_FILE);
      fs.writeFileSync(lock, String(process.ppid)); // a live process
      assert.throws(() => lockFolder(dir), (err: Error) => err instanceof FolderLockedError && err.message.includes(`in use by another run (process ${process.ppid})`));
      const dead = spawnSync(process.execPath, ['-e', '0']).pid;
      fs.writeFileSync(lock, String(dead));
      const release = lockFolder(dir);
      assert.equal(fs.readFileSync(lock, 'utf8'), String(process.pid));
      release();
      assert.ok(!fs.existsSync(lock));
    });

    it('says what a path is when it is neither a file nor a folder (a FIFO would block a read forever)', () => {
      const fifo = path.join(dir, 'pipe.pth');
      execFileSync('mkfifo', [fifo]);
      assert.throws(() => existingFile('pretrained', fifo), /--pretrained: .*pipe\.pth is a named pipe \(FIFO\); expected a file/);
      assert.throws(() => existingFile('pretrained', '/dev/null'), /--pretrained: \/dev\/null is a character device; expected a file/);
    });

    it('accepts a new folder below a writable one without creating it', () => {
      const target = path.join(dir, 'a', 'b');
      assert.equal(writableFolder('out', target), target);
      assert.ok(!fs.existsSync(path.join(dir, 'a')));
      fs.writeFileSync(path.join(dir, 'file'), '');
      assert.throws(() => writableFolder('out', path.join(dir, 'file')), /--out: .* is a file; expected a writable folder/);
      assert.throws(() => writableFolder('out', path.join(dir, 'file', 'x')), /cannot be created \(.*file is a file\)/);
    });

    it('names a fresh timestamped run folder without creating it', () => {
      const now = new Date('2026-12-01T10:20:30Z');
      const first = timestampedRunFolder(dir, now);
      assert.equal(first, path.join(dir, '2026-12-01T10-20-30'));
      fs.mkdirSync(first);
      assert.equal(timestampedRunFolder(dir, now), `${first}-2`);
    });
  });

  it("rewords yargs' messages as flag: expectation", () => {
    assert.equal(rewordYargs('Unknown argument: bogus', ['--bogus']), '--bogus: unknown option; run torchts-train --help for the options');
    assert.equal(rewordYargs('Unknown argument: trian', ['trian']), 'trian: unknown command; expected one of train, predict, evaluate, export, lr-find, experiments');
    assert.equal(rewordYargs('Not enough non-option arguments: got 0, need at least 1'), 'IMAGES: missing; expected at least one image file');
  });
});
