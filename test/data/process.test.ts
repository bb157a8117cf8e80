/**
 * Importing torchts changes no process-wide setting; configureProcess() is the opt-in. Each case
 * runs in a fresh node (libuv's pool and sharp's settings are per process), importing lib/index.ts
 * as a user's `import 'torchts'` does.
 */
import { strict as assert } from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { configureProcess } from '../../lib/data/threads';

const ROOT = path.resolve(__dirname, '..', '..');

/** Runs `script` in a fresh node with TypeScript support; returns its last stdout line as JSON. */
function child<T>(script: string, env: NodeJS.ProcessEnv = {}): T {
  const clean = { ...process.env };
  delete clean.UV_THREADPOOL_SIZE;
  const out = spawnSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: ROOT, env: { ...clean, ...env }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(out.status, 0, `${out.stdout}${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop()!) as T;
}

/** sharp's settings: threads per image and the cache's limits (not its current use). */
const SETTINGS = `const settings = (sharp) => { const c = sharp.cache(); return { concurrency: sharp.concurrency(), cache: [c.memory.max, c.files.max, c.items.max] }; };`;

/**
 * Whether libuv's pool has more than one thread: one job blocks a pool thread (opening a FIFO
 * nobody writes yet) and a second job (a stat) either finishes meanwhile or waits behind it.
 */
const POOL_PROBE = `
  const fs = require('fs');
  const probePool = (fifo, done) => {
    fs.open(fifo, 'r', (err, fd) => { if (!err) fs.closeSync(fd); });
    setTimeout(() => {
      let secondJobRan = false;
      fs.stat('.', () => { secondJobRan = true; });
      setTimeout(() => { fs.closeSync(fs.openSync(fifo, 'w')); done(secondJobRan); }, 400);
    }, 50);
  };`;

describe('process-wide settings: none on import, configureProcess() to opt in', function () {
  this.timeout(120_000);
  let tmp: string;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-process-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("importing torchts (and drawing a chart, which loads sharp) leaves UV_THREADPOOL_SIZE and sharp's concurrency and cache as they were", () => {
    const got = child<{ before: unknown; after: unknown; env: string | null }>(`
      ${SETTINGS}
      const sharp = require('sharp');
      sharp.concurrency(3);
      sharp.cache({ memory: 10, files: 5, items: 7 });
      const before = settings(sharp);
      const torchts = require('./lib/index.ts');
      torchts.svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>').then(() => {
        console.log(JSON.stringify({ before, after: settings(sharp), env: process.env.UV_THREADPOOL_SIZE ?? null }));
      });`);
    assert.deepEqual(got.before, { concurrency: 3, cache: [10, 5, 7] });
    assert.deepEqual(got.after, got.before);
    assert.equal(got.env, null);
  });

  it('importing torchts starts no libuv pool job, so configureProcess() after the import still sizes the pool', () => {
    const fifo = path.join(tmp, 'probe.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = (startPoolFirst: boolean) =>
      child<{ settings: unknown; sharp: unknown; env: string; secondJobRan: boolean }>(`
        ${SETTINGS}
        ${POOL_PROBE}
        const go = () => {
          const torchts = require('./lib/index.ts');
          const applied = torchts.configureProcess({ threadPoolSize: 1 });
          probePool(${JSON.stringify(fifo)}, (secondJobRan) => {
            // torchts loads sharp on first use, with the settings asked for.
            torchts.svgToPng('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>').then(() => {
              console.log(JSON.stringify({ settings: applied, sharp: settings(require('sharp')), env: process.env.UV_THREADPOOL_SIZE, secondJobRan }));
            });
          });
        };
        if (${startPoolFirst}) fs.stat('.', go); else go();`);
    const opted = run(false);
    assert.deepEqual(opted.settings, { threadPoolSize: 1, sharpTuned: true });
    assert.equal(opted.env, '1');
    assert.deepEqual(opted.sharp, { concurrency: 1, cache: [0, 0, 0] });
    assert.equal(opted.secondJobRan, false, 'the pool has more than the one thread asked for: something started it before configureProcess()');
    // The probe's control: once a pool job has run, the size is fixed (libuv's default 4).
    assert.equal(run(true).secondJobRan, true, 'the probe does not see the pool size');
  });

  it('configureProcess() keeps a UV_THREADPOOL_SIZE the user set, else uses one thread per core (at least 4)', () => {
    const script = `console.log(JSON.stringify(require('./lib/index.ts').configureProcess({ sharp: false })));`;
    assert.deepEqual(child(script, { UV_THREADPOOL_SIZE: '3' }), { threadPoolSize: 3, sharpTuned: false });
    assert.deepEqual(child(script), { threadPoolSize: Math.max(4, os.availableParallelism()), sharpTuned: false });
  });

  it("configureProcess() sets sharp up at once when the application has loaded sharp already", () => {
    const got = child(`
      ${SETTINGS}
      const sharp = require('sharp');
      require('./lib/index.ts').configureProcess();
      console.log(JSON.stringify(settings(sharp)));`);
    assert.deepEqual(got, { concurrency: 1, cache: [0, 0, 0] });
  });

  it('configureProcess() refuses a pool size that is not an integer from 1 to 1024, before changing anything', () => {
    const before = process.env.UV_THREADPOOL_SIZE;
    for (const bad of [0, 1.5, 1025, Number.NaN]) {
      assert.throws(() => configureProcess({ threadPoolSize: bad }), /threadPoolSize: expected an integer from 1 to 1024/);
    }
    assert.equal(process.env.UV_THREADPOOL_SIZE, before);
  });
});
