/**
 * Export to PyTorch, checked by PyTorch itself: Debian's torch 1.13 + torchvision load the file
 * into a stock torchvision resnet (or, for xresnet, a model with fastai's module tree) with a
 * strict load_state_dict, and its logits equal torchts's; pip torch 2.13 reads the same file with
 * its default weights-only torch.load.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { imageFolder, type ImageDataLoaders } from '../../lib/data';
import { native } from '../../lib/native';
import { Learner } from '../../lib/learn';
import { exportPyTorch, fastaiName } from '../../lib/export/pytorch';
import { TEST_DEVICE } from '../helpers/device';
import { tempDir, removeDir, writeClassFolder, rawImage, texturedColour, CLASS_COLOURS } from '../helpers/images';
import { runPythonJson } from '../helpers/python';
import { venvBin } from '../helpers/torch-installs';

const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'xresnet18', 'xresnet34', 'xresnet50'] as const;
/** Odd on purpose: the strided average pools of xresnet meet partial windows. */
const SIZE = 33;

/** n images of SIZE x SIZE, uint8 RGB NHWC, different from the training images. */
function probeImages(n: number): Uint8Array {
  const out = new Uint8Array(n * SIZE * SIZE * 3);
  for (let i = 0; i < n; i++) out.set(rawImage(SIZE, SIZE, texturedColour(CLASS_COLOURS[i % CLASS_COLOURS.length], 100 + i)), i * SIZE * SIZE * 3);
  return out;
}

/** Python: loads the export into the stock model and prints its logits on the probe images. */
const PEER = `
import json, sys, importlib.util
import numpy as np, torch, torchvision
arch, file, images, n, size, norm, helper = sys.argv[1:8]
n, size, norm = int(n), int(size), json.loads(norm)
if arch.startswith('xresnet'):
    spec = importlib.util.spec_from_file_location('fastai_xresnet', helper)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    model = module.xresnet(int(arch[7:]), len(norm['classes']))
else:
    model = getattr(torchvision.models, arch)(num_classes=len(norm['classes']))
state = torch.load(file)
model.load_state_dict(state)  # strict: every name and shape must match
model.eval()
x = torch.from_numpy(np.fromfile(images, dtype=np.uint8).reshape(n, size, size, 3)).permute(0, 3, 1, 2).float() / 255
if norm['mean'] is not None:
    x = (x - torch.tensor(norm['mean']).view(1, 3, 1, 1)) / torch.tensor(norm['std']).view(1, 3, 1, 1)
with torch.no_grad():
    logits = model(x)
print(json.dumps({'logits': logits.flatten().tolist(), 'tensors': len(state)}))
`;

describe('export to PyTorch (torchvision resnet, fastai xresnet)', function () {
  this.timeout(600_000);
  let dir: string;
  let data: ImageDataLoaders;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-export-pth-');
    await writeClassFolder(path.join(dir, 'data'), { classes: { red: 12, green: 12, blue: 12 }, split: 'train', width: 40, height: 40 });
    await writeClassFolder(path.join(dir, 'data'), { classes: { red: 4, green: 4, blue: 4 }, split: 'val', width: 40, height: 40 });
    data = await imageFolder(path.join(dir, 'data'), { seed: 0, log: () => undefined });
  });
  after(() => removeDir(dir));

  for (const arch of ARCHS) {
    it(`${arch}: a strict load_state_dict in PyTorch 1.13 gives torchts's logits within 1e-4 (1e-5 relative beyond 10)`, async () => {
      const learn = new Learner({ data, arch, device: TEST_DEVICE, size: SIZE, bs: 12, seed: 1 });
      try {
        // Two short epochs: BatchNorm statistics and the zero-initialised branches move, and the
        // logits stay of a sane size (a higher rate leaves running statistics that blow them up).
        await learn.fitOneCycle(2, 3e-3);
        const file = path.join(dir, `${arch}.pth`);
        const report = await exportPyTorch(learn, file);
        assert.equal(report.layout, arch.startsWith('x') ? 'fastai' : 'torchvision');
        const n = 4;
        const images = probeImages(n);
        const ours = await learn.model.logits({ images, n, h: SIZE, w: SIZE });
        const imagesFile = path.join(dir, `${arch}.u8`);
        fs.writeFileSync(imagesFile, images);
        const norm = JSON.stringify({ classes: learn.classes, mean: learn.normalize?.mean ?? null, std: learn.normalize?.std ?? null });
        const peer = await runPythonJson<{ logits: number[]; tensors: number }>(PEER, {
          args: [arch, file, imagesFile, String(n), String(SIZE), norm, path.join(__dirname, '..', 'helpers', 'fastai_xresnet.py')],
        });
        assert.equal(peer.tensors, report.tensors);
        const diff = Math.max(...peer.logits.map((v, i) => Math.abs(v - ours[i])));
        const spread = Math.max(...Array.from(ours, Math.abs));
        assert.ok(spread > 0.1, `the logits are trivially small (${spread}): the check would prove little`);
        console.log(`      max |logit diff| ${diff.toExponential(2)}, logits up to ${spread.toFixed(2)}`);
        // 1e-4 for logits up to 10; beyond, 1e-5 of their size (float32 sums over thousands of
        // terms, in two libtorch builds whose kernels order them differently).
        const tolerance = 1e-4 * Math.max(1, spread / 10);
        assert.ok(diff <= tolerance, `max |logit diff| ${diff.toExponential(2)} > ${tolerance.toExponential(2)} (logits up to ${spread.toFixed(3)})`);
      } finally {
        learn.dispose();
      }
    });
  }

  it('pip torch 2.13 reads the file with its default weights-only torch.load', async () => {
    const file = path.join(dir, 'resnet18.pth');
    assert.ok(fs.existsSync(file), 'written by the resnet18 test above');
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
