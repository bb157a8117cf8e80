/**
 * One process of scripts/bench/ddp.ts: a native Learner taking timed AdamW steps on synthetic
 * uint8 batches, alone or as one rank of a group (WORLD_SIZE in the environment). Prints one
 * JSON line: median step ms, and the seconds per step spent waiting for gradient all-reduces.
 *
 *   npx tsx scripts/bench/ddp_worker.ts ARCH SIZE BS WARMUP STEPS OVERLAP(0|1)
 */
import { resolveGroup } from '../../lib/learn/distributed';
import { native } from '../../lib/native';

async function main(): Promise<void> {
  const [arch, size, bs, warmup, steps, overlap] = process.argv.slice(2);
  const n = Number(bs);
  const side = Number(size);
  const learner = new (native().Learner)({ arch, numClasses: 10, device: 'cpu', seed: 0 });
  const group = resolveGroup('env');
  if (group) await learner.joinGroup({ ...group, overlap: overlap !== '0' });
  const images = new Uint8Array(n * side * side * 3).map((_, i) => (i * 2654435761) >>> 24);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const batch = { images, n, h: side, w: side, labels };
  const hyper = { lrs: [1e-3], mom: 0.9 };
  for (let i = 0; i < Number(warmup); i++) await learner.trainStep(batch, hyper);
  const before = await learner.groupStats();
  const times: number[] = [];
  for (let i = 0; i < Number(steps); i++) {
    const start = performance.now();
    await learner.trainStep(batch, hyper);
    times.push(performance.now() - start);
  }
  const after = await learner.groupStats();
  times.sort((a, b) => a - b);
  const waitPerStep = (after.gradientWaitSeconds - before.gradientWaitSeconds) / Number(steps);
  process.stdout.write(`${JSON.stringify({ rank: group?.rank ?? 0, medianMs: times[times.length >> 1], waitMs: waitPerStep * 1000 })}\n`);
  learner.dispose();
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
