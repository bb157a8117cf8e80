/**
 * Data-parallel training on c10d (Gloo on the CPU) with real processes over loopback, and over a
 * veth pair between two network namespaces: gradient parity with a single process, identical
 * weights on every rank, the CLI launcher, torchrun, faults and the rendezvous errors.
 */
import { strict as assert } from 'assert';
import { execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { promisify } from 'util';
import { trainShard } from '../../lib/data/loader';
import { resolveGroup } from '../../lib/learn/distributed';
import { rescalePlan, type StagePlan } from '../../lib/learn/plan';
import { native, type NativeGroupOptions, type NativeLearner } from '../../lib/native';
import { withoutLaunchFlags } from '../../lib/cli/launch';
import { PYTHON } from '../helpers/python';
import { isRoot, skipUnless } from '../helpers/skip';
import { ROOT, runCli, startCli, tempDir, waitForOutput, type CliResult } from '../cli/run-cli';

const WORKER = path.join(__dirname, 'step-worker.ts');
const TSX = require.resolve('tsx/cli', { paths: [ROOT] });

function explain(r: CliResult): string {
  return `exit ${r.code} (${r.signal})\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs step-worker.ts as one process with `env`; resolves when it exits 0. */
function runWorker(out: string, lrs: string, overlap: boolean, env: NodeJS.ProcessEnv, wrap: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = [...wrap, process.execPath, TSX, WORKER, out, lrs, overlap ? '1' : '0'];
    const child = spawn(cmd, args, { env: { ...process.env, TORCHTS_THREADS: '1', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`step-worker ${JSON.stringify(env)} exited ${code}: ${stderr}`))));
  });
}

function weights(out: string, step: number | 'init'): Float32Array {
  const bytes = fs.readFileSync(`${out}.${step}.bin`);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Two ranks of step-worker.ts on loopback. */
async function twoRanks(dir: string, lrs: string, overlap: boolean): Promise<[string, string]> {
  const port = await freePort();
  const outs: [string, string] = [path.join(dir, `r0-${overlap}.json`), path.join(dir, `r1-${overlap}.json`)];
  await Promise.all(outs.map((out, rank) => runWorker(out, lrs, overlap, { RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) })));
  return outs;
}

describe('data-parallel training (c10d, real processes)', function () {
  this.timeout(240_000);
  let tmp: ReturnType<typeof tempDir>;
  before(function () {
    skipUnless(this, native().info().features.includes('c10d-gloo'), 'this build of the addon has no c10d Gloo (install libgloo-dev and rebuild)');
    tmp = tempDir('torchts-ddp-');
  });
  after(() => tmp?.remove());

  describe('gradients and weights', () => {
    // Step 0 at lr 1 with plain SGD: the weight change is the gradient itself. Then 3 small steps.
    const LRS = '1,0.01,0.01,0.01';
    let single: string;
    before(async () => {
      single = path.join(tmp.dir, 'single.json');
      await runWorker(single, LRS, true, { WORLD_SIZE: '1', RANK: '0' });
    });

    for (const overlap of [true, false]) {
      it(`all-reduced gradients and weights equal one process on the union batch (${overlap ? 'buckets from backward hooks' : 'after backward'})`, async () => {
        const [r0, r1] = await twoRanks(tmp.dir, LRS, overlap);
        const change = (out: string) => {
          const [before, after] = [weights(out, 'init'), weights(out, 0)];
          return before.map((w, i) => w - after[i]);
        };
        const [gradSingle, gradRank] = [change(single), change(r0)];
        assert.ok(maxAbsDiff(gradSingle, gradRank) <= 1e-5, `gradient differs by ${maxAbsDiff(gradSingle, gradRank)}`);
        for (let step = 0; step < 4; step++) {
          const diff = maxAbsDiff(weights(single, step), weights(r0, step));
          assert.ok(diff <= 1e-5, `step ${step}: weights differ from one process by ${diff}`);
          assert.ok(fs.readFileSync(`${r0}.${step}.bin`).equals(fs.readFileSync(`${r1}.${step}.bin`)), `step ${step}: ranks hold different weights`);
        }
        const [a, b, s] = [r0, r1, single].map((f) => JSON.parse(fs.readFileSync(f, 'utf8')).losses as number[]);
        assert.deepEqual(a, b, 'every rank reports the same (mean) loss');
        a.forEach((loss, i) => assert.ok(Math.abs(loss - s[i]) < 1e-4 * Math.max(1, Math.abs(s[i])), `step ${i}: loss ${loss} vs ${s[i]}`));
      });
    }
  });

  describe('sharding', () => {
    it('pads the epoch permutation to a multiple of the world size and deals it out like DistributedSampler', () => {
      const order = [5, 3, 9, 0, 7, 1, 8];
      const shards = [0, 1, 2].map((rank) => trainShard(order, { rank, worldSize: 3 }));
      assert.deepEqual(shards, [
        [5, 0, 8],
        [3, 7, 5],
        [9, 1, 3],
      ]);
      assert.deepEqual(trainShard(order, { rank: 0, worldSize: 1 }), order);
    });

    it('rescales a saved plan to another number of steps per epoch, keeping the fraction done', () => {
      const schedule = { kind: 'constant' as const, totalSteps: 40, lrs: [1e-3], mom: 0.9 };
      const stages: StagePlan[] = [{ freezeTo: 0, schedule, epochs: [0, 1, 2, 3].map(() => ({ size: 28, bs: 32, phase: 0 })) }];
      const { stages: out, position } = rescalePlan(stages, { stage: 0, epochInStage: 2, batch: 5, stepInStage: 25, fitEpoch: 2, fitStep: 25 }, () => 10, () => 20);
      assert.equal(out[0].schedule.totalSteps, 80);
      assert.deepEqual(position, { stage: 0, epochInStage: 2, batch: 10, stepInStage: 50, fitEpoch: 2, fitStep: 50 });
    });

    it("reads torchrun's environment, its agent store included, and refuses bad values", () => {
      assert.equal(resolveGroup('env', {}), null);
      assert.equal(resolveGroup('env', { WORLD_SIZE: '1', RANK: '0' }), null);
      const group = resolveGroup('env', { WORLD_SIZE: '4', RANK: '3', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '1234', TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2', GLOO_SOCKET_IFNAME: 'eth1' })!;
      assert.deepEqual(
        { rank: group.rank, worldSize: group.worldSize, hostStore: group.hostStore, prefix: group.prefix, iface: group.iface, addr: group.masterAddr, port: group.masterPort },
        { rank: 3, worldSize: 4, hostStore: false, prefix: '/worker/attempt_2', iface: 'eth1', addr: '10.0.0.1', port: 1234 },
      );
      assert.throws(() => resolveGroup('env', { WORLD_SIZE: '2', RANK: 'x' }), /RANK=x: expected a whole number/);
      assert.throws(() => resolveGroup('env', { WORLD_SIZE: '2', RANK: '2' }), /rank: expected a whole number in \[0, 1\], got 2/);
      assert.throws(() => resolveGroup({ rank: 0, worldSize: 2, timeout: 0 }), /timeout: expected seconds >= 0.1, got 0/);
    });

    it('strips the launch flags from the command line the ranks get', () => {
      assert.deepEqual(withoutLaunchFlags(['--epochs', '2', '--nproc-per-node', '2', '--master-port=3', '--iface', 'lo', '--bs', '8']), ['--epochs', '2', '--bs', '8']);
    });
  });

  describe('rendezvous errors', () => {
    const learners: NativeLearner[] = [];
    const learner = () => {
      const l = new (native().Learner)({ arch: 'resnet18', numClasses: 2, device: 'cpu' });
      learners.push(l);
      return l;
    };
    afterEach(() => learners.splice(0).forEach((l) => l.dispose()));
    const group = (rank: number, worldSize: number, port: number, extra: Partial<NativeGroupOptions> = {}): NativeGroupOptions => ({
      ...resolveGroup({ rank, worldSize, masterPort: port, timeout: 2, joinTimeout: 1.5 })!,
      ...extra,
    });

    it('a missing rank: names how many joined and which are missing', async () => {
      const port = await freePort();
      await assert.rejects(learner().joinGroup(group(0, 2, port)), /rendezvous at 127\.0\.0\.1:\d+: 1 of 2 ranks joined within 1\.5 s \(missing: rank 1\)/);
    });

    it('a wrong world size: names both sizes', async () => {
      const port = await freePort();
      const results = await Promise.allSettled([learner().joinGroup(group(0, 2, port)), learner().joinGroup(group(1, 3, port))]);
      const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'joined'));
      assert.ok(messages.some((m) => /has world size 3 but another rank has 2; every rank needs the same WORLD_SIZE/.test(m)), messages.join('\n'));
    });

    it('a port in use: rank 0 says it cannot host the store there', async () => {
      const server = net.createServer().listen(0);
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as net.AddressInfo).port;
      try {
        await assert.rejects(learner().joinGroup(group(0, 2, port)), new RegExp(`rank 0 cannot host the store on port ${port} \\(is the port in use\\?`));
      } finally {
        server.close();
      }
    });

    it('an unreachable master: names the address the rank could not reach', async () => {
      const port = await freePort();
      await assert.rejects(learner().joinGroup(group(1, 2, port)), new RegExp(`cannot reach the store at 127\\.0\\.0\\.1:${port} within 1\\.5 s`));
    });

    it('a network interface that does not exist is named', async () => {
      const port = await freePort();
      const results = await Promise.allSettled([learner().joinGroup(group(0, 2, port)), learner().joinGroup(group(1, 2, port, { iface: 'nosuch0' }))]);
      const messages = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'joined'));
      assert.match(messages[1], /network interface 'nosuch0' cannot carry Gloo/);
      assert.match(messages[0], /rank 1 failed: network interface 'nosuch0'/);
    });
  });

  describe('torchts-train', () => {
    const FLAGS = ['--epochs', '2', '--augment', 'none', '--device', 'cpu'];
    let launched: CliResult;
    let runDir: string;
    before(async () => {
      runDir = path.join(tmp.dir, 'two-ranks');
      launched = await runCli([...FLAGS, '--nproc-per-node', '2', '--out', runDir], tmp.dir);
    });

    it('--nproc-per-node 2 trains one run: rank 0 writes the folder and speaks for the run', () => {
      assert.equal(launched.code, 0, explain(launched));
      assert.match(launched.stdout, /\| 2 data-parallel ranks, bs 32 each/);
      assert.equal(launched.stdout.match(/^accuracy /gm)?.length, 1, 'one summary');
      assert.ok(!/\[rank 1\] (accuracy|epoch)/.test(launched.stdout), 'rank 1 prints no table or summary');
      for (const f of ['config.json', 'metrics.csv', 'last.tsl', 'best.tsl', 'results.json', 'confusion.svg']) assert.ok(fs.existsSync(path.join(runDir, f)), f);
      const results = JSON.parse(fs.readFileSync(path.join(runDir, 'results.json'), 'utf8'));
      assert.equal(results.worldSize, 2);
      const confusionTotal = (results.confusion as number[][]).flat().reduce((s, v) => s + v, 0);
      assert.equal(confusionTotal, 500, 'the confusion matrix adds up every rank');
    });

    it("reports the whole validation set's accuracy: a single-process evaluate of its model gives the same", async () => {
      const evaluated = await runCli(['evaluate', '--model', runDir, '--json'], tmp.dir);
      assert.equal(evaluated.code, 0, explain(evaluated));
      const results = JSON.parse(fs.readFileSync(path.join(runDir, 'results.json'), 'utf8'));
      assert.equal(JSON.parse(evaluated.stdout).accuracy, results.accuracy);
    });

    it('reaches the accuracy of one process with the doubled batch (within 1.5 points)', async () => {
      const single = await runCli([...FLAGS, '--bs', '64', '--out', path.join(tmp.dir, 'one-rank')], tmp.dir);
      assert.equal(single.code, 0, explain(single));
      const acc = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')).accuracy as number;
      const [a, b] = [acc(runDir), acc(path.join(tmp.dir, 'one-rank'))];
      assert.ok(Math.abs(a - b) <= 0.015, `2 ranks ${a} vs 1 process ${b}`);
    });

    it('python3 -m torch.distributed.run --no_python launches the same run (agent store)', async () => {
      const torchrun = path.join(tmp.dir, 'torchrun');
      const cli = [process.execPath, '--import', 'tsx', path.join(ROOT, 'scripts', 'cli.ts')];
      // Debian's torchrun on Python 3.11 cannot parse its own default --redirects/--tee (0): name them.
      const args = ['-m', 'torch.distributed.run', '--no_python', '--nproc_per_node', '2', '--master_port', String(await freePort()), '--redirects', '1', '--tee', '1', ...cli];
      // torchrun's agent store and our client must speak the same TCPStore protocol: the torch
      // the addon was built against (pip's Python when it is that), else Debian's.
      const source = /^python torch \((.+)\)$/.exec(native().info().libtorchSource);
      const python = source ? source[1] : PYTHON;
      const { stdout } = await promisify(execFile)(python, [...args, ...FLAGS, '--out', torchrun], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
      assert.match(stdout, /run folder: /);
      const acc = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')).accuracy as number;
      assert.equal(acc(torchrun), acc(runDir), 'the same ranks, data and seed give the same result');
    });

    it('Ctrl-C on the launcher stops every rank with one checkpoint; one process resumes it', async () => {
      const dir = path.join(tmp.dir, 'interrupted');
      const started = startCli(['--epochs', '3', '--device', 'cpu', '--nproc-per-node', '2', '--out', dir], tmp.dir);
      await waitForOutput(started, (s) => /^0\s{2,}\d/m.test(s));
      started.child.kill('SIGINT');
      const stopped = await started.done;
      assert.equal(stopped.code, 130, explain(stopped));
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tsl')).sort(), ['best.tsl', 'checkpoint.tsl', 'interrupted.tsl']);
      assert.match(stopped.stdout, /resume with: npx torchts-train --nproc-per-node 2 --resume /);
      const resumed = await runCli(['--resume', path.join(dir, 'interrupted.tsl')], tmp.dir);
      assert.equal(resumed.code, 0, explain(resumed));
      assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'metrics.json'), 'utf8')).length, 3);
    });

    it('a killed rank ends the run in seconds with a line naming it, and leaves no process behind', async () => {
      const dir = path.join(tmp.dir, 'killed');
      const started = startCli(['--epochs', '3', '--device', 'cpu', '--nproc-per-node', '2', '--out', dir], tmp.dir);
      await waitForOutput(started, (s) => /train\s+\d+%/.test(s));
      const rank1 = ranksOf(dir).find((p) => p.rank === '1')!;
      const killedAt = Date.now();
      process.kill(rank1.pid, 'SIGKILL');
      const result = await started.done;
      assert.ok(Date.now() - killedAt < 30_000, 'ended within 30 s');
      assert.equal(result.code, 1, explain(result));
      assert.match(result.stderr, /rank 1 was killed by SIGKILL; stopping the other ranks/);
      assert.deepEqual(ranksOf(dir), [], 'no rank outlives the launcher');
    });

    it('a rank that dies without a launcher is named by the survivor', async () => {
      const port = String(await freePort());
      const dir = path.join(tmp.dir, 'alone');
      const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_PORT: port, TORCHTS_THREADS: '1' });
      const r0 = startCli(['--epochs', '3', '--device', 'cpu', '--out', dir], tmp.dir, env(0));
      const r1 = startCli(['--epochs', '3', '--device', 'cpu', '--out', dir], tmp.dir, env(1));
      await waitForOutput(r0, (s) => /train\s+\d+%/.test(s));
      const killedAt = Date.now();
      r1.child.kill('SIGKILL');
      const result = await r0.done;
      assert.ok(Date.now() - killedAt < 30_000);
      assert.equal(result.code, 1, explain(result));
      assert.match(result.stderr, /rank 1 stopped responding \(its process died or hung\) during .*step \d+.*; this is rank 0 of 2/);
      assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
    });

    it('a hung rank (SIGSTOP) ends the other after --dist-timeout, naming it', async () => {
      const port = String(await freePort());
      const dir = path.join(tmp.dir, 'hung');
      const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_PORT: port, TORCHTS_THREADS: '1', TORCHTS_DIST_TIMEOUT: '4' });
      const r0 = startCli(['--epochs', '3', '--device', 'cpu', '--out', dir], tmp.dir, env(0));
      const r1 = startCli(['--epochs', '3', '--device', 'cpu', '--out', dir], tmp.dir, env(1));
      await waitForOutput(r0, (s) => /train\s+\d+%/.test(s));
      r1.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      const result = await r0.done;
      r1.child.kill('SIGKILL');
      await r1.done;
      const seconds = (Date.now() - stoppedAt) / 1000;
      assert.ok(seconds >= 3.5 && seconds < 30, `ended after ${seconds} s`);
      assert.match(result.stderr, /rank 1 stopped responding \(its process died or hung\)/);
    });
  });

  describe('two hosts: network namespaces joined by a veth pair', () => {
    const NS = ['torchts-a', 'torchts-b'];
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    before(function () {
      skipUnless(this, isRoot(), 'network namespaces need root');
      let hasIp = true;
      try {
        ip('netns', 'list');
      } catch {
        hasIp = false;
      }
      skipUnless(this, hasIp, "iproute2's ip netns is not available (apt install iproute2)");
      for (const ns of NS) execFileSync('sh', ['-c', `ip netns del ${ns} 2>/dev/null || true`]);
      NS.forEach((ns) => ip('netns', 'add', ns));
      ip('link', 'add', 'tsveth0', 'type', 'veth', 'peer', 'name', 'tsveth1');
      NS.forEach((ns, i) => {
        ip('link', 'set', `tsveth${i}`, 'netns', ns);
        ip('-n', ns, 'addr', 'add', `10.231.0.${i + 1}/24`, 'dev', `tsveth${i}`);
        ip('-n', ns, 'link', 'set', `tsveth${i}`, 'up');
        ip('-n', ns, 'link', 'set', 'lo', 'up');
      });
    });
    after(() => {
      for (const ns of NS) execFileSync('sh', ['-c', `ip netns del ${ns} 2>/dev/null || true`]);
    });

    it('one rank in each namespace, MASTER_ADDR the first one, interfaces named: they train together', async () => {
      const outs = [0, 1].map((rank) => path.join(tmp.dir, `host${rank}.json`));
      await Promise.all(
        outs.map((out, rank) =>
          runWorker(out, '1,0.01', true, { RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '10.231.0.1', MASTER_PORT: '29533', GLOO_SOCKET_IFNAME: `tsveth${rank}` }, ['ip', 'netns', 'exec', NS[rank]]),
        ),
      );
      const single = path.join(tmp.dir, 'single-host.json');
      await runWorker(single, '1,0.01', true, { WORLD_SIZE: '1', RANK: '0' });
      for (const step of [0, 1]) {
        assert.ok(fs.readFileSync(`${outs[0]}.${step}.bin`).equals(fs.readFileSync(`${outs[1]}.${step}.bin`)), `step ${step}: identical weights on both hosts`);
        assert.ok(maxAbsDiff(weights(single, step), weights(outs[0], step)) <= 1e-5);
      }
    });
  });
});

/** The launched ranks (TORCHTS_LAUNCHER and RANK in their environment) writing to run folder `out`, wherever they were reparented. */
function ranksOf(out: string): { pid: number; rank: string }[] {
  const found: { pid: number; rank: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(out)) continue;
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const rank = env.find((v) => v.startsWith('RANK='));
      if (env.some((v) => v.startsWith('TORCHTS_LAUNCHER=')) && rank) found.push({ pid: Number(entry), rank: rank.slice(5) });
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}
