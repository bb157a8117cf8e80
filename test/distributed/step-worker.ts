/**
 * One rank of the gradient-parity test (distributed.test.ts), as a real process: a native
 * Learner (SGD without momentum or weight decay, BatchNorm frozen so batch statistics play no
 * part) takes `steps` steps on its half of fixed synthetic batches, then writes its weights.
 * With WORLD_SIZE 1 it trains on the whole (union) batches instead. Writes out.json (losses) and
 * out.<step>.bin (every floating-point weight after that step, in name order, float32; step
 * 'init' before the first).
 * argv: <out.json> <lr of each step, comma-separated> <overlap 0|1>
 * STEP_DEVICE (default cpu) and STEP_BACKEND (default: the group's) let scripts/gpu-check.sh run
 * it on CUDA tensors.
 */
import * as fs from 'fs';
import { native, type NativeBatch, type NativeGroupOptions } from '../../lib/native';
import { resolveGroup } from '../../lib/learn/distributed';

const [out, lrsArg, overlapArg] = process.argv.slice(2);
const N = 8; // the union batch
const SIZE = 32;
const CLASSES = 4;

/** Deterministic pixels and labels of union batch `step`. */
function unionBatch(step: number): { images: Uint8Array; labels: Int32Array } {
  const images = new Uint8Array(N * SIZE * SIZE * 3);
  let x = 12345 + step * 7919;
  for (let i = 0; i < images.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    images[i] = x >> 16 & 255;
  }
  return { images, labels: Int32Array.from({ length: N }, (_, i) => (i + step) % CLASSES) };
}

function slice(step: number, rank: number, world: number): NativeBatch {
  const { images, labels } = unionBatch(step);
  const per = N / world;
  const item = SIZE * SIZE * 3;
  return { images: images.slice(rank * per * item, (rank + 1) * per * item), n: per, h: SIZE, w: SIZE, labels: labels.slice(rank * per, (rank + 1) * per) };
}

async function main(): Promise<void> {
  const group = resolveGroup('env');
  const learner = new (native().Learner)({ arch: 'resnet18', numClasses: CLASSES, device: process.env.STEP_DEVICE ?? 'cpu', optimizer: 'sgd', weightDecay: 0, seed: 7, frozenBatchNorm: true });
  const backend = (process.env.STEP_BACKEND as NativeGroupOptions["backend"] | undefined) ?? group?.backend;
  if (group) await learner.joinGroup({ ...group, backend: backend!, overlap: overlapArg !== '0' });
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  const dump = async (step: number | 'init') => {
    const weights = (await learner.weights()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    fs.writeFileSync(`${out}.${step}.bin`, Buffer.concat(weights.map(({ data }) => Buffer.from(data.buffer, data.byteOffset, data.byteLength))));
  };
  await dump('init');
  const losses: number[] = [];
  const lrs = lrsArg.split(',').map(Number);
  for (let step = 0; step < lrs.length; step++) {
    const { loss } = await learner.trainStep(slice(step, rank, world), { lrs: [lrs[step]], mom: 0 });
    losses.push(loss);
    await dump(step);
  }
  fs.writeFileSync(out, JSON.stringify({ rank, world, losses }));
  learner.dispose();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
