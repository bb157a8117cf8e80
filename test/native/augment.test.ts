/**
 * Device-side batch preparation (prepareBatch shows what the model sees): uint8 NHWC -> float
 * NCHW, projective warp (bilinear, reflection, align_corners), lighting in logit space,
 * normalisation, mixup and cutmix. Expected values come from PyTorch on the same bytes.
 */
import { strict as assert } from 'assert';
import { type NativeBatch } from '../../lib/native';
import { nativeInternals } from '../../lib/native-internal';
import { maxAbsDiff, randomFloats, runPeer, syntheticBatch } from '../helpers/native-batch';

const N = 3;
const H = 20;
const W = 24;
const S = 16;
const base = syntheticBatch({ n: N, size: W, height: H, classes: 3, seed: 3 });
const stats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

// An affine matrix per image (rotation, scale, shift) and one with a projective row.
function matrices(): Float32Array {
  const out = new Float32Array(N * 9);
  for (let i = 0; i < N; i++) {
    const angle = (i - 1) * 0.3;
    const scale = 0.8 + 0.1 * i;
    const m = [scale * Math.cos(angle), -scale * Math.sin(angle), 0.1 * i, scale * Math.sin(angle), scale * Math.cos(angle), -0.05 * i, 0, 0, 1];
    out.set(m, i * 9);
  }
  return out;
}
const affine = matrices();
const projective = Float32Array.from(affine);
projective[2 * 9 + 6] = 0.15; // image 2 gets a perspective row
projective[2 * 9 + 7] = -0.1;
const brightness = Float32Array.from([0, 0.4, -0.3]);
const contrast = Float32Array.from([1, 1.3, 0.7]);

interface PeerImages {
  plain: number[];
  normalised: number[];
  resized: number[];
  affine: number[];
  projective: number[];
  lit: number[];
}

const PEER = `
import torch
import torch.nn.functional as F
n, h, w, s = data['n'], data['h'], data['w'], data['s']
x = torch.tensor(data['images'], dtype=torch.uint8).view(n, h, w, 3).permute(0, 3, 1, 2).float() / 255
mean = torch.tensor(data['mean']).view(1, 3, 1, 1)
std = torch.tensor(data['std']).view(1, 3, 1, 1)
def sample(grid):
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='reflection', align_corners=True)
affine = torch.tensor(data['affine']).view(n, 3, 3)
grid_affine = F.affine_grid(affine[:, :2, :], (n, 3, s, s), align_corners=True)
proj = torch.tensor(data['projective']).view(n, 3, 3)
axis = torch.linspace(-1, 1, s)
ys, xs = torch.meshgrid(axis, axis, indexing='ij')
pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(-1, 3)
mapped = torch.einsum('pk,njk->npj', pts, proj)
grid_proj = (mapped[..., :2] / mapped[..., 2:]).view(n, s, s, 2)
b = torch.tensor(data['brightness']).view(n, 1, 1, 1)
c = torch.tensor(data['contrast']).view(n, 1, 1, 1)
warped = sample(grid_affine)
lit = torch.sigmoid((torch.logit(warped, eps=1e-7) + b) * c)
flat = lambda t: t.contiguous().view(-1).tolist()
print(json.dumps({
    'plain': flat(x),
    'normalised': flat((x - mean) / std),
    'resized': flat(F.interpolate(x, size=(s, s), mode='bilinear', align_corners=False)),
    'affine': flat(warped),
    'projective': flat(sample(grid_proj)),
    'lit': flat((lit - mean) / std),
}))
`;

function batch(extra: Partial<NativeBatch> = {}): NativeBatch {
  return { images: base.images, n: N, h: H, w: W, ...extra };
}

describe('native batch preparation', function () {
  let peer: PeerImages;

  before(function () {
    peer = runPeer<PeerImages>(PEER, {
      images: Array.from(base.images),
      n: N,
      h: H,
      w: W,
      s: S,
      affine: Array.from(affine),
      projective: Array.from(projective),
      brightness: Array.from(brightness),
      contrast: Array.from(contrast),
      ...stats,
    });
  });

  it('converts uint8 NHWC to float NCHW in [0, 1]', function () {
    const x = nativeInternals().prepareBatch(batch());
    assert.equal(x.length, N * 3 * H * W);
    assert.ok(maxAbsDiff(x, peer.plain) < 1e-6);
  });

  it('normalises with (x/255 - mean)/std', function () {
    assert.ok(maxAbsDiff(nativeInternals().prepareBatch(batch(), stats), peer.normalised) < 1e-5);
  });

  it('without matrices resizes bilinearly to augment.size', function () {
    const x = nativeInternals().prepareBatch(batch({ augment: { size: S } }));
    assert.equal(x.length, N * 3 * S * S);
    assert.ok(maxAbsDiff(x, peer.resized) < 1e-5);
  });

  it('an identity matrix at the same size leaves the image unchanged', function () {
    const square = syntheticBatch({ n: 2, size: 12, classes: 2, seed: 9 });
    const identity = new Float32Array(18);
    identity.set([1, 0, 0, 0, 1, 0, 0, 0, 1], 0);
    identity.set([1, 0, 0, 0, 1, 0, 0, 0, 1], 9);
    const plain = nativeInternals().prepareBatch(square);
    const warped = nativeInternals().prepareBatch({ ...square, augment: { size: 12, matrices: identity } });
    assert.ok(maxAbsDiff(plain, warped) < 1e-5);
  });

  it('a matrix with x -> -x flips the image horizontally', function () {
    const square = syntheticBatch({ n: 1, size: 10, classes: 2, seed: 4 });
    const flip = Float32Array.from([-1, 0, 0, 0, 1, 0, 0, 0, 1]);
    const plain = nativeInternals().prepareBatch(square);
    const flipped = nativeInternals().prepareBatch({ ...square, augment: { size: 10, matrices: flip } });
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 10; y++) {
        for (let x = 0; x < 10; x++) {
          const a = flipped[(c * 10 + y) * 10 + x];
          const b = plain[(c * 10 + y) * 10 + (9 - x)];
          assert.ok(Math.abs(a - b) < 1e-5, `pixel ${c},${y},${x}`);
        }
      }
    }
  });

  it('affine matrices match torch affine_grid + grid_sample (reflection, align_corners)', function () {
    const x = nativeInternals().prepareBatch(batch({ augment: { size: S, matrices: affine } }));
    assert.ok(maxAbsDiff(x, peer.affine) < 1e-5, `max diff ${maxAbsDiff(x, peer.affine)}`);
  });

  it('projective matrices divide by the homogeneous coordinate', function () {
    const x = nativeInternals().prepareBatch(batch({ augment: { size: S, matrices: projective } }));
    assert.ok(maxAbsDiff(x, peer.projective) < 1e-5, `max diff ${maxAbsDiff(x, peer.projective)}`);
  });

  it('lighting is sigmoid((logit(x) + brightness) * contrast), before normalisation', function () {
    const x = nativeInternals().prepareBatch(batch({ augment: { size: S, matrices: affine, brightness, contrast } }), stats);
    assert.ok(maxAbsDiff(x, peer.lit) < 1e-4, `max diff ${maxAbsDiff(x, peer.lit)}`);
  });

  it('mixup blends normalised images: x[perm] + lambda*(x - x[perm])', function () {
    const perm = Int32Array.from([2, 0, 1]);
    const lambda = Float32Array.from([0.7, 0.5, 1]);
    const plain = nativeInternals().prepareBatch(batch(), stats);
    const mixed = nativeInternals().prepareBatch(batch({ mix: { perm, lambda } }), stats);
    const per = 3 * H * W;
    const expected = new Float32Array(plain.length);
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < per; k++) {
        const own = plain[i * per + k];
        const partner = plain[perm[i] * per + k];
        expected[i * per + k] = partner + lambda[i] * (own - partner);
      }
    }
    assert.ok(maxAbsDiff(mixed, expected) < 1e-5);
  });

  it('cutmix pastes the box [x0, y0, x1, y1) from the partner and keeps the rest', function () {
    const perm = Int32Array.from([1, 2, 0]);
    const lambda = new Float32Array(3).fill(0.75);
    const box: [number, number, number, number] = [3, 5, 11, 9];
    const plain = nativeInternals().prepareBatch(batch());
    const mixed = nativeInternals().prepareBatch(batch({ mix: { perm, lambda, box } }));
    for (let i = 0; i < N; i++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            const inBox = x >= box[0] && x < box[2] && y >= box[1] && y < box[3];
            const source = inBox ? perm[i] : i;
            const got = mixed[((i * 3 + c) * H + y) * W + x];
            assert.equal(got, plain[((source * 3 + c) * H + y) * W + x]);
          }
        }
      }
    }
  });

  it('rejects a box outside the augmented image, naming the box and the size', function () {
    const mix = { perm: Int32Array.from([0, 1, 2]), lambda: new Float32Array(3).fill(0.5), box: [0, 0, 17, 4] as [number, number, number, number] };
    assert.throws(() => nativeInternals().prepareBatch(batch({ augment: { size: S }, mix })), /box \[0, 0, 17, 4\) is not inside the 16x16 image/);
  });

  it('rejects matrices of the wrong length', function () {
    assert.throws(
      () => nativeInternals().prepareBatch(batch({ augment: { size: S, matrices: randomFloats(10, 1) } })),
      /batch\.augment\.matrices has 10 entries; expected n\*9 = 27/,
    );
  });
});
