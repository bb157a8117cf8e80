/**
 * Export to PyTorch: pip torch 2.13 reads the file with its default weights-only torch.load, and
 * torchts reads it back; fastai's names; refusals. (Every architecture's logits in PyTorch 1.13
 * against torchts's are checked in onnx.test.ts, which trains each once for both exports.)
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { ImageDataLoaders } from '../../lib/data';
import { native } from '../../lib/native';
import { Learner } from '../../lib/learn';
import { exportPyTorch, fastaiName } from '../../lib/export/pytorch';
import { TEST_DEVICE } from '../helpers/device';
import { tempDir, removeDir } from '../helpers/images';
import { runPythonJson } from '../helpers/python';
import { venvBin } from '../helpers/torch-installs';
import { TRAIN_SIZE as SIZE, makeExportData, probeImages as probe } from './helpers';

const probeImages = (n: number) => probe(n, SIZE, SIZE);

describe('export to PyTorch (torchvision resnet, fastai xresnet)', function () {
  this.timeout(600_000);
  let dir: string;
  let data: ImageDataLoaders;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-export-pth-');
    data = await makeExportData(dir);
  });
  after(() => removeDir(dir));

  it('pip torch 2.13 reads the file with its default weights-only torch.load', async () => {
    const file = path.join(dir, 'resnet18.pth');
    const learn = new Learner({ data, arch: 'resnet18', device: TEST_DEVICE, size: SIZE, bs: 12, seed: 1 });
    try {
      await exportPyTorch(learn, file);
    } finally {
      learn.dispose();
    }
    const script = `
import json, sys, torch
state = torch.load(sys.argv[1])
print(json.dumps({'version': torch.__version__, 'n': len(state), 'sum': float(sum(t.double().sum() for t in state.values()))}))`;
    type Summary = { version: string; n: number; sum: number };
    const modern = await runPythonJson<Summary>(script, { args: [file], python: path.join(venvBin('cpu'), 'python3') });
    const debian = await runPythonJson<Summary>(script, { args: [file] });
    assert.match(modern.version, /^2\./);
    assert.equal(modern.n, debian.n);
    assert.ok(Math.abs(modern.sum - debian.sum) < 1e-6 * Math.max(1, Math.abs(debian.sum)), `${modern.sum} vs ${debian.sum}`);
  });

  it('torchts itself loads the export back (loadTorchvision) with identical predictions', async () => {
    const source = new Learner({ data, arch: 'resnet18', device: TEST_DEVICE, size: SIZE, bs: 12, seed: 2 });
    const target = new Learner({ data, arch: 'resnet18', device: TEST_DEVICE, size: SIZE, bs: 12, seed: 3 });
    try {
      await source.fit(1, 1e-2);
      const file = path.join(dir, 'roundtrip.pth');
      await exportPyTorch(source, file);
      await target.model.loadTorchvision(file, {});
      const images = probeImages(3);
      const batch = { images, n: 3, h: SIZE, w: SIZE };
      assert.deepEqual(Array.from(await target.model.logits(batch)), Array.from(await source.model.logits(batch)));
    } finally {
      source.dispose();
      target.dispose();
    }
  });

  it('names xresnet tensors as fastai does, and refuses what has no place there', () => {
    assert.equal(fastaiName('stem.0.conv.weight'), '0.0.weight');
    assert.equal(fastaiName('stem.2.bn.running_var'), '2.1.running_var');
    assert.equal(fastaiName('stages.0.1.convs.1.bn.weight'), '4.1.convpath.1.1.weight');
    assert.equal(fastaiName('stages.0.0.shortcut.conv.weight'), '4.0.idpath.0.0.weight', 'xresnet50 stage 0: a projection without a pool');
    assert.equal(fastaiName('stages.2.0.shortcut.bn.bias'), '6.0.idpath.1.1.bias', 'strided: after the average pool');
    assert.equal(fastaiName('fc.weight'), '11.weight');
    assert.throws(() => fastaiName('head.weight'), /"head.weight" has no place in fastai's layout/);
  });

  it('a Learner given normalize: null normalises nothing (x/255 only), as LearnerNormalize says', () => {
    const learn = new Learner({ data, arch: 'resnet18', device: TEST_DEVICE, size: SIZE, bs: 12, seed: 1, normalize: null });
    try {
      assert.equal(learn.normalize, null);
    } finally {
      learn.dispose();
    }
  });

  it('refuses an arch without a PyTorch layout, and a file it cannot write, writing nothing', async () => {
    const learn = new Learner({ data, arch: 'resnet18', device: TEST_DEVICE, size: SIZE, bs: 12, seed: 1 });
    try {
      await assert.rejects(exportPyTorch({ arch: 'vit_b_16', model: learn.model }, path.join(dir, 'x.pth')), /arch "vit_b_16" has no PyTorch layout/);
      const missing = path.join(dir, 'no-such-folder', 'x.pth');
      await assert.rejects(exportPyTorch(learn, missing), /no-such-folder\/x\.pth: could not write/);
      assert.ok(!fs.existsSync(path.dirname(missing)));
    } finally {
      learn.dispose();
    }
  });
});
