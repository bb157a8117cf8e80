/**
 * torchts-train end to end: the CLI as a child process in a temporary folder,
 * on a tiny real dataset (4 Fashion-MNIST classes from Debian's idx files),
 * with the real addon and real sharp.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import sharp from 'sharp';
import * as tar from 'tar';
import { makeFashionMnistFolder } from '../../scripts/fashion-mnist';
import { parseCsv } from '../../lib/report/logs';
import { nativeInternals } from '../../lib/native-internal';
import { runPython } from '../helpers/python';
import { evaluateConfigFrom } from '../../lib/cli/evaluate';
import { augmentOptions } from '../../lib/cli/train';
import { runCli, startCli, tempDir, waitForOutput, type CliResult } from './run-cli';
import { decodeTransformed } from '../../lib/data/decode';
import { predictionRequest } from '../../lib/learn';
import { ONNX_OPSETS } from '../../lib/export/onnx';

const KEEP = ['Bag', 'Sneaker', 'T-shirt_top', 'Trouser'];
/** Small and fast: 96 training and 32 validation images, 16 px, batches of 16. */
const TINY = ['--arch', 'xresnet18', '--size', '16', '--bs', '16', '--seed', '7', '--device', 'cpu'];

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function explain(r: CliResult): string {
  return `exit ${r.code} (${r.signal})\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

async function assertImage(file: string, format: 'svg' | 'png'): Promise<void> {
  const meta = await sharp(file).metadata();
  assert.equal(meta.format, format, file);
  assert.ok((meta.width ?? 0) > 100 && (meta.height ?? 0) > 100, `${file} has a sensible size`);
}

describe('torchts-train (CLI, end to end)', function () {
  this.timeout(180_000);
  let tmp: ReturnType<typeof tempDir>;
  let data: string;
  let run: string;
  let trained: CliResult;

  before(async () => {
    tmp = tempDir('torchts-cli-');
    data = path.join(tmp.dir, 'tiny');
    await makeFashionMnistFolder(data, { trainPerClass: 24, validPerClass: 8, seed: 1 });
    for (const split of ['train', 'val']) {
      for (const c of fs.readdirSync(path.join(data, split))) {
        if (!KEEP.includes(c)) fs.rmSync(path.join(data, split, c), { recursive: true });
      }
    }
    run = path.join(tmp.dir, 'run');
    trained = await runCli(['--data', data, ...TINY, '--epochs', '2', '--tta', '--out', run], tmp.dir);
  });
  after(() => tmp.remove());

  describe('train', () => {
    it('exits 0 and prints the device line, the epoch table and a summary', () => {
      assert.equal(trained.code, 0, explain(trained));
      const out = lines(trained.stdout);
      assert.match(out[0], /^torchts .* \| libtorch \d+\.\d+\.\d+ .*\| device cpu \|/);
      const header = out.findIndex((l) => l === 'epoch  train_loss  valid_loss  accuracy  time');
      assert.ok(header > 0, trained.stdout);
      const rows = out.filter((l) => /^\d+\s{2,}\d+\.\d{6}\s+\d+\.\d{6}\s+\d\.\d{6}\s+\d\d:\d\d$/.test(l));
      assert.deepEqual(rows.map((r) => r.split(/\s+/)[0]), ['0', '1']);
      assert.match(trained.stdout, /accuracy \d\.\d{4} \| with TTA \d\.\d{4} \| valid loss/);
      assert.ok(trained.stdout.includes(`run folder: `));
      assert.ok(trained.stdout.includes('resume') === false);
    });

    it('shows plain progress lines (not a terminal): pass, percent, i/N, img/s, elapsed<remaining, loss', () => {
      assert.doesNotMatch(trained.stdout, /\r/);
      assert.match(trained.stdout, /^train 100% 6\/6 \d+(\.\d)? img\/s \d\d:\d\d<00:00 loss \d+\.\d{4}$/m);
      assert.match(trained.stdout, /^valid 100% 2\/2 .* loss \d+\.\d{4}$/m);
    });

    it('writes config, per-epoch metrics, checkpoints, results and charts', async () => {
      const config = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
      assert.equal(config.arch, 'xresnet18');
      assert.equal(config.epochs, 2);
      assert.equal(config.size, 16);
      assert.equal(config.data, data);
      const metrics = JSON.parse(fs.readFileSync(path.join(run, 'metrics.json'), 'utf8'));
      assert.equal(metrics.length, 2);
      for (const m of metrics) {
        assert.ok(m.train_loss > 0 && m.valid_loss > 0 && m.accuracy >= 0 && m.accuracy <= 1 && m.time > 0, JSON.stringify(m));
      }
      const csv = parseCsv(fs.readFileSync(path.join(run, 'metrics.csv'), 'utf8'));
      assert.deepEqual(csv[0].slice(0, 4), ['epoch', 'train_loss', 'valid_loss', 'accuracy']);
      assert.equal(Number(csv[2][3]), metrics[1].accuracy);
      for (const f of ['last.tsl', 'last.tsl.json', 'best.tsl', 'best.tsl.json']) assert.ok(fs.statSync(path.join(run, f)).size > 0, f);
      const results = JSON.parse(fs.readFileSync(path.join(run, 'results.json'), 'utf8'));
      assert.equal(results.accuracy, metrics[1].accuracy, 'the final validation is the last epoch');
      assert.ok(results.ttaAccuracy >= 0 && results.ttaAccuracy <= 1);
      assert.deepEqual(results.classes, KEEP);
      assert.equal(results.confusion.flat().reduce((a: number, b: number) => a + b, 0), 32);
      for (const chart of ['loss', 'schedule', 'accuracy', 'confusion']) {
        await assertImage(path.join(run, `${chart}.svg`), 'svg');
        await assertImage(path.join(run, `${chart}.png`), 'png');
      }
    });
  });

  describe('predict and evaluate', () => {
    const images = () => KEEP.slice(0, 3).map((c) => {
      const dir = path.join(data, 'val', c);
      return path.join(dir, fs.readdirSync(dir)[0]);
    });

    it('predict prints the top K classes as JSON, most probable first', async () => {
      const r = await runCli(['predict', '--model', run, '--top', '2', '--json', '--device', 'cpu', ...images()], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const predictions = JSON.parse(r.stdout);
      assert.equal(predictions.length, 3);
      for (const [i, p] of predictions.entries()) {
        assert.equal(p.file, images()[i]);
        assert.equal(p.top.length, 2);
        assert.ok(KEEP.includes(p.top[0].label));
        assert.ok(p.top[0].probability >= p.top[1].probability && p.top[0].probability <= 1);
      }
    });

    it('predict prints a table, with TTA too', async () => {
      const r = await runCli(['predict', '--model', path.join(run, 'best.tsl'), '--tta', '--device', 'cpu', ...images()], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const out = lines(r.stdout);
      assert.match(out[0], /^file\s+prediction$/);
      assert.equal(out.length, 4);
      assert.match(out[1], /^tiny\/val\/Bag\/\d+\.png\s+(Bag|Sneaker|T-shirt_top|Trouser) \(\d\.\d{4}\)$/);
    });

    it('evaluate reports the same accuracy as training, per class, a confusion matrix, and TTA', async () => {
      const out = path.join(tmp.dir, 'eval');
      const r = await runCli(['evaluate', '--model', run, '--tta', '--device', 'cpu', '--out', out], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const results = JSON.parse(fs.readFileSync(path.join(run, 'results.json'), 'utf8'));
      assert.match(r.stdout, new RegExp(`^accuracy ${results.accuracy.toFixed(4)} on 32 images`, 'm'));
      assert.match(r.stdout, /^accuracy with TTA \d\.\d{4}$/m);
      for (const c of KEEP) assert.match(r.stdout, new RegExp(`^${c}\\s+8\\s+\\d\\.\\d{4}\\s+\\d\\.\\d{4}$`, 'm'));
      assert.match(r.stdout, /confusion matrix \(rows: actual, columns: predicted\)/);
      const evaluation = JSON.parse(fs.readFileSync(path.join(out, 'evaluation.json'), 'utf8'));
      assert.deepEqual(evaluation.confusion, results.confusion);
      await assertImage(path.join(out, 'confusion.png'), 'png');
      await assertImage(path.join(out, 'confusion-tta.svg'), 'svg');
    });

    it("evaluate makes pixels as the run did: its augmentation for TTA views, its presize on its own data", async () => {
      const fake = fs.mkdtempSync(path.join(tmp.dir, 'fake-run-'));
      const config = { command: 'train', data, dataName: 'fashion-mnist (bundled)', augment: 'light', seed: 7 };
      fs.writeFileSync(path.join(fake, 'config.json'), JSON.stringify(config));
      fs.copyFileSync(path.join(run, 'last.tsl'), path.join(fake, 'last.tsl'));
      fs.copyFileSync(path.join(run, 'last.tsl.json'), path.join(fake, 'last.tsl.json'));
      const own = await evaluateConfigFrom({ model: fake });
      assert.deepEqual(own.pixels.augment, augmentOptions('light'));
      assert.equal(own.pixels.presize?.(16), 28);
      const other = await evaluateConfigFrom({ model: fake, data: path.join(data, '..', path.basename(data) + '-copy') }).catch((e: Error) => e);
      assert.ok(other instanceof Error, 'a missing --data folder is refused');
      fs.cpSync(data, path.join(tmp.dir, 'tiny-copy'), { recursive: true });
      const elsewhere = await evaluateConfigFrom({ model: fake, data: path.join(tmp.dir, 'tiny-copy') });
      assert.deepEqual(elsewhere.pixels.augment, augmentOptions('light'));
      assert.equal(elsewhere.pixels.presize, undefined);
    });
  });

  describe('lr-find and experiments', () => {
    it('lr-find prints a suggestion and writes the plot', async () => {
      const out = path.join(tmp.dir, 'lr');
      const r = await runCli(['lr-find', '--data', data, ...TINY, '--num-it', '12', '--out', out], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const m = /suggested lr \(valley\): (\S+)/.exec(r.stdout);
      assert.ok(m && Number(m[1]) > 1e-7 && Number(m[1]) < 10, r.stdout);
      await assertImage(path.join(out, 'lr-find.svg'), 'svg');
      await assertImage(path.join(out, 'lr-find.png'), 'png');
      assert.equal(parseCsv(fs.readFileSync(path.join(out, 'lr-find.csv'), 'utf8')).length, 13);
    });

    it('experiments runs the ablation and writes the comparison table and chart', async () => {
      const out = path.join(tmp.dir, 'exp');
      const r = await runCli(['experiments', '--data', data, ...TINY, '--epochs', '2', '--out', out], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const rows = parseCsv(fs.readFileSync(path.join(out, 'experiments.csv'), 'utf8'));
      assert.deepEqual(rows[0], ['experiment', 'what', 'accuracy', 'valid_loss', 'time_s']);
      assert.deepEqual(rows.slice(1).map((row) => row[0]), ['baseline', 'normalize', 'progressive', 'progressive+tta', 'mixup', 'label-smoothing']);
      for (const row of rows.slice(1)) assert.ok(Number(row[2]) >= 0 && Number(row[2]) <= 1 && Number(row[4]) > 0, row.join(','));
      const md = fs.readFileSync(path.join(out, 'experiments.md'), 'utf8');
      assert.match(md, /^\| experiment\s+\| what/m);
      assert.equal(md.split('\n').filter((l) => l.startsWith('| ')).length, 8);
      await assertImage(path.join(out, 'experiments.svg'), 'svg');
      await assertImage(path.join(out, 'experiments.png'), 'png');
      for (const name of ['baseline', 'normalize', 'progressive', 'mixup', 'label-smoothing']) {
        assert.ok(fs.existsSync(path.join(out, name, 'metrics.json')), name);
      }
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'baseline', 'config.json'), 'utf8')).normalize, 'none');
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'progressive', 'config.json'), 'utf8')).phases, [{ size: 8, epochs: 1 }, { size: 16, epochs: 1 }]);
    });
  });

  describe('--pretrained', () => {
    it('fine-tunes torchvision weights: a frozen epoch, then the whole model, with ImageNet stats', async () => {
      const weights = path.join(tmp.dir, 'resnet18.pth');
      await runPython('import sys, torch, torchvision\ntorch.manual_seed(0)\ntorch.save(torchvision.models.resnet18().state_dict(), sys.argv[1])', { args: [weights] });
      const out = path.join(tmp.dir, 'finetuned');
      const r = await runCli(['--data', data, ...TINY.map((a) => (a === 'xresnet18' ? 'resnet18' : a)), '--epochs', '1', '--pretrained', weights, '--out', out], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /resnet18 \| 1 epoch at 16 px, fine-tuning resnet18\.pth/);
      const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
      assert.equal(config.normalize, 'imagenet');
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).length, 2, 'one frozen epoch, then one unfrozen');
    });
  });

  describe('--data by name', () => {
    it('downloads a named dataset once (from a local server) and trains on it', async () => {
      const pack = path.join(tmp.dir, 'pack');
      fs.cpSync(data, path.join(pack, 'imagenette2-160'), { recursive: true });
      const archive = path.join(tmp.dir, 'imagenette2-160.tgz');
      await tar.c({ gzip: true, file: archive, cwd: pack }, ['imagenette2-160']);
      const requests: string[] = [];
      const server = http.createServer((req, res) => {
        requests.push(req.url ?? '');
        if (req.url !== '/imagenette2-160.tgz') return void res.writeHead(404).end();
        const body = fs.readFileSync(archive);
        res.writeHead(200, { 'content-length': body.length }).end(body);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const env = { TORCHTS_HOME: path.join(tmp.dir, 'home'), TORCHTS_DATA_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
        const out = path.join(tmp.dir, 'named');
        const r = await runCli(['--data', 'imagenette2-160', ...TINY, '--epochs', '1', '--out', out], tmp.dir, env);
        assert.equal(r.code, 0, explain(r));
        assert.match(r.stdout, /^data: imagenette2-160 \| 4 classes \| 96 train, 32 valid images/m);
        const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
        assert.equal(config.dataName, 'imagenette2-160');
        assert.equal(config.data, path.join(tmp.dir, 'home', 'data', 'imagenette2-160'));
        assert.deepEqual(requests, ['/imagenette2-160.tgz']);
      } finally {
        server.close();
      }
    });
  });

  describe('a diverging fit', () => {
    it('a NaN loss ends the run naming the epoch and the batch, and exports no model', async () => {
      const out = path.join(tmp.dir, 'diverged');
      const result = await runCli(['--data', data, ...TINY, '--epochs', '1', '--lr', '1e9', '--out', out], tmp.dir);
      assert.equal(result.code, 1, explain(result));
      assert.match(result.stderr, /error: epoch 1\/1, batch \d+\/\d+: torchts: loss is NaN at this step/);
      assert.ok(!fs.existsSync(path.join(out, 'best.tsl')) && !fs.existsSync(path.join(out, 'last.tsl')));
    });
  });

  describe('kill -9', () => {
    it('--resume continues from the checkpoint saved after the last complete epoch, and clears what the kill left half-written', async () => {
      const out = path.join(tmp.dir, 'killed');
      const started = startCli(['--data', data, ...TINY, '--epochs', '3', '--out', out], tmp.dir);
      const autosave = path.join(out, 'checkpoint.tsl');
      for (const start = Date.now(); !fs.existsSync(autosave); ) {
        if (started.child.exitCode !== null || Date.now() - start > 60_000) throw new Error(`no checkpoint.tsl:\n${started.stdout}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      started.child.kill('SIGKILL');
      await started.done;
      // What a kill during a write leaves: a temporary of a process that is gone.
      const stale = path.join(out, 'best.tsl.tmp-2147483646-0');
      fs.writeFileSync(stale, 'half a checkpoint');
      const exported = await runCli(['--resume', path.join(out, 'best.tsl')], tmp.dir);
      assert.equal(exported.code, 2, explain(exported));
      assert.match(exported.stderr, /best\.tsl is an exported model, not a resumable checkpoint; expected interrupted\.tsl .* or checkpoint\.tsl/);
      const resumed = await runCli(['--resume', autosave], tmp.dir);
      assert.equal(resumed.code, 0, explain(resumed));
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).length, 3);
      assert.ok(!fs.existsSync(stale), 'the stale temporary is removed');
      assert.ok(!fs.existsSync(autosave) && fs.existsSync(path.join(out, 'last.tsl')));
    });
  });

  describe('kill -9 at seeded random moments', () => {
    it('never leaves a partial file under a final name, and --resume always finishes the run', async () => {
      let seed = 2026;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      let resumes = 0;
      for (let round = 0; round < 3; round++) {
        const out = path.join(tmp.dir, `random-kill-${round}`);
        const autosave = path.join(out, 'checkpoint.tsl');
        const started = startCli(['--data', data, ...TINY, '--epochs', '3', '--out', out], tmp.dir);
        // After the first epoch's checkpoint, at a random moment of the later epochs: mid-step,
        // mid-save of a checkpoint, of best.tsl or of the metrics.
        while (!fs.existsSync(autosave) && started.child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
        const delay = random() * 2500;
        await new Promise((r) => setTimeout(r, delay));
        started.child.kill('SIGKILL');
        const killed = await started.done;
        if (killed.code === 0) continue; // it finished first
        for (const name of fs.readdirSync(out)) {
          const file = path.join(out, name);
          if (name.endsWith('.tsl')) assert.doesNotThrow(() => nativeInternals().readCheckpoint(file), `${name} after a kill ${delay.toFixed(0)} ms after the first epoch`);
          if (name.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(fs.readFileSync(file, 'utf8')), `${name} after a kill ${delay.toFixed(0)} ms after the first epoch`);
        }
        const resumed = await runCli(['--resume', autosave], tmp.dir);
        assert.equal(resumed.code, 0, `kill ${delay.toFixed(0)} ms after the first epoch: ${explain(resumed)}`);
        assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).length, 3);
        assert.deepEqual(fs.readdirSync(out).filter((n) => /\.tmp/.test(n)), [], 'no temporary is left');
        resumes++;
      }
      assert.ok(resumes >= 2, `only ${resumes} of 3 runs were still running when killed`);
    });
  });

  describe('export', () => {
    const image = () => {
      const dir = path.join(data, 'val', 'Bag');
      return path.join(dir, fs.readdirSync(dir)[0]);
    };

    it('export writes RUN/last.onnx, which onnxruntime-node runs with the probabilities predict prints', async () => {
      const r = await runCli(['export', '--model', run, '--probabilities'], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      const file = path.join(run, 'last.onnx');
      assert.match(r.stdout, /^wrote run\/last\.onnx: ONNX opset 17, input "images" uint8 \[batch, 16, 16, 3\], outputs "logits", "probabilities"$/m);
      assert.ok(r.stdout.includes(`classes (also in the file's metadata, "classes"): ${JSON.stringify(KEEP)}`), r.stdout);
      const predicted = await runCli(['predict', '--model', run, '--top', '4', '--json', '--device', 'cpu', image()], tmp.dir);
      assert.equal(predicted.code, 0, explain(predicted));
      const [answer] = JSON.parse(predicted.stdout) as { top: { label: string; probability: number }[] }[];
      const ort = await import('onnxruntime-node');
      const session = await ort.InferenceSession.create(file);
      const { pixels } = await decodeTransformed(image(), predictionRequest(16));
      const out = await session.run({ images: new ort.Tensor('uint8', Uint8Array.from(pixels), [1, 16, 16, 3]) });
      const probs = out.probabilities.data as Float32Array;
      for (const { label, probability } of answer.top) {
        assert.ok(Math.abs(probs[KEEP.indexOf(label)] - probability) <= 1e-4, `${label}: ${probs[KEEP.indexOf(label)]} vs ${probability}`);
      }
      await session.release();
    });

    it('export --format pth writes a state_dict in the layout of the arch (fastai for xresnet)', async () => {
      const out = path.join(tmp.dir, 'weights.pth');
      const r = await runCli(['export', '--model', path.join(run, 'best.tsl'), '--format', 'pth', '--out', out], tmp.dir);
      assert.equal(r.code, 0, explain(r));
      assert.match(r.stdout, /^wrote weights\.pth: \d+ tensors, fastai names$/m);
      const names = await runPython(`import torch, sys\nprint(sorted(torch.load(sys.argv[1]).keys())[:2])`, { args: [out] });
      assert.match(names, /'0\.0\.weight', '0\.1\.bias'/);
    });

    const refusals: [string, string[], RegExp][] = [
      ['an unknown format', ['--format', 'tflite'], /^torchts-train: --format: expected one of onnx, pth, got "tflite"$/m],
      ['graph flags with pth', ['--format', 'pth', '--opset', '13'], /^torchts-train: --opset: only with --format onnx/m],
      ['an opset out of range', ['--opset', '9'], new RegExp(`^torchts-train: --opset: expected an integer in ${ONNX_OPSETS.min}\\.\\.${ONNX_OPSETS.max}, got "9"$`, 'm')],
      ['a uint8 input without normalisation', ['--no-normalization'], /^torchts-train: --no-normalization: only with --input float/m],
    ];
    for (const [what, flags, message] of refusals) {
      it(`export refuses ${what} with exit 2, writing nothing`, async () => {
        const out = path.join(tmp.dir, `refused-${what.replace(/\W+/g, '-')}.onnx`);
        const r = await runCli(['export', '--model', run, '--out', out, ...flags], tmp.dir);
        assert.equal(r.code, 2, explain(r));
        assert.match(r.stderr, message);
        assert.ok(!fs.existsSync(out));
      });
    }
  });

  describe('one run per folder', () => {
    it('two runs started into one --out at once: one trains, the other stops with exit 2 and writes nothing', async () => {
      const out = path.join(tmp.dir, 'contested');
      const flags = ['--data', data, ...TINY, '--epochs', '1', '--out', out];
      const results = await Promise.all([runCli(flags, tmp.dir), runCli(flags, tmp.dir)]);
      const codes = results.map((r) => r.code).sort();
      assert.deepEqual(codes, [0, 2], results.map(explain).join('\n'));
      const loser = results.find((r) => r.code === 2)!;
      assert.match(loser.stderr, /--out: .*(is in use by another run \(process \d+\)|is not empty)/);
      assert.ok(!fs.existsSync(path.join(out, '.torchts.lock')), 'the lock is released');
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).length, 1, "one run's metrics");
    });
  });

  describe('SIGINT and --resume', () => {
    it('stops with a checkpoint and exit 130; --resume gives the uninterrupted result', async () => {
      const flags = ['--data', data, ...TINY, '--epochs', '4', '--mixup'];
      const whole = await runCli([...flags, '--out', path.join(tmp.dir, 'whole')], tmp.dir);
      assert.equal(whole.code, 0, explain(whole));

      const interruptedRun = path.join(tmp.dir, 'cut-before-move');
      const started = startCli([...flags, '--out', interruptedRun], tmp.dir);
      // Interrupt during the second epoch: the first table row is out.
      await waitForOutput(started, (s) => /^0\s{2,}\d/m.test(s));
      started.child.kill('SIGINT');
      const stopped = await started.done;
      assert.equal(stopped.code, 130, explain(stopped));
      assert.ok(fs.existsSync(path.join(interruptedRun, 'interrupted.tsl')));
      assert.ok(stopped.stdout.includes(`resume with: npx torchts-train --resume ${path.relative(tmp.dir, path.join(interruptedRun, 'interrupted.tsl'))}`), stopped.stdout);
      assert.ok(!fs.existsSync(path.join(interruptedRun, 'last.tsl')), 'an interrupted run has no final model');
      // A run folder may be moved before it is resumed: the run continues where its checkpoint is.
      const cut = path.join(tmp.dir, 'cut');
      fs.renameSync(interruptedRun, cut);
      const checkpoint = path.join(cut, 'interrupted.tsl');

      const resumed = await runCli(['--resume', checkpoint], tmp.dir);
      assert.equal(resumed.code, 0, explain(resumed));
      const a = JSON.parse(fs.readFileSync(path.join(tmp.dir, 'whole', 'metrics.json'), 'utf8'));
      const b = JSON.parse(fs.readFileSync(path.join(cut, 'metrics.json'), 'utf8'));
      assert.equal(b.length, 4);
      for (let i = 0; i < 4; i++) {
        for (const key of ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'size', 'bs']) {
          assert.ok(Math.abs(a[i][key] - b[i][key]) < 1e-5, `epoch ${i} ${key}: ${a[i][key]} vs ${b[i][key]}`);
        }
      }
      assert.ok(!fs.existsSync(checkpoint), 'the used checkpoint is removed after the run completes');
      assert.ok(fs.existsSync(path.join(cut, 'last.tsl')));
      assert.ok(!fs.existsSync(interruptedRun), 'nothing is written to where the run was before');
    });
  });

  describe('bad input: one line naming the flag, exit 2, nothing written', () => {
    const cases: [string, (d: string) => string[], RegExp][] = [
      ['an unknown flag', () => ['--bogus', '3'], /^torchts-train: --bogus: unknown option/],
      ['an unknown command', () => ['frobnicate'], /^torchts-train: frobnicate: unknown command; expected one of train, predict/],
      ['a negative lr', () => ['--lr', '-0.1'], /^torchts-train: --lr: expected a number > 0, got "-0.1"$/],
      ['size 0', () => ['--size', '0'], /^torchts-train: --size: expected an integer in 8\.\.4096, got "0"$/],
      ['phases that do not parse', () => ['--phases', '64:2,128'], /^torchts-train: --phases: "128" does not parse; expected SIZE:EPOCHS\[@BS\]/],
      ['a file where a folder is needed', (d) => ['--data', path.join(d, 'tiny', 'train', 'Bag', fs.readdirSync(path.join(d, 'tiny', 'train', 'Bag'))[0])], /^torchts-train: --data: .* is a file; expected a folder$/],
      ['a missing dataset folder', (d) => ['--data', path.join(d, 'nope')], /^torchts-train: --data: .*nope does not exist; expected a folder$/],
      ['an unknown dataset name', () => ['--data', 'imagenet-21k'], /^torchts-train: --data: imagenet-21k is neither a folder nor a known dataset name/],
      ['a folder without images', (d) => ['--data', fs.mkdtempSync(path.join(d, 'empty-'))], /^torchts-train: --data: .*; expected an image folder/],
      ['an unknown arch', (d) => ['--data', path.join(d, 'tiny'), '--arch', 'vgg16'], /^torchts-train: --arch: unknown model "vgg16"; expected one of .*xresnet18/],
      ['an unwritable --out', (d) => ['--out', path.join(d, 'tiny', 'val', 'Bag', fs.readdirSync(path.join(d, 'tiny', 'val', 'Bag'))[0], 'run')], /^torchts-train: --out: .* cannot be created \(.* is a file\); expected a writable folder$/],
      ['predict without images', () => ['predict', '--model', 'x'], /^torchts-train: IMAGES: missing; expected at least one image file$/],
      ['predict with a missing model', (d) => ['predict', '--model', path.join(d, 'no-model'), path.join(d, 'config.json')], /^torchts-train: (--model|IMAGES): .* does not exist/],
      ['--resume with a missing checkpoint', (d) => ['--resume', path.join(d, 'x.tsl')], /^torchts-train: --resume: .* does not exist; expected a file$/],
    ];
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const cwd = fs.mkdtempSync(path.join(tmp.dir, 'cwd-'));
        const out = path.join(cwd, 'out');
        const argv = args(tmp.dir);
        const r = await runCli(argv.includes('--out') || argv[0] === 'predict' ? argv : [...argv, '--out', out], cwd);
        assert.equal(r.code, 2, explain(r));
        assert.equal(lines(r.stderr).length, 1, r.stderr);
        assert.match(r.stderr.trim(), message);
        assert.equal(r.stdout, '');
        assert.deepEqual(fs.readdirSync(cwd), [], 'nothing is written');
      });
    }
  });
});
