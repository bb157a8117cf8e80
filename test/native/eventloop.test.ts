/**
 * Steps never block the event loop: they run on the learner's own native thread, so timers
 * keep firing during a long step, libuv's thread pool (which sharp needs) stays free, and an
 * idle learner does not keep the process alive.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { native, type NativeLearner } from '../../lib/native';
import { syntheticBatch } from '../helpers/native-batch';
import { TEST_DEVICE } from '../helpers/device';

const root = path.resolve(__dirname, '..', '..');

// Runs a TypeScript snippet in a fresh node process (so it can set UV_THREADPOOL_SIZE first).
function child(
  script: string,
  env: Record<string, string> = {},
  nodeFlags: string[] = [],
): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [...nodeFlags, '--require', 'tsx/cjs', '-e', script], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

describe('native Learner and the event loop', function () {
  let learner: NativeLearner;
  const batch = syntheticBatch({ n: 16, size: 96, classes: 4, seed: 2 });

  before(function () {
    learner = new (native().Learner)({ arch: 'resnet18', numClasses: 4, device: TEST_DEVICE, seed: 1 });
  });
  after(function () {
    learner.dispose();
  });

  it('timers keep firing while a long step runs', async function () {
    const ticks: number[] = [];
    const started = performance.now();
    const timer = setInterval(() => ticks.push(performance.now()), 5);
    try {
      await learner.trainStep(batch, { lrs: [1e-3], mom: 0.9 });
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    const marks = [started, ...ticks, performance.now()];
    const longestGap = Math.max(...marks.slice(1).map((t, i) => t - marks[i]));
    assert.ok(elapsed > 100, `the step took ${elapsed.toFixed(0)} ms: too short to tell`);
    assert.ok(ticks.length >= 10, `only ${ticks.length} ticks in ${elapsed.toFixed(0)} ms`);
    assert.ok(longestGap < elapsed / 2, `the event loop stalled for ${longestGap.toFixed(0)} ms of ${elapsed.toFixed(0)} ms`);
  });

  it('a step does not hold a libuv pool thread (UV_THREADPOOL_SIZE=1)', function () {
    const result = child(
      `
      const crypto = require('crypto');
      const { native } = require('./lib/native');
      const { syntheticBatch } = require('./test/helpers/native-batch');
      const learner = new (native().Learner)({ arch: 'resnet18', numClasses: 4, device: ${JSON.stringify(TEST_DEVICE)} });
      const batch = syntheticBatch({ n: 16, size: 96, classes: 4 });
      const order = [];
      const step = learner.trainStep(batch, { lrs: [1e-3], mom: 0.9 }).then(() => order.push('step'));
      // Runs on the pool's only thread; it would wait for the step if the step held that thread.
      crypto.pbkdf2('secret', 'salt', 1, 32, 'sha256', () => order.push('pool'));
      step.then(() => { console.log(JSON.stringify(order)); learner.dispose(); });
      `,
      { UV_THREADPOOL_SIZE: '1' },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop() ?? '[]'), ['pool', 'step']);
  });

  it('threads default to the CPUs the process may use; TORCHTS_THREADS and setThreads override', function () {
    const script = `
      const { native } = require('./lib/native');
      const os = require('os');
      const before = native().info().threads;
      native().setThreads(1);
      console.log(JSON.stringify({ before, after: native().info().threads, cpus: os.availableParallelism() }));
    `;
    const plain = child(script, { TORCHTS_THREADS: '' });
    assert.equal(plain.status, 0, plain.stderr);
    const a = JSON.parse(plain.stdout.trim().split('\n').pop() ?? '{}');
    assert.equal(a.before, a.cpus);
    assert.equal(a.after, 1);
    const set = child(script, { TORCHTS_THREADS: '3' });
    assert.equal(JSON.parse(set.stdout.trim().split('\n').pop() ?? '{}').before, 3);
  });

  it('process.exit() during a step exits cleanly (the step finishes before libtorch is torn down)', function () {
    const result = child(`
      const { native } = require('./lib/native');
      const { syntheticBatch } = require('./test/helpers/native-batch');
      const learner = new (native().Learner)({ arch: 'resnet18', numClasses: 4, device: ${JSON.stringify(TEST_DEVICE)} });
      learner.trainStep(syntheticBatch({ n: 16, size: 96, classes: 4 }), { lrs: [1e-3], mom: 0.9 });
      setTimeout(() => process.exit(3), 100);
    `);
    assert.equal(result.signal ?? null, null, 'the child died from a signal');
    assert.equal(result.status, 3, result.stderr);
  });

  it('garbage collection of a learner stops its thread (no dispose needed)', function () {
    const result = child(
      `
      const fs = require('fs');
      const { native } = require('./lib/native');
      const { syntheticBatch } = require('./test/helpers/native-batch');
      const threads = () => fs.readdirSync('/proc/self/task').length;
      const batch = syntheticBatch({ n: 2, size: 16, classes: 4 });
      const hyper = { lrs: [1e-3], mom: 0.9 };
      const make = () => new (native().Learner)({ arch: 'resnet18', numClasses: 4, device: ${JSON.stringify(TEST_DEVICE)} });
      async function trainThree() {
        const learners = [make(), make(), make()];
        await Promise.all(learners.map((l) => l.trainStep(batch, hyper)));
        return threads();
      }
      (async () => {
        const warm = make();
        await warm.trainStep(batch, hyper); // libtorch's own thread pools start here
        warm.dispose(); // returns at once; its thread ends on its own just after
        await new Promise((resolve) => setTimeout(resolve, 100));
        const baseline = threads();
        const busy = await trainThree();
        for (let i = 0; i < 10; i++) {
          global.gc();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        console.log(JSON.stringify({ baseline, busy, after: threads() }));
      })();
      `,
      {},
      ['--expose-gc'],
    );
    assert.equal(result.status, 0, result.stderr);
    const counts = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}');
    assert.ok(counts.busy >= counts.baseline + 3, `threads ${JSON.stringify(counts)}`);
    assert.equal(counts.after, counts.baseline, `threads ${JSON.stringify(counts)}`);
  });

  it('info() reports the libtorch build', function () {
    const info = native().info();
    assert.match(info.torchVersion, /^\d+\.\d+/);
    assert.equal(typeof info.cudaAvailable, 'boolean');
    assert.ok(info.cudaDeviceCount >= 0 && info.threads >= 1);
    assert.ok(Array.isArray(info.features));
  });

  it('an idle learner does not keep the process alive', function () {
    const started = Date.now();
    const result = child(`
      const { native } = require('./lib/native');
      const { syntheticBatch } = require('./test/helpers/native-batch');
      const learner = new (native().Learner)({ arch: 'resnet18', numClasses: 4, device: ${JSON.stringify(TEST_DEVICE)} });
      learner.trainStep(syntheticBatch({ n: 2, size: 16, classes: 4 }), { lrs: [1e-3], mom: 0.9 })
        .then((r) => console.log('loss', r.loss));
    `);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /loss \d/);
    assert.ok(Date.now() - started < 60_000);
  });
});
