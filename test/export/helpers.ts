/**
 * Shared by the ONNX export tests: a small image folder, briefly trained learners whose
 * weights and BatchNorm statistics are no longer their initial ones, probe images, and the
 * comparisons.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { imageFolder, type ImageDataLoaders } from '../../lib/data';
import { Random } from '../../lib/data/random';
import { Learner } from '../../lib/learn';
import type { ExportSource } from '../../lib/export/onnx';
import { TEST_DEVICE } from '../helpers/device';
import { CLASS_COLOURS, rawImage, texturedColour, writeClassFolder } from '../helpers/images';

export const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'xresnet18', 'xresnet34', 'xresnet50'] as const;
export type Arch = (typeof ARCHS)[number];

/** Odd on purpose: the feature maps go 33 -> 17 -> 9 -> 5 -> 3 -> 2, so pools meet partial windows. */
export const TRAIN_SIZE = 33;

/** Three colour classes, 16 training and 4 validation images each, 40 x 40 PNG. */
export async function makeExportData(dir: string): Promise<ImageDataLoaders> {
  const root = path.join(dir, 'data');
  await writeClassFolder(root, { classes: { red: 16, green: 16, blue: 16 }, split: 'train', width: 40, height: 40 });
  await writeClassFolder(root, { classes: { red: 4, green: 4, blue: 4 }, split: 'val', width: 40, height: 40 });
  return imageFolder(root, { seed: 0, log: () => undefined });
}

/**
 * One-cycle peak rates that leave confident, varied predictions after 2 epochs (measured on
 * libtorch 2.x); torchvision's resnet34 runs away at 3e-3 on 48 images (logits near 200, one
 * class for every image), so it gets a gentler one. The tests do not depend on these numbers.
 */
const PEAK_LR: Readonly<Record<Arch, number>> = { resnet18: 3e-3, resnet34: 1e-3, resnet50: 3e-3, xresnet18: 3e-3, xresnet34: 3e-3, xresnet50: 3e-3 };

/** A learner of `arch` trained for 2 short epochs (6 steps) at `TRAIN_SIZE`, seeded. */
export async function trainBriefly(data: ImageDataLoaders, arch: Arch, epochs = 2): Promise<Learner> {
  const learn = new Learner({ data, arch, device: TEST_DEVICE, size: TRAIN_SIZE, bs: 16, seed: 1 });
  await learn.fitOneCycle(epochs, PEAK_LR[arch]);
  return learn;
}

/** What the exporter reads from a learner. */
export function sourceOf(learn: Learner): ExportSource {
  return { arch: learn.arch, classes: learn.classes, size: learn.settings.size, normalize: learn.normalize, model: learn.model };
}

/**
 * Checks that training moved the model off its initial state: BatchNorm statistics differ from
 * 0 and 1, and every BatchNorm scale is non-zero (xresnet starts the last one of each branch at
 * zero, which would make every residual branch vanish).
 */
export async function assertTrained(learn: Learner): Promise<void> {
  const weights = await learn.model.weights();
  const bnPrefixes = weights.filter((w) => w.name.endsWith('.running_var')).map((w) => w.name.slice(0, -'running_var'.length));
  const byName = new Map(weights.map((w) => [w.name, w.data]));
  for (const prefix of bnPrefixes) {
    const moved = (name: string, initial: number) => (byName.get(prefix + name) as Float32Array).some((v) => Math.abs(v - initial) > 1e-3);
    assert.ok(moved('running_mean', 0) && moved('running_var', 1), `${prefix} statistics still at their initial values`);
    assert.ok(moved('weight', 0), `${prefix}weight is all zero`);
  }
}

/** n probe images of h x w (uint8 RGB NHWC): the class colours, two others, then seeded noise. */
export function probeImages(n: number, h: number, w: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n * h * w * 3);
  const random = Random.stream(seed, 'onnx-probe');
  for (let i = 0; i < n; i++) {
    const image = i < CLASS_COLOURS.length ? rawImage(w, h, texturedColour(CLASS_COLOURS[i], 100 + i)) : Uint8Array.from({ length: h * w * 3 }, () => random.int(0, 256));
    out.set(image, i * h * w * 3);
  }
  return out;
}

/** NHWC bytes as NCHW float32 x/255, as torchts prepares them before normalising. */
export function toUnitNchw(images: Uint8Array, n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(images.length);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < h * w; p++) out[((i * 3 + c) * h * w) + p] = images[(i * h * w + p) * 3 + c] / 255;
    }
  }
  return out;
}

/** (x - mean[c]) / std[c] over an NCHW float32 batch, in float32 as torchts computes it. */
export function normalizeNchw(x: Float32Array, h: number, w: number, stats: { mean: number[]; std: number[] }): Float32Array {
  const out = new Float32Array(x.length);
  const mean = Float32Array.from(stats.mean);
  const std = Float32Array.from(stats.std);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / (h * w)) % 3;
    out[i] = Math.fround(x[i] - mean[c]) / std[c];
  }
  return out;
}

/** Row-wise softmax of n x k logits, in float64. */
export function softmaxRows(logits: Float32Array, k: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let row = 0; row < logits.length / k; row++) {
    const slice = logits.subarray(row * k, (row + 1) * k);
    const max = Math.max(...slice);
    const exps = Array.from(slice, (v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    exps.forEach((e, c) => (out[row * k + c] = e / sum));
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Largest |a - b| / (1 + |b|): absolute near zero, relative for large logits. */
export function maxScaledDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return max;
}
