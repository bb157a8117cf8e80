/**
 * A technique written as a user's callback, without touching the loop: linear lr warm-up over the
 * first steps (as in large-batch training), scaling what the scheduler decided. Also: the callback
 * order contract, and use after dispose.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { imageFolder, type ImageDataLoaders } from '../../lib/data';
import { native } from '../../lib/native';
import { Learner, OneCycleSchedule, groupLrs, type Callback, type FitControl } from '../../lib/learn';
import { makeFashionMnistFolder } from '../../scripts/fashion-mnist';
import { TEST_DEVICE } from '../helpers/device';

/** The README's example: multiplies the scheduled lrs by (step + 1) / steps for the first `steps` steps. */
class LinearWarmup implements Callback {
  readonly name = 'LinearWarmup';
  constructor(private readonly steps: number) {}

  beforeBatch(control: FitControl): void {
    if (!control.training || !control.hyper || control.step >= this.steps) return;
    const scale = (control.step + 1) / this.steps;
    control.hyper = { lrs: control.hyper.lrs.map((lr) => lr * scale), mom: control.hyper.mom };
  }
}

describe('learn/callbacks: a technique as a user callback', function () {
  this.timeout(300_000);
  let dir: string;
  let data: ImageDataLoaders;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-callback-'));
    await makeFashionMnistFolder(dir, { trainPerClass: 16, validPerClass: 4, seed: 2 });
    data = await imageFolder(dir, { seed: 0, log: () => undefined });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('linear warm-up scales the first steps of the one-cycle schedule, and the steps use it', async () => {
    const learn = new Learner({ data, arch: 'xresnet18', device: TEST_DEVICE, size: 16, bs: 16, seed: 1, callbacks: [new LinearWarmup(4)] });
    const { records } = await learn.fitOneCycle(1, 1e-2);
    const steps = Math.floor(160 / 16);
    const schedule = new OneCycleSchedule(steps, groupLrs(1e-2, learn.groupCount));
    assert.equal(learn.history.lrs.length, steps);
    for (let i = 0; i < steps; i++) {
      const scale = i < 4 ? (i + 1) / 4 : 1;
      const expected = schedule.at(i).lrs.map((lr) => lr * scale);
      learn.history.lrs[i].forEach((lr, g) => assert.ok(Math.abs(lr - expected[g]) < 1e-15, `step ${i} group ${g}: ${lr} vs ${expected[g]}`));
    }
    assert.ok(Number.isFinite(records[0].trainLoss));
    learn.dispose();
  });

  it('callbacks run by order, ties in the order given; a throwing hook names itself', async () => {
    const seen: string[] = [];
    const spy = (name: string, order?: number): Callback => ({ name, order, beforeFit: () => void seen.push(name) });
    const learn = new Learner({ data, arch: 'xresnet18', device: TEST_DEVICE, size: 16, bs: 16, seed: 1 });
    for (const cb of [spy('late', 10), spy('first'), spy('second'), spy('early', -5)]) learn.addCallback(cb);
    learn.addCallback({ name: 'Broken', afterEpoch: () => { throw new Error('boom'); } });
    await assert.rejects(learn.fit(1, 1e-3), /Broken\.afterEpoch: boom/);
    assert.deepEqual(seen, ['early', 'first', 'second', 'late']);
    learn.dispose();
  });

  it('a disposed learner refuses every call with a clear error; dispose twice is harmless', async () => {
    const learn = new Learner({ data, arch: 'xresnet18', device: TEST_DEVICE, size: 16, bs: 16, seed: 1 });
    await learn[Symbol.asyncDispose]();
    learn.dispose();
    await assert.rejects(learn.fit(1), /Learner: used after dispose\(\)/);
    await assert.rejects(learn.validate(), /Learner: used after dispose\(\)/);
    assert.throws(() => learn.groupCount, /Learner: used after dispose\(\)/);
  });
});
