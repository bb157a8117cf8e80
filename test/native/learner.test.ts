/**
 * The native Learner: a train step equals the same step in PyTorch (forward, label-smoothed
 * loss, AdamW / SGD with per-group lr and momentum, no decay on 1-D parameters), training on a
 * fixed batch lowers the loss, seeds fix the weights, freezing keeps frozen weights, and a
 * checkpoint restores weights and optimizer state so training continues identically.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native, type NativeBatch, type NativeHyper, type NativeLearner } from '../../lib/native';
import { nativeInternals } from '../../lib/native-internal';
import { maxAbsDiff, runPeer, syntheticBatch } from '../helpers/native-batch';
import { TEST_DEVICE } from '../helpers/device';
import { TSL_READER_PY } from '../helpers/python';

const C = 4;
const stats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const batch = syntheticBatch({ n: 8, size: 32, classes: C, seed: 21 });
// Per-group lrs (stem, body, head) and a changing beta1/momentum, as one-cycle does.
const schedule: NativeHyper[] = [
  { lrs: [1e-5, 5e-5, 2e-4], mom: 0.95 },
  { lrs: [2e-5, 1e-4, 3e-4], mom: 0.9 },
  { lrs: [1e-5, 6e-5, 1e-4], mom: 0.85 },
];

let tmp: string;
const learners: NativeLearner[] = [];
function learner(options: Partial<Parameters<typeof makeLearner>[0]> = {}): NativeLearner {
  return makeLearner({ arch: 'resnet18', numClasses: C, device: TEST_DEVICE, ...stats, seed: 1, ...options });
}
function makeLearner(options: ConstructorParameters<ReturnType<typeof native>['Learner']>[0]): NativeLearner {
  const made = new (native().Learner)(options);
  learners.push(made);
  return made;
}
async function trainLosses(l: NativeLearner, hypers: NativeHyper[], b: NativeBatch = batch): Promise<number[]> {
  const losses: number[] = [];
  for (const hyper of hypers) losses.push((await l.trainStep(b, hyper)).loss);
  return losses;
}

interface PeerRun {
  losses: number[];
  probs: number[];
}

// Trains a torchvision resnet18 from the weights in data['weights'] with the same batch and
// schedule; 'fastai' is fastai's Adam written out (decoupled wd, then the debiased Adam step);
// 'decay-all' is AdamW that wrongly decays 1-D parameters too. Small learning rates keep the
// comparison out of the regime where float rounding (thread count, summation order) grows
// step after step on so small a batch.
const PEER = `
import torch, torchvision
import torch.nn.functional as F
torch.set_num_threads(2)
n, s, c = data['n'], data['size'], data['classes']
x = torch.tensor(data['images'], dtype=torch.uint8).view(n, s, s, 3).permute(0, 3, 1, 2).float() / 255
x = (x - torch.tensor(data['mean']).view(1, 3, 1, 1)) / torch.tensor(data['std']).view(1, 3, 1, 1)
y = torch.tensor(data['labels'])
def group(name):
    return 0 if name.startswith(('conv1.', 'bn1.')) else 2 if name.startswith('fc.') else 1
def run(kind):
    m = torchvision.models.resnet18(num_classes=c)
    m.load_state_dict(torch.load(data['weights']))
    groups = []
    for g in range(3):
        for decay in (True, False):
            ps = [p for name, p in m.named_parameters() if group(name) == g and (p.ndim > 1) == decay]
            groups.append({'params': ps, 'weight_decay': data['wd'] if decay or kind == 'decay-all' else 0.0, 'g': g})
    if kind == 'sgd':
        opt = torch.optim.SGD(groups, lr=1e-3, momentum=0.9)
    else:
        opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-5)
    state = {}
    losses = []
    for hyper in data['schedule']:
        m.train()
        loss = F.cross_entropy(m(x), y, label_smoothing=data['eps'])
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        for pg in opt.param_groups:
            pg['lr'] = hyper['lrs'][pg['g']]
            if kind == 'sgd': pg['momentum'] = hyper['mom']
            else: pg['betas'] = (hyper['mom'], 0.99)
        if kind != 'fastai':
            opt.step()
            continue
        with torch.no_grad():
            for pg in opt.param_groups:
                lr, mom, wd = pg['lr'], hyper['mom'], pg['weight_decay']
                for p in pg['params']:
                    st = state.setdefault(p, {'avg': torch.zeros_like(p), 'sqr': torch.zeros_like(p), 'step': 0})
                    p.mul_(1 - lr * wd)
                    st['step'] += 1
                    st['avg'].mul_(mom).add_(p.grad, alpha=1 - mom)
                    st['sqr'].mul_(0.99).addcmul_(p.grad, p.grad, value=0.01)
                    debias1 = 1 - mom ** st['step']
                    debias2 = 1 - 0.99 ** st['step']
                    p.addcdiv_(st['avg'], (st['sqr'] / debias2).sqrt() + 1e-5, value=-lr / debias1)
    m.eval()
    with torch.no_grad():
        probs = F.softmax(m(x), 1)
    return {'losses': losses, 'probs': probs.view(-1).tolist()}
torch.manual_seed(0)
torch.save(torchvision.models.resnet18(num_classes=c).state_dict(), data['weights'])
print(json.dumps({kind: run(kind) for kind in ('adamw', 'sgd', 'fastai', 'decay-all')}))
`;

// Reads tensors of a torchts checkpoint with PyTorch (test/helpers/tsl_reader.py).
function checkpointTensors(file: string, names: string[]): Record<string, number[]> {
  return runPeer<Record<string, number[]>>(
    `${TSL_READER_PY}\ntensors = load_tsl(data['file'])[1]\nprint(json.dumps({k: tensors[k].reshape(-1).tolist() for k in data['names']}))`,
    { file, names },
  );
}

describe('native Learner', function () {
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-learner-'));
  });
  after(function () {
    for (const l of learners) l.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('matches the same training steps in PyTorch', function () {
    let peer: Record<'adamw' | 'sgd' | 'fastai' | 'decay-all', PeerRun>;
    const weights = () => path.join(tmp, 'resnet18.pth');

    before(function () {
      peer = runPeer(PEER, {
        images: Array.from(batch.images),
        labels: Array.from(batch.labels),
        n: batch.n,
        size: batch.w,
        classes: C,
        schedule,
        // A large decay makes a decay applied to the wrong parameters visible in the losses.
        wd: 10,
        eps: 0.1,
        weights: weights(),
        ...stats,
      });
    });

    for (const kind of ['adamw', 'sgd'] as const) {
      it(`${kind}: losses of three steps and the final probabilities`, async function () {
        const l = learner({ optimizer: kind, labelSmoothing: 0.1, weightDecay: 10 });
        const report = await l.loadTorchvision(weights());
        assert.equal(report.skipped.length, 0);
        const losses = await trainLosses(l, schedule);
        assert.ok(maxAbsDiff(losses, peer[kind].losses) < 2e-5, `ours ${losses} vs torch ${peer[kind].losses}`);
        if (kind === 'adamw') {
          // Decaying norm weights and biases too would be visible at this tolerance.
          assert.ok(maxAbsDiff(losses, peer['decay-all'].losses) > 6e-5, `${peer['decay-all'].losses}`);
        }
        const probs = await l.predict(batch);
        assert.ok(maxAbsDiff(probs, peer[kind].probs) < 2e-5, `probs differ by ${maxAbsDiff(probs, peer[kind].probs)}`);
      });
    }

    it("torch's AdamW with betas (mom, 0.99), eps 1e-5 is fastai's Adam", function () {
      assert.ok(maxAbsDiff(peer.adamw.losses, peer.fastai.losses) < 1e-5);
      assert.ok(maxAbsDiff(peer.adamw.probs, peer.fastai.probs) < 1e-5);
    });
  });

  it('a few steps on a fixed batch lower the loss (xresnet18)', async function () {
    const l = learner({ arch: 'xresnet18' });
    const losses = await trainLosses(l, Array.from({ length: 8 }, () => ({ lrs: [3e-3], mom: 0.9 })));
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[7] < 0.7 * losses[0], `losses ${losses.map((v) => v.toFixed(3))}`);
  });

  it('the same seed gives the same weights; another seed does not', async function () {
    const a = await learner({ seed: 7 }).predict(batch);
    const b = await learner({ seed: 7 }).predict(batch);
    const c = await learner({ seed: 8 }).predict(batch);
    assert.equal(maxAbsDiff(a, b), 0);
    assert.ok(maxAbsDiff(a, c) > 1e-4);
  });

  it('evalStep: loss, correct count and probabilities agree with predict and lossCheck', async function () {
    const l = learner({ labelSmoothing: 0.1 });
    await trainLosses(l, schedule);
    const result = await l.evalStep(batch, { probs: true });
    const probs = await l.predict(batch);
    assert.ok(result.probs && maxAbsDiff(result.probs, probs) < 1e-6);
    let correct = 0;
    for (let i = 0; i < batch.n; i++) {
      const row = Array.from(probs.subarray(i * C, (i + 1) * C));
      assert.ok(Math.abs(row.reduce((s, p) => s + p, 0) - 1) < 1e-5);
      if (row.indexOf(Math.max(...row)) === batch.labels[i]) correct++;
    }
    assert.equal(result.correct, correct);
    // log-probabilities are logits up to a per-row constant, which the loss ignores.
    const logProbs = Float32Array.from(probs, (p) => Math.log(p));
    const expected = nativeInternals().lossCheck({ logits: logProbs, n: batch.n, classes: C, labels: batch.labels, eps: 0.1 });
    assert.ok(Math.abs(result.loss - expected.loss) < 1e-4);
  });

  it('trains on soft targets and on mixed batches', async function () {
    const l = learner();
    const targets = new Float32Array(batch.n * C);
    batch.labels.forEach((label, i) => (targets[i * C + label] = 1));
    const soft = await l.trainStep({ ...batch, labels: undefined, targets }, schedule[0]);
    const mix = { perm: Int32Array.from([7, 6, 5, 4, 3, 2, 1, 0]), lambda: new Float32Array(8).fill(0.7) };
    const mixed = await l.trainStep({ ...batch, mix }, schedule[1]);
    const cut = await l.trainStep({ ...batch, mix: { ...mix, box: [4, 4, 20, 20] } }, schedule[2]);
    for (const r of [soft, mixed, cut]) assert.ok(Number.isFinite(r.loss) && r.loss > 0);
  });

  it('queued calls run in call order', async function () {
    const a = learner({ seed: 3 });
    const b = learner({ seed: 3 });
    const sequential = await trainLosses(a, schedule);
    const queued = await Promise.all(schedule.map((hyper) => b.trainStep(batch, hyper)));
    assert.deepEqual(queued.map((r) => r.loss), sequential);
  });

  it('a queued call sees the batch as it was when called, even if the caller reuses or transfers the bytes', async function () {
    const a = learner({ seed: 4 });
    const b = learner({ seed: 4 });
    const expected = await trainLosses(a, schedule.slice(0, 3));
    const reused = { ...batch, images: batch.images.slice() };
    const transferred = { ...batch, images: batch.images.slice() };
    // The first call keeps the worker busy, so the later ones read their bytes after this line.
    const calls = [b.trainStep(batch, schedule[0]), b.trainStep(reused, schedule[1]), b.trainStep(transferred, schedule[2])];
    reused.images.fill(0);
    const moved = structuredClone(transferred.images.buffer, { transfer: [transferred.images.buffer] });
    new Uint8Array(moved).fill(255);
    assert.equal(transferred.images.byteLength, 0, 'the buffer was detached');
    assert.deepEqual((await Promise.all(calls)).map((r) => r.loss), expected);
  });

  it('freeze keeps frozen weights fixed while norm parameters and the head train', async function () {
    const l = learner();
    l.freeze(2);
    const params = l.parameters();
    const conv1 = params.find((p) => p.name === 'conv1.weight');
    const bn1 = params.find((p) => p.name === 'bn1.weight');
    const fc = params.find((p) => p.name === 'fc.weight');
    assert.deepEqual([conv1?.group, conv1?.trainable, bn1?.trainable, fc?.group, fc?.trainable], [0, false, true, 2, true]);
    const before = path.join(tmp, 'frozen-before.ckpt');
    const after = path.join(tmp, 'frozen-after.ckpt');
    await l.save(before, '{}');
    await trainLosses(l, schedule);
    await l.save(after, '{}');
    const names = ['conv1.weight', 'layer1.0.conv1.weight', 'bn1.weight', 'fc.weight'];
    const [x, y] = [checkpointTensors(before, names), checkpointTensors(after, names)];
    assert.equal(maxAbsDiff(x['conv1.weight'], y['conv1.weight']), 0);
    assert.equal(maxAbsDiff(x['layer1.0.conv1.weight'], y['layer1.0.conv1.weight']), 0);
    assert.ok(maxAbsDiff(x['bn1.weight'], y['bn1.weight']) > 0);
    assert.ok(maxAbsDiff(x['fc.weight'], y['fc.weight']) > 0);
    l.freeze(0);
    assert.ok(l.parameters().every((p) => p.trainable));
  });

  for (const optimizer of ['adamw', 'sgd'] as const) {
    it(`save and load restore weights and ${optimizer} state: training continues identically`, async function () {
      const a = learner({ optimizer, seed: 5 });
      await trainLosses(a, schedule);
      const file = path.join(tmp, `${optimizer}.ckpt`);
      await a.save(file, JSON.stringify({ epoch: 3 }));
      const b = learner({ optimizer, seed: 6 });
      assert.deepEqual(JSON.parse(await b.load(file)), { epoch: 3 });
      assert.equal(maxAbsDiff(await a.predict(batch), await b.predict(batch)), 0);
      const next = schedule.slice().reverse();
      assert.deepEqual(await trainLosses(b, next), await trainLosses(a, next));
      assert.equal(maxAbsDiff(await a.predict(batch), await b.predict(batch)), 0);
    });
  }

  it('load refuses a checkpoint of another architecture, naming both', async function () {
    const file = path.join(tmp, 'other.ckpt');
    await learner({ arch: 'xresnet18' }).save(file, '{}');
    await assert.rejects(learner().load(file), /holds a xresnet18 with 4 classes; expected a resnet18 with 4 classes/);
  });
});
