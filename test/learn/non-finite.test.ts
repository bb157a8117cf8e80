/**
 * A model with NaN weights (a diverged fit, a damaged file) is never exported, never saved as
 * the best, and never predicts silently.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { imageFolder } from '../../lib/data/loader';
import { Learner } from '../../lib/learn';
import { SaveBestModel } from '../../lib/learn/callbacks';
import type { EpochRecord, FitControl } from '../../lib/learn/types';
import { runPython } from '../helpers/python';
import { removeDir, tempDir, writeClassFolder } from '../helpers/images';

describe('non-finite weights and outputs', function () {
  this.timeout(60_000);
  let dir: string;
  let learner: Learner;
  before(async () => {
    dir = tempDir('torchts-nan-');
    await writeClassFolder(path.join(dir, 'data'), { split: '', classes: { a: 4, b: 4 } });
    // torchvision's resnet18 whose classifier is NaN: what a diverged fit leaves behind.
    await runPython(
      'import sys, torch, torchvision\nm = torchvision.models.resnet18(num_classes=2)\nwith torch.no_grad(): m.fc.weight.fill_(float("nan"))\ntorch.save(m.state_dict(), sys.argv[1])\n',
      { args: [path.join(dir, 'nan.pth')] },
    );
    const data = await imageFolder(path.join(dir, 'data'), { validPct: 0.5 });
    learner = new Learner({ data, arch: 'resnet18', size: 16, bs: 2, device: 'cpu' });
    await learner.model.loadTorchvision(path.join(dir, 'nan.pth'));
  });
  after(() => {
    learner?.dispose();
    removeDir(dir);
  });

  it('predict rejects instead of naming a class', async () => {
    const images = new Uint8Array(16 * 16 * 3).fill(100);
    await assert.rejects(learner.predict({ images, n: 1, h: 16, w: 16 }), /outputs are not finite \(NaN or infinite\)/);
  });

  it('export refuses, naming the damaged weights, and writes nothing', async () => {
    const file = path.join(dir, 'model.tsl');
    await assert.rejects(learner.export(file), /export: 1 weight tensor\(s\) hold NaN or infinite values \(fc\.weight\): the fit diverged/);
    assert.ok(!fs.existsSync(file) && !fs.existsSync(`${file}.json`));
  });

  it('SaveBestModel never takes an epoch whose validation loss is not finite', async () => {
    const saved: string[] = [];
    const record = (validLoss: number, accuracy: number): EpochRecord => ({ epoch: 0, phase: 0, size: 16, bs: 2, trainLoss: 1, validLoss, metrics: { accuracy }, seconds: 1 });
    const control = { save: async (f: string) => void saved.push(f) } as unknown as FitControl;
    const callback = new SaveBestModel(path.join(dir, 'best.tsl'), { monitor: 'accuracy' });
    callback.beforeFit();
    await callback.afterEpoch(Object.assign(control, { record: record(NaN, 0.9) }));
    assert.deepEqual(saved, []);
    await callback.afterEpoch(Object.assign(control, { record: record(0.5, 0.6) }));
    assert.equal(saved.length, 1);
  });
});
