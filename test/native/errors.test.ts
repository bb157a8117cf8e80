/**
 * Bad input gets a JS Error that names the value and what was expected; nothing crashes the
 * process; failures carry the caller's stack; a learner survives a failed call.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { native, type NativeBatch, type NativeLearner } from '../../lib/native';
import { syntheticBatch } from '../helpers/native-batch';
import { TEST_DEVICE } from '../helpers/device';

const C = 4;
const batch = syntheticBatch({ n: 2, size: 16, classes: C, seed: 8 });
const hyper = { lrs: [1e-3], mom: 0.9 };

// Calls with the wrong types on purpose: the binding must answer them with an Error.
type Loose = Record<string, unknown>;
const loose = (value: unknown) => value as NativeBatch;

describe('native errors', function () {
  let learner: NativeLearner;
  const Learner = () => native().Learner;

  before(function () {
    learner = new (Learner())({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, seed: 1 });
  });
  after(function () {
    learner.dispose();
  });

  describe('batches', function () {
    const cases: [string, Loose, RegExp][] = [
      ['wrong byte length', { images: new Uint8Array(100) }, /batch\.images has 100 bytes; expected n\*h\*w\*3 = 2\*16\*16\*3 = 1536/],
      ['images of another type', { images: new Float32Array(1536) }, /batch\.images must be a Uint8Array .*; got a Float32Array/],
      ['a label out of range', { labels: Int32Array.from([0, 4]) }, /batch\.labels\[1\] = 4 is out of range; expected a class index in \[0, 4\)/],
      ['a negative label', { labels: Int32Array.from([-1, 0]) }, /batch\.labels\[0\] = -1 is out of range/],
      ['labels of the wrong length', { labels: Int32Array.from([0]) }, /batch\.labels has 1 entries; expected n = 2/],
      ['labels as a plain array', { labels: [0, 1] }, /batch\.labels must be an Int32Array; got an Array/],
      ['targets of the wrong length', { labels: undefined, targets: new Float32Array(5) }, /batch\.targets has 5 entries; expected n\*numClasses = 8/],
      ['neither labels nor targets', { labels: undefined }, /needs labels \(Int32Array\) or targets \(Float32Array\)/],
      ['a fractional n', { n: 1.5 }, /batch\.n must be a whole number in \[1, \d+\]; got the number 1\.5/],
      ['a permutation index out of range', { mix: { perm: Int32Array.from([0, 2]), lambda: Float32Array.from([1, 1]) } }, /batch\.mix\.perm\[1\] = 2 is out of range; expected a batch index in \[0, 2\)/],
      ['lambda above 1', { mix: { perm: Int32Array.from([1, 0]), lambda: Float32Array.from([1.5, 1]) } }, /batch\.mix\.lambda\[0\] = 1\.5; expected a weight in \[0, 1\]/],
      ['an augment size of 0', { augment: { size: 0 } }, /batch\.augment\.size must be a whole number in \[1, \d+\]; got the number 0/],
      ['NaN in a matrix', { augment: { size: 8, matrices: new Float32Array(18).fill(NaN) } }, /batch\.augment\.matrices\[0\] is not a finite number/],
    ];
    for (const [name, change, message] of cases) {
      it(`rejects ${name}`, async function () {
        await assert.rejects(learner.trainStep(loose({ ...batch, ...change }), hyper), message);
      });
    }

    it('rejects values that are not batches at all', async function () {
      for (const value of [null, undefined, 42, 'batch', [1, 2], new Uint8Array(3)]) {
        await assert.rejects(learner.trainStep(loose(value), hyper), /batch must be an object; got /);
        await assert.rejects(learner.predict(loose(value)), /batch must be an object; got /);
        await assert.rejects(learner.evalStep(loose(value)), /batch must be an object; got /);
      }
    });

    it('rejects mixing outside training', async function () {
      const mix = { perm: Int32Array.from([1, 0]), lambda: Float32Array.from([0.5, 0.5]) };
      await assert.rejects(learner.evalStep({ ...batch, mix }), /batch\.mix is for training only/);
    });
  });

  describe('hyper-parameters and options', function () {
    it('rejects lrs of the wrong count and a momentum out of range', async function () {
      await assert.rejects(learner.trainStep(batch, { lrs: [1, 2], mom: 0.9 }), /hyper\.lrs has 2 entries; expected 1 or one per group \(3\)/);
      await assert.rejects(learner.trainStep(batch, { lrs: [-1], mom: 0.9 }), /hyper\.lrs\[0\] = -1\.0+; expected a finite learning rate >= 0/);
      await assert.rejects(learner.trainStep(batch, { lrs: [1e-3], mom: 1 }), /hyper\.mom = 1\.0+; expected a momentum in \[0, 1\)/);
      await assert.rejects(learner.trainStep(batch, loose(undefined) as never), /hyper must be an object; got undefined/);
    });

    it('names an unknown device and lists the accepted forms', function () {
      assert.throws(
        () => new (Learner())({ arch: 'resnet18', numClasses: C, device: 'gpu' }),
        /unknown device 'gpu'; expected 'auto', 'cpu', 'cuda' or 'cuda:N'/,
      );
    });

    it('says when a CUDA device is not there', function () {
      const count = native().info().cudaDeviceCount;
      assert.throws(
        () => new (Learner())({ arch: 'resnet18', numClasses: C, device: `cuda:${count}` }),
        new RegExp(`device 'cuda:${count}' is not available: this libtorch sees ${count} CUDA device`),
      );
    });

    it('names an unknown architecture and the known ones', function () {
      assert.throws(() => new (Learner())({ arch: 'resnet19', numClasses: C, device: TEST_DEVICE }), /resnet19.*resnet18/);
    });

    it('rejects bad learner options', function () {
      const make = (options: Loose) => () => new (Learner())(options as never);
      assert.throws(make({}), /options\.arch must be a string; got undefined/);
      assert.throws(make({ arch: 'resnet18', numClasses: 0 }), /options\.numClasses must be a whole number in \[1, \d+\]; got the number 0/);
      assert.throws(make({ arch: 'resnet18', numClasses: C, optimizer: 'adam' }), /options\.optimizer is 'adam'; expected 'adamw' or 'sgd'/);
      assert.throws(make({ arch: 'resnet18', numClasses: C, amp: 'fp8' }), /options\.amp is 'fp8'; expected 'none', 'bf16' or 'fp16'/);
      assert.throws(make({ arch: 'resnet18', numClasses: C, mean: [0.5, 0.5, 0.5] }), /mean and std go together; got only mean/);
      assert.throws(make({ arch: 'resnet18', numClasses: C, mean: [0, 0, 0], std: [1, 0, 1] }), /std\[1\] = 0\.0+; expected > 0/);
      assert.throws(() => new (Learner())(undefined as never), /Learner options must be an object; got undefined/);
      assert.throws(() => native().setThreads(0), /n must be a whole number in \[1, 1024\]; got the number 0/);
    });
  });

  describe('failures during a step', function () {
    it('a NaN or infinite loss rejects with the step and what was expected, and the learner stays usable', async function () {
      const l = new (Learner())({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, seed: 2 });
      try {
        const huge = { lrs: [1e30], mom: 0.9 };
        await l.trainStep(batch, huge); // moves every weight by about 1e30
        await assert.rejects(l.trainStep(batch, huge), /loss is (NaN|infinite) at this step \(lrs \[1e\+30\]\); expected a finite loss/);
        // Still usable: it evaluates, and predicting says the weights diverged instead of naming a class.
        const evaluated = await l.evalStep(batch);
        assert.equal(typeof evaluated.loss, 'number');
        await assert.rejects(l.predict(batch), /the model's outputs are not finite \(NaN or infinite\)/);
      } finally {
        l.dispose();
      }
    });

    it("a failure's stack starts at the caller", async function () {
      const error = await learner.trainStep(loose({ ...batch, images: new Uint8Array(1) }), hyper).then(
        () => null,
        (e: Error) => e,
      );
      assert.ok(error instanceof Error);
      assert.match(error.stack ?? '', /errors\.test\.ts/);
    });

    it('load names a missing file', async function () {
      const missing = path.join(__dirname, 'no-such-checkpoint.ckpt');
      await assert.rejects(learner.load(missing), (e: Error) => e.message.includes(missing));
    });
  });

  describe('dispose', function () {
    it('lets the running step finish, rejects queued calls, then refuses new ones', async function () {
      const l = new (Learner())({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, seed: 3 });
      const first = l.trainStep(batch, hyper);
      const queued = [l.trainStep(batch, hyper), l.trainStep(batch, hyper)];
      // Let the worker pick up the first call before disposing.
      await new Promise((resolve) => setTimeout(resolve, 50));
      l.dispose();
      const settled = await Promise.allSettled([first, ...queued]);
      const rejected = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
      assert.ok(rejected.length >= 2, 'the queued calls are rejected');
      for (const r of rejected) assert.match(String(r.reason), /disposed/);
      await assert.rejects(l.trainStep(batch, hyper), /this learner was disposed; create a new one/);
      assert.throws(() => l.freeze(1), /disposed/);
      l.dispose(); // twice is harmless
    });

    it('returns at once: the running step finishes on its own thread, not on the event loop', async function () {
      const l = new (Learner())({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, seed: 3 });
      const big = syntheticBatch({ n: 16, size: 96, classes: C, seed: 5 });
      const started = performance.now();
      const first = l.trainStep(big, hyper);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const before = performance.now();
      l.dispose();
      const blocked = performance.now() - before;
      const { loss } = await first;
      const step = performance.now() - started;
      assert.ok(Number.isFinite(loss), 'the running step still resolves');
      assert.ok(step > 100, `the step took ${step.toFixed(0)} ms: too short to tell`);
      assert.ok(blocked < step / 4, `dispose() blocked the event loop for ${blocked.toFixed(0)} ms of a ${step.toFixed(0)} ms step`);
    });
  });
});
