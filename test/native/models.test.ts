/**
 * The model family against its peers: torchvision's resnet18/50 (same state_dict
 * names, same outputs from the same weights) and a PyTorch re-statement of the
 * fastai xresnet design in shared/reference/fastai-behaviour.md.
 *
 * Outputs are compared as log-probabilities: Learner.predict returns softmax
 * probabilities (it does not expose logits), and log-softmax equals the logits up to
 * a per-row constant, so a 1e-4 bound on log-probabilities is a 1e-4 bound on the
 * logits' differences. Probabilities are compared too.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';

import { native, NativeLearner, NativeLearnerOptions } from '../../lib/native';
import { TSL_READER_PY, makeTempDir, readFloat32File, removeTempDir, runPython, runPythonJson } from '../helpers/python';
import { TEST_DEVICE } from '../helpers/device';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'xresnet18', 'xresnet34', 'xresnet50'];

function learner(arch: string, numClasses: number, seed = 0): NativeLearner {
  const options: Partial<NativeLearnerOptions> = {
    arch,
    numClasses,
    device: TEST_DEVICE,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    seed,
  };
  return new (native().Learner)(options as NativeLearnerOptions);
}

/** Python prelude: the ImageNet normalisation the Learner applies, from the same uint8 bytes. */
const PY_COMMON = `
import json, sys, collections, torch, torch.nn as nn, torch.nn.functional as F
out = sys.argv[1]
torch.manual_seed(0)
MEAN = torch.tensor(${JSON.stringify(IMAGENET_MEAN)}).view(1, 3, 1, 1)
STD = torch.tensor(${JSON.stringify(IMAGENET_STD)}).view(1, 3, 1, 1)

def images(name, n, h, w):
    """Random uint8 NHWC bytes to <out>/<name>.u8 and the normalised NCHW float input."""
    x = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8)
    x.numpy().tofile(f'{out}/{name}.u8')
    return (x.permute(0, 3, 1, 2).float() / 255 - MEAN) / STD

def perturb_bn(model):
    """Non-trivial BN statistics and affine weights, so eval-mode BN is really exercised."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(11)

def expect(name, model, x):
    """Scales the classifier so the logits have std 2 (random deep nets can reach the
    hundreds, where softmax underflows), saves the weights, writes the log-probabilities."""
    model.eval()
    with torch.no_grad():
        scale = 2.0 / model(x).std()
        model.fc.weight.mul_(scale)
        model.fc.bias.mul_(scale)
        torch.save(model.state_dict(), f'{out}/{name}.pth')
        F.log_softmax(model(x), 1).numpy().tofile(f'{out}/{name}.logp')
`;

/** The fastai xresnet design, re-stated in PyTorch with our parameter names. */
const PY_XRESNET = `
class ConvBn(nn.Module):
    def __init__(self, ni, nf, ks, stride=1, act=True, zero_bn=False):
        super().__init__()
        self.conv = nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(nf)
        nn.init.constant_(self.bn.weight, 0.0 if zero_bn else 1.0)
        self.act = act
    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x

class ResBlock(nn.Module):
    def __init__(self, expansion, ni, nh, stride):
        super().__init__()
        nf = nh * expansion
        if expansion == 1:
            convs = [ConvBn(ni, nh, 3, stride), ConvBn(nh, nf, 3, act=False, zero_bn=True)]
        else:
            convs = [ConvBn(ni, nh, 1), ConvBn(nh, nh, 3, stride), ConvBn(nh, nf, 1, act=False, zero_bn=True)]
        self.convs = nn.Sequential(*convs)
        self.pool = nn.AvgPool2d(2, ceil_mode=True) if stride != 1 else nn.Identity()
        self.shortcut = ConvBn(ni, nf, 1, act=False) if ni != nf else nn.Identity()
    def forward(self, x):
        return F.relu(self.convs(x) + self.shortcut(self.pool(x)))

class XResNet(nn.Module):
    def __init__(self, expansion, layers, n_out):
        super().__init__()
        self.stem = nn.Sequential(ConvBn(3, 32, 3, 2), ConvBn(32, 32, 3), ConvBn(32, 64, 3))
        stages, ni = [], 64
        for i, n in enumerate(layers):
            nh = 64 * 2 ** i
            blocks = []
            for b in range(n):
                blocks.append(ResBlock(expansion, ni, nh, 2 if i > 0 and b == 0 else 1))
                ni = nh * expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(ni, n_out)
    def forward(self, x):
        x = F.max_pool2d(self.stem(x), 3, 2, 1)
        x = self.stages(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

XRESNETS = {'xresnet18': (1, [2, 2, 2, 2]), 'xresnet34': (1, [3, 4, 6, 3]), 'xresnet50': (4, [3, 4, 6, 3])}
`;

interface ParamRow {
  name: string;
  shape: number[];
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'output lengths differ');
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Compares predict()'s probabilities with the peer's log-probabilities. */
function assertMatches(probs: Float32Array, expectedLogp: Float32Array, label: string): void {
  const logp = Float32Array.from(probs, (p) => Math.log(p));
  const logDiff = maxAbsDiff(logp, expectedLogp);
  assert.ok(logDiff < 1e-4, `${label}: log-probabilities differ by ${logDiff} (limit 1e-4)`);
  const probDiff = maxAbsDiff(probs, Float32Array.from(expectedLogp, (l) => Math.exp(l)));
  assert.ok(probDiff < 1e-5, `${label}: probabilities differ by ${probDiff} (limit 1e-5)`);
}

function readImages(dir: string, name: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(path.join(dir, `${name}.u8`)));
}

describe('native models', function () {
  let dir: string;
  before(function () {
    dir = makeTempDir('torchts-models-');
  });
  after(function () {
    removeTempDir(dir);
  });

  describe('registry', function () {
    it('lists the six architectures', function () {
      assert.deepEqual([...native().modelNames()].sort(), [...ARCHS].sort());
    });

    it('rejects an unknown arch with the list of known ones', function () {
      assert.throws(
        () => learner('resnet19', 10),
        (err: Error) => /unknown arch 'resnet19'/.test(err.message) && ARCHS.every((a) => err.message.includes(a)),
      );
    });

    it('rejects a class count below 1', function () {
      assert.throws(() => learner('resnet18', 0), /numClasses/);
    });

    it('builds every arch for any class count, one probability row per image', async function () {
      for (const [arch, classes] of [['resnet34', 1], ['xresnet34', 3], ['xresnet50', 7]] as const) {
        const model = learner(arch, classes);
        try {
          const probs = await model.predict({ images: new Uint8Array(2 * 40 * 40 * 3).fill(90), n: 2, h: 40, w: 40 });
          assert.equal(probs.length, 2 * classes, arch);
          for (let row = 0; row < 2; row++) {
            const sum = probs.slice(row * classes, (row + 1) * classes).reduce((s, p) => s + p, 0);
            assert.ok(Math.abs(sum - 1) < 1e-5, `${arch}: row ${row} sums to ${sum}`);
          }
        } finally {
          model.dispose();
        }
      }
    });
  });

  describe('resnet: parity with torchvision', function () {
    before(async function () {
      await runPython(
        `${PY_COMMON}
import torchvision
for arch in ['resnet18', 'resnet50']:
    model = getattr(torchvision.models, arch)()
    perturb_bn(model)
    assert type(model.state_dict()) is collections.OrderedDict  # the form torch.save writes below
    x = images(arch, 2, 64, 64)
    expect(arch, model, x)
    json.dump([{'name': k, 'shape': list(p.shape)} for k, p in model.named_parameters()], open(f'{out}/{arch}.params.json', 'w'))
`,
        { args: [dir] },
      );
    });

    for (const arch of ['resnet18', 'resnet50']) {
      it(`${arch}: parameter names and shapes equal torchvision's`, function () {
        const model = learner(arch, 1000);
        try {
          const ours = model.parameters();
          const theirs = JSON.parse(fs.readFileSync(path.join(dir, `${arch}.params.json`), 'utf8')) as ParamRow[];
          const key = (p: ParamRow): string => `${p.name} ${p.shape.join('x')}`;
          assert.deepEqual(ours.map(key).sort(), theirs.map(key).sort());
          for (const p of ours) {
            const group = /^(conv1|bn1)\./.test(p.name) ? 0 : p.name.startsWith('fc.') ? 2 : 1;
            assert.equal(p.group, group, `${p.name} is in group ${p.group}`);
          }
        } finally {
          model.dispose();
        }
      });

      it(`${arch}: a torch.save(state_dict()) file gives torchvision's outputs`, async function () {
        const model = learner(arch, 1000, 123);
        try {
          const report = await model.loadTorchvision(path.join(dir, `${arch}.pth`));
          assert.deepEqual(report.skipped, []);
          assert.ok(report.loaded.includes('bn1.running_mean') && report.loaded.includes('fc.weight'));
          const probs = await model.predict({ images: readImages(dir, arch), n: 2, h: 64, w: 64 });
          assertMatches(probs, readFloat32File(path.join(dir, `${arch}.logp`)), arch);
        } finally {
          model.dispose();
        }
      });
    }

    it('transfer learning: skipHead leaves a classifier of another size and reports it', async function () {
      const model = learner('resnet18', 10);
      try {
        await assert.rejects(
          model.loadTorchvision(path.join(dir, 'resnet18.pth')),
          (err: Error) => /fc\.weight/.test(err.message) && /1000, 512/.test(err.message) && /10, 512/.test(err.message),
        );
        const report = await model.loadTorchvision(path.join(dir, 'resnet18.pth'), { skipHead: true });
        assert.deepEqual([...report.skipped].sort(), ['fc.bias', 'fc.weight']);
        assert.ok(report.loaded.includes('layer4.1.bn2.weight'));
        assert.ok(!report.loaded.some((name) => name.startsWith('fc.')));
      } finally {
        model.dispose();
      }
    });
  });

  describe('xresnet: the fastai design', function () {
    before(async function () {
      await runPython(
        `${PY_COMMON}${PY_XRESNET}
shapes = {}
for arch, (expansion, layers) in XRESNETS.items():
    shapes[arch] = [{'name': k, 'shape': list(p.shape)} for k, p in XResNet(expansion, layers, 10).named_parameters()]
json.dump(shapes, open(f'{out}/xresnet.params.json', 'w'))
for arch in ['xresnet18', 'xresnet50']:
    expansion, layers = XRESNETS[arch]
    model = XResNet(expansion, layers, 10)
    perturb_bn(model)  # also lifts the zero-initialised BNs, so every residual branch counts
    # Odd sizes: the strided shortcut's 2x2 average pool must use ceil mode.
    x = images(arch, 2, 45, 37)
    expect(arch, model, x)
`,
        { args: [dir] },
      );
    });

    for (const arch of ['xresnet18', 'xresnet34', 'xresnet50']) {
      it(`${arch}: parameter names, shapes and groups follow the design`, function () {
        const model = learner(arch, 10);
        try {
          const ours = model.parameters();
          const all = JSON.parse(fs.readFileSync(path.join(dir, 'xresnet.params.json'), 'utf8')) as Record<string, ParamRow[]>;
          const key = (p: ParamRow): string => `${p.name} ${p.shape.join('x')}`;
          assert.deepEqual(ours.map(key).sort(), all[arch].map(key).sort());
          const count = (rows: ParamRow[]): number => rows.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
          assert.equal(count(ours), count(all[arch]));
          for (const p of ours) {
            const group = p.name.startsWith('stem.') ? 0 : p.name.startsWith('fc.') ? 2 : 1;
            assert.equal(p.group, group, `${p.name} is in group ${p.group}`);
          }
        } finally {
          model.dispose();
        }
      });
    }

    for (const arch of ['xresnet18', 'xresnet50']) {
      it(`${arch}: same outputs as the PyTorch re-statement on odd-sized images`, async function () {
        const model = learner(arch, 10);
        try {
          await model.loadTorchvision(path.join(dir, `${arch}.pth`));
          const probs = await model.predict({ images: readImages(dir, arch), n: 2, h: 45, w: 37 });
          assertMatches(probs, readFloat32File(path.join(dir, `${arch}.logp`)), arch);
        } finally {
          model.dispose();
        }
      });
    }
  });

  describe('initialisation (checked in Python from a saved checkpoint)', function () {
    interface InitStats {
      zeroLastBn: boolean;
      otherBnOnes: boolean;
      biasesZero: boolean;
      /** Worst ratio of a weight's std to the kaiming std (large tensors only). */
      worstRatio: number;
      lastBnCount: number;
    }
    const PY_INIT = `${TSL_READER_PY}
import json, sys, math, torch
# Model tensors only: the Learner stores optimizer state under 'opt.' names.
tensors = {k: v for k, v in load_tsl(sys.argv[1])[1].items() if not k.startswith('opt.')}
mode = sys.argv[2]
last_bn = set()
for name in tensors:
    parts = name.split('.')
    if mode == 'xresnet' and parts[0] == 'stages' and parts[3] == 'convs':
        block = '.'.join(parts[:4])
        n = max(int(k.split('.')[4]) for k in tensors if k.startswith(block + '.'))
        last_bn.add(f'{block}.{n}.bn.weight')
worst, zero_last, ones, biases = 1.0, True, True, True
for name, t in tensors.items():
    if name.endswith('bn.weight') or (mode == 'resnet' and 'bn' in name and name.endswith('.weight')) or name.endswith('downsample.1.weight'):
        if name in last_bn: zero_last = zero_last and bool((t == 0).all())
        else: ones = ones and bool((t == 1).all())
    elif name.endswith('.weight') and t.dim() >= 2 and t.numel() >= 20000:
        fan_in = t[0].numel(); fan_out = t.shape[0] * t[0][0].numel()
        fan = fan_out if mode == 'resnet' and t.dim() == 4 else fan_in
        if mode == 'resnet' and t.dim() == 2: continue  # torchvision keeps PyTorch's default Linear init
        ratio = t.std().item() / math.sqrt(2.0 / fan)
        worst = max(worst, abs(ratio - 1) + 1)
    elif name.endswith('.bias') and not name.startswith('fc.'):
        biases = biases and bool((t == 0).all())
    elif mode == 'xresnet' and name == 'fc.bias':
        biases = biases and bool((t == 0).all())
print(json.dumps({'zeroLastBn': zero_last, 'otherBnOnes': ones, 'biasesZero': biases, 'worstRatio': worst, 'lastBnCount': len(last_bn)}))
`;

    it('xresnet50: kaiming normal (fan_in), zero biases, last BN of each block at 0', async function () {
      const model = learner('xresnet50', 10, 7);
      const file = path.join(dir, 'xresnet50-init.ckpt');
      try {
        await model.save(file, '{}');
      } finally {
        model.dispose();
      }
      const stats = await runPythonJson<InitStats>(PY_INIT, { args: [file, 'xresnet'] });
      assert.equal(stats.lastBnCount, 16, 'one zero-initialised BN per block (3+4+6+3)');
      assert.ok(stats.zeroLastBn, 'last BN weights are 0');
      assert.ok(stats.otherBnOnes, 'other BN weights are 1');
      assert.ok(stats.biasesZero, 'biases are 0');
      assert.ok(stats.worstRatio < 1.05, `weight std is off the kaiming value by a factor ${stats.worstRatio}`);
    });

    it('resnet18: kaiming normal (fan_out) convs, BN weight 1 bias 0, no zero-init residual', async function () {
      const model = learner('resnet18', 10, 7);
      const file = path.join(dir, 'resnet18-init.ckpt');
      try {
        await model.save(file, '{}');
      } finally {
        model.dispose();
      }
      const stats = await runPythonJson<InitStats>(PY_INIT, { args: [file, 'resnet'] });
      assert.ok(stats.otherBnOnes, 'BN weights are 1');
      assert.ok(stats.biasesZero, 'BN biases are 0');
      assert.ok(stats.worstRatio < 1.05, `conv weight std is off the kaiming value by a factor ${stats.worstRatio}`);
    });
  });
});
