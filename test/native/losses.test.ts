/**
 * The Learner's losses against PyTorch on the same logits: label-smoothed cross entropy equals
 * torch's cross_entropy(label_smoothing=eps); soft targets equal cross_entropy with probability
 * targets; the mixup loss equals lambda*L(y) + (1-lambda)*L(y[perm]) per sample, then the mean.
 */
import { strict as assert } from 'assert';
import { nativeInternals } from '../../lib/native-internal';
import { maxAbsDiff, randomFloats, runPeer, seededRandom } from '../helpers/native-batch';

const N = 6;
const C = 5;
const logits = randomFloats(N * C, 11, -4, 4);
const labels = Int32Array.from([0, 4, 2, 2, 1, 3]);
const perm = Int32Array.from([3, 0, 5, 1, 2, 4]);
const lambda = Float32Array.from([1, 0.9, 0.75, 0.6, 0.5, 0.2]);
// Soft targets: random rows that sum to 1.
const targets = (() => {
  const random = seededRandom(5);
  const out = new Float32Array(N * C);
  for (let i = 0; i < N; i++) {
    let sum = 0;
    for (let k = 0; k < C; k++) sum += out[i * C + k] = random();
    for (let k = 0; k < C; k++) out[i * C + k] /= sum;
  }
  return out;
})();

interface PeerLosses {
  [eps: string]: { hard: number[]; soft: number[]; mixed: number[] };
}

const PEER = `
import torch
import torch.nn.functional as F
logits = torch.tensor(data['logits'], dtype=torch.float32).view(data['n'], data['c'])
labels = torch.tensor(data['labels'])
perm = torch.tensor(data['perm'])
lam = torch.tensor(data['lambda'], dtype=torch.float32)
targets = torch.tensor(data['targets'], dtype=torch.float32).view(data['n'], data['c'])
out = {}
for eps in data['eps']:
    ce = lambda y: F.cross_entropy(logits, y, reduction='none', label_smoothing=eps)
    out[str(eps)] = {
        'hard': ce(labels).tolist(),
        'soft': ce(targets).tolist(),
        'mixed': (lam * ce(labels) + (1 - lam) * ce(labels[perm])).tolist(),
    }
print(json.dumps(out))
`;

describe('native losses', function () {
  const epsilons = [0, 0.1, 0.3];
  let peer: PeerLosses;

  before(function () {
    peer = runPeer<PeerLosses>(PEER, {
      logits: Array.from(logits),
      labels: Array.from(labels),
      perm: Array.from(perm),
      lambda: Array.from(lambda),
      targets: Array.from(targets),
      n: N,
      c: C,
      eps: epsilons,
    });
  });

  for (const eps of epsilons) {
    it(`label-smoothed cross entropy equals torch's cross_entropy(label_smoothing=${eps})`, function () {
      const ours = nativeInternals().lossCheck({ logits, n: N, classes: C, labels, eps });
      const expected = peer[String(eps)].hard;
      assert.ok(maxAbsDiff(ours.perSample, expected) < 1e-5, `${ours.perSample} vs ${expected}`);
      const mean = expected.reduce((a, b) => a + b, 0) / N;
      assert.ok(Math.abs(ours.loss - mean) < 1e-5);
    });

    it(`soft-target loss equals torch's cross_entropy with probability targets (eps ${eps})`, function () {
      const ours = nativeInternals().lossCheck({ logits, n: N, classes: C, targets, eps });
      assert.ok(maxAbsDiff(ours.perSample, peer[String(eps)].soft) < 1e-5);
    });

    it(`mixup loss equals lambda*L(y) + (1-lambda)*L(y[perm]) per sample (eps ${eps})`, function () {
      const ours = nativeInternals().lossCheck({ logits, n: N, classes: C, labels, eps, mix: { perm, lambda } });
      const expected = peer[String(eps)].mixed;
      assert.ok(maxAbsDiff(ours.perSample, expected) < 1e-5, `${ours.perSample} vs ${expected}`);
      assert.ok(Math.abs(ours.loss - expected.reduce((a, b) => a + b, 0) / N) < 1e-5);
    });
  }

  it('mixing one-hot targets gives the same loss as mixing labels', function () {
    const oneHot = new Float32Array(N * C);
    labels.forEach((label, i) => (oneHot[i * C + label] = 1));
    const fromTargets = nativeInternals().lossCheck({ logits, n: N, classes: C, targets: oneHot, eps: 0.1, mix: { perm, lambda } });
    const fromLabels = nativeInternals().lossCheck({ logits, n: N, classes: C, labels, eps: 0.1, mix: { perm, lambda } });
    assert.ok(maxAbsDiff(fromTargets.perSample, fromLabels.perSample) < 1e-5);
  });

  it('rejects logits of the wrong length with the expected count', function () {
    assert.throws(
      () => nativeInternals().lossCheck({ logits: new Float32Array(7), n: N, classes: C, labels }),
      /logits has 7 entries; expected n\*classes = 30/,
    );
  });
});
