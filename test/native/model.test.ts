/**
 * The native Model, the Learner's inference half: it loads a Learner's checkpoint and predicts
 * what the Learner predicts, and it has no training surface (no optimizer to allocate). The
 * addon itself states no defaults: without native()'s filling, every option is required.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, type NativeLearner, type NativeModel } from '../../lib/native';
import { addonBinding } from '../../lib/native-internal';
import { maxAbsDiff, syntheticBatch } from '../helpers/native-batch';
import { TEST_DEVICE } from '../helpers/device';

const C = 4;
const stats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const batch = syntheticBatch({ n: 6, size: 32, classes: C, seed: 31 });
const hyper = { lrs: [1e-3], mom: 0.9 };

describe('native Model', function () {
  let tmp: string;
  let learner: NativeLearner;
  let checkpoint: string;
  const meta = JSON.stringify({ note: 'saved by a Learner' });
  const models: NativeModel[] = [];
  const model = (options: Partial<ConstructorParameters<ReturnType<typeof native>['Model']>[0]> = {}) => {
    const made = new (native().Model)({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, ...stats, ...options });
    models.push(made);
    return made;
  };

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-model-'));
    checkpoint = path.join(tmp, 'trained.ckpt');
    learner = new (native().Learner)({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, ...stats, seed: 5 });
    // Two AdamW steps: the checkpoint then holds optimizer moments as well as the weights.
    for (let i = 0; i < 2; i++) await learner.trainStep(batch, hyper);
    await learner.save(checkpoint, meta);
  });
  after(function () {
    learner.dispose();
    for (const m of models) m.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("loads a Learner's checkpoint and predicts the Learner's probabilities", async function () {
    const m = model();
    assert.equal(await m.load(checkpoint), meta);
    const ours = await m.predict(batch);
    const theirs = await learner.predict(batch);
    assert.equal(ours.length, batch.n * C);
    assert.ok(maxAbsDiff(ours, theirs) < 1e-6, `max difference ${maxAbsDiff(ours, theirs)}`);
    assert.equal(m.numClasses, C);
    assert.equal(m.device, learner.device);
  });

  it('has no training surface: no step, optimizer, freezing or saving', function () {
    const m = model();
    for (const name of ['trainStep', 'evalStep', 'freeze', 'resetOptimizer', 'save', 'loadTorchvision', 'parameters', 'groupCount']) {
      assert.ok(!(name in m), `Model has ${name}`);
    }
  });

  it('refuses a checkpoint of another architecture or class count, naming both', async function () {
    await assert.rejects(model({ numClasses: 3 }).load(checkpoint), /holds a resnet18 with 4 classes; expected a resnet18 with 3 classes/);
  });

  it('rejects mixed batches, names bad options, and refuses use after dispose', async function () {
    const m = model();
    const mix = { perm: Int32Array.from([1, 0, 3, 2, 5, 4]), lambda: new Float32Array(6).fill(0.5) };
    await assert.rejects(m.predict({ ...batch, mix }), /batch\.mix is for training only; predict takes unmixed batches/);
    assert.throws(() => model({ device: 'gpu' }), /unknown device 'gpu'/);
    assert.throws(() => model({ amp: 'fp8' as never }), /options\.amp is 'fp8'; expected 'none', 'bf16' or 'fp16'/);
    m.dispose();
    await assert.rejects(m.predict(batch), /this model was disposed; create a new one/);
    await assert.rejects(m.load(checkpoint), /this model was disposed/);
  });

  it('the addon requires every Learner and Model option: native() fills them from lib/defaults.ts', function () {
    const learnerOptions: Record<string, unknown> = {
      arch: 'resnet18', numClasses: C, device: TEST_DEVICE, mean: null, std: null, amp: 'none',
      optimizer: 'adamw', weightDecay: 0.01, beta2: 0.99, eps: 1e-5, labelSmoothing: 0, seed: 0,
    };
    const modelKeys = ['arch', 'numClasses', 'device', 'mean', 'std', 'amp'];
    const without = (options: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(options).filter(([k]) => k !== key));
    const { Learner, Model } = addonBinding();
    for (const key of Object.keys(learnerOptions)) {
      assert.throws(() => new Learner(without(learnerOptions, key) as never), new RegExp(`options\\.${key} must be .*; got undefined`));
    }
    const modelOptions = Object.fromEntries(modelKeys.map((k) => [k, learnerOptions[k]]));
    for (const key of modelKeys) {
      assert.throws(() => new Model(without(modelOptions, key) as never), new RegExp(`options\\.${key} must be .*; got undefined`));
    }
  });
});
