/**
 * Export to ONNX, checked by onnxruntime-node, and to PyTorch, checked by Debian's PyTorch 1.13:
 * every architecture, briefly trained so that its folded BatchNorms and residual branches
 * matter, gives torchts's own probabilities and logits on the same uint8 images in both (a
 * strict load_state_dict into torchvision's resnet, or a model with fastai's xresnet tree,
 * test/helpers/fastai_xresnet.py). For ONNX, each option changes the graph as documented; the file's header and
 * metadata read back through the schema; and what cannot be exported is refused, naming why.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { imageFolder, type ImageDataLoaders } from '../../lib/data';
import { native, type NativeWeight } from '../../lib/native';
import { Learner } from '../../lib/learn';
import { ONNX_EXPORT_DEFAULTS, exportOnnx, type ExportSource, type OnnxExportOptions, type OnnxExportReport } from '../../lib/export/onnx';
import { decodeOnnxModel, encodeOnnxModel, type OnnxModel } from '../../lib/export/onnx-proto';
import { exportPyTorch } from '../../lib/export/pytorch';
import { runPythonJson } from '../helpers/python';
import { TEST_DEVICE } from '../helpers/device';
import { removeDir, tempDir } from '../helpers/images';
import {
  ARCHS,
  TRAIN_SIZE,
  assertTrained,
  makeExportData,
  maxAbsDiff,
  maxScaledDiff,
  normalizeNchw,
  probeImages,
  softmaxRows,
  sourceOf,
  toUnitNchw,
  trainBriefly,
} from './helpers';

/** The bound the brief sets on probabilities; logits are held to it scaled by 1 + |logit|. */
const TOLERANCE = 1e-4;
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

async function runUint8(session: ort.InferenceSession, images: Uint8Array, n: number, h: number, w: number): Promise<ort.InferenceSession.OnnxValueMapType> {
  return session.run({ images: new ort.Tensor('uint8', images, [n, h, w, 3]) });
}

/** Python: loads the pth export into the stock model (strictly) and prints its logits on the images. */
const PYTORCH_PEER = `
import json, sys, importlib.util
import numpy as np, torch, torchvision
arch, file, images, n, size, classes, norm, helper = sys.argv[1:9]
n, size, classes, norm = int(n), int(size), int(classes), json.loads(norm)
if arch.startswith('xresnet'):
    spec = importlib.util.spec_from_file_location('fastai_xresnet', helper)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    model = module.xresnet(int(arch[7:]), classes)
else:
    model = getattr(torchvision.models, arch)(num_classes=classes)
state = torch.load(file)
model.load_state_dict(state)  # strict: every name and shape must match
model.eval()
x = torch.from_numpy(np.fromfile(images, dtype=np.uint8).reshape(n, size, size, 3)).permute(0, 3, 1, 2).float() / 255
if norm is not None:
    x = (x - torch.tensor(norm['mean']).view(1, 3, 1, 1)) / torch.tensor(norm['std']).view(1, 3, 1, 1)
with torch.no_grad():
    logits = model(x)
print(json.dumps({'logits': logits.flatten().tolist(), 'tensors': len(state)}))
`;

async function pytorchLogits(learn: Learner, file: string, images: Uint8Array, n: number, dir: string): Promise<{ logits: number[]; tensors: number }> {
  const imagesFile = path.join(dir, `${learn.arch}.u8`);
  fs.writeFileSync(imagesFile, images);
  const helper = path.join(__dirname, '..', 'helpers', 'fastai_xresnet.py');
  const args = [learn.arch, file, imagesFile, String(n), String(TRAIN_SIZE), String(learn.classes.length), JSON.stringify(learn.normalize), helper];
  return runPythonJson<{ logits: number[]; tensors: number }>(PYTORCH_PEER, { args });
}

function floats(value: ort.OnnxValue): Float32Array {
  return value.data as Float32Array;
}

function readModel(file: string): OnnxModel {
  return decodeOnnxModel(fs.readFileSync(file));
}

function inputDims(model: OnnxModel): (number | string)[] {
  return model.graph.input[0].type.tensorType.shape.dim.map((d) => d.dimParam ?? (d.dimValue as number));
}

describe('export to ONNX (onnxruntime-node) and PyTorch', function () {
  this.timeout(600_000);
  let dir: string;
  let data: ImageDataLoaders;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-export-onnx-');
    data = await makeExportData(dir);
  });
  after(() => removeDir(dir));

  describe("every architecture: the exports give torchts's predictions", () => {
    const measured: Record<string, string> = {};
    const measuredPth: Record<string, string> = {};
    after(() => console.log(`      max |diff| ONNX (probabilities, logits scaled): ${JSON.stringify(measured)}; PyTorch (logits scaled): ${JSON.stringify(measuredPth)}`));

    for (const arch of ARCHS) {
      describe(arch, () => {
        let learn: Learner;
        before(async () => {
          learn = await trainBriefly(data, arch);
          await assertTrained(learn);
        });
        after(() => learn.dispose());

        it(`ONNX: probabilities within ${TOLERANCE} of torchts's predict, batch 1 and 8, ${TRAIN_SIZE} px`, async () => {
          const file = path.join(dir, `${arch}.onnx`);
          try {
            await exportOnnx(sourceOf(learn), file, { probabilities: true });
            const session = await ort.InferenceSession.create(file, SESSION_OPTIONS);
            const k = learn.classes.length;
            let worstProbs = 0;
            let worstLogits = 0;
            for (const n of [1, 8]) {
              const images = probeImages(n, TRAIN_SIZE, TRAIN_SIZE);
              const batch = { images, n, h: TRAIN_SIZE, w: TRAIN_SIZE };
              const ours = await learn.predict(batch);
              const ourLogits = await learn.model.logits(batch);
              const out = await runUint8(session, images, n, TRAIN_SIZE, TRAIN_SIZE);
              assert.deepEqual(out.logits.dims, [n, k]);
              worstProbs = Math.max(worstProbs, maxAbsDiff(floats(out.probabilities), ours.probs), maxAbsDiff(softmaxRows(floats(out.logits), k), ours.probs));
              worstLogits = Math.max(worstLogits, maxScaledDiff(floats(out.logits), ourLogits));
              if (n === 8) {
                // Not a vacuous comparison: the images get different logits.
                const spread = Math.max(...Array.from(ourLogits)) - Math.min(...Array.from(ourLogits));
                assert.ok(spread > 0.1, `logits barely vary (${spread})`);
              }
            }
            await session.release();
            measured[arch] = `${worstProbs.toExponential(1)}, ${worstLogits.toExponential(1)}`;
            assert.ok(worstProbs <= TOLERANCE, `probabilities differ by ${worstProbs}`);
            assert.ok(worstLogits <= TOLERANCE, `logits differ by ${worstLogits} (scaled)`);
          } finally {
            fs.rmSync(file, { force: true });
          }
        });

        it(`PyTorch: a strict load_state_dict of the pth export in PyTorch 1.13 gives torchts's logits within ${TOLERANCE} (scaled)`, async () => {
          const file = path.join(dir, `${arch}.pth`);
          try {
            const report = await exportPyTorch(learn, file);
            assert.equal(report.layout, arch.startsWith('x') ? 'fastai' : 'torchvision');
            const n = 4;
            const images = probeImages(n, TRAIN_SIZE, TRAIN_SIZE);
            const ours = await learn.model.logits({ images, n, h: TRAIN_SIZE, w: TRAIN_SIZE });
            const peer = await pytorchLogits(learn, file, images, n, dir);
            assert.equal(peer.tensors, report.tensors);
            const worst = maxScaledDiff(peer.logits, ours);
            measuredPth[arch] = worst.toExponential(1);
            assert.ok(worst <= TOLERANCE, `logits differ by ${worst} (scaled)`);
          } finally {
            fs.rmSync(file, { force: true });
          }
        });
      });
    }
  });

  it("xresnet's identity pool: ONNX AveragePool (2, stride 2, ceil_mode, count_include_pad 0) is PyTorch's on 7 x 7 -> 4 x 4", async () => {
    // PyTorch divides a window hanging over the edge by the elements inside it; so must the graph.
    const side = 7;
    const out = 4;
    const dims = (d: number[]) => ({ tensorType: { elemType: 1, shape: { dim: d.map((dimValue) => ({ dimValue })) } } });
    const ints = (name: string, values: number[]) => ({ name, type: 7, ints: values });
    const int = (name: string, i: number) => ({ name, type: 2, i });
    const bytes = encodeOnnxModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'torchts-test',
      producerVersion: '0',
      metadataProps: [],
      graph: {
        name: 'pool',
        initializer: [],
        node: [{ name: 'pool', opType: 'AveragePool', input: ['x'], output: ['y'], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2]), int('ceil_mode', 1), int('count_include_pad', 0)] }],
        input: [{ name: 'x', type: dims([1, 1, side, side]) }],
        output: [{ name: 'y', type: dims([1, 1, out, out]) }],
      },
    });
    const session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
    const x = Float32Array.from({ length: side * side }, (_, i) => (i * 37) % 11);
    const y = floats((await session.run({ x: new ort.Tensor('float32', x, [1, 1, side, side]) })).y);
    const inside = (start: number) => [start, start + 1].filter((v) => v < side);
    const expected = Array.from({ length: out * out }, (_, k) => {
      const cells = inside(2 * Math.floor(k / out)).flatMap((r) => inside(2 * (k % out)).map((c) => x[r * side + c]));
      return cells.reduce((a, b) => a + b, 0) / cells.length;
    });
    assert.ok(maxAbsDiff(y, expected) < 1e-6, `${Array.from(y)} vs ${expected}`);
    await session.release();
  });

  describe('options', () => {
    let learn: Learner;
    const n = 3;
    let images: Uint8Array;
    let expected: Float32Array;

    before(async () => {
      learn = await trainBriefly(data, 'xresnet18', 1);
      images = probeImages(n, TRAIN_SIZE, TRAIN_SIZE);
      expected = (await learn.predict({ images, n, h: TRAIN_SIZE, w: TRAIN_SIZE })).probs;
    });
    after(() => learn.dispose());
    // The files are 45 MB each: gone once their test is.
    afterEach(() => fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).forEach((f) => fs.rmSync(path.join(dir, f))));

    async function exported(name: string, options: OnnxExportOptions): Promise<{ file: string; session: ort.InferenceSession; report: OnnxExportReport }> {
      const file = path.join(dir, `${name}.onnx`);
      const report = await exportOnnx(sourceOf(learn), file, options);
      return { file, session: await ort.InferenceSession.create(file, SESSION_OPTIONS), report };
    }

    it('the defaults: uint8 NHWC input "images" at the training size, dynamic batch, "logits" only; header and metadata read back', async () => {
      const { session, report } = await exported('defaults', {});
      assert.deepEqual(session.inputNames, ['images']);
      assert.deepEqual(session.outputNames, ['logits']);
      const out = await runUint8(session, images, n, TRAIN_SIZE, TRAIN_SIZE);
      assert.ok(maxAbsDiff(softmaxRows(floats(out.logits), 3), expected) <= TOLERANCE);

      const model = readModel(report.file);
      const version = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8')).version;
      assert.equal(model.irVersion, 8);
      assert.deepEqual(model.opsetImport, [{ domain: '', version: ONNX_EXPORT_DEFAULTS.opset }]);
      assert.equal(model.producerName, 'torchts');
      assert.equal(model.producerVersion, version);
      assert.deepEqual(inputDims(model), ['batch', TRAIN_SIZE, TRAIN_SIZE, 3]);
      assert.equal(model.graph.input[0].type.tensorType.elemType, 2); // UINT8
      const meta = Object.fromEntries(model.metadataProps.map((e) => [e.key, e.value]));
      assert.deepEqual(JSON.parse(meta.classes), [...learn.classes]);
      assert.equal(meta.arch, 'xresnet18');
      assert.equal(meta.size, String(TRAIN_SIZE));
      assert.deepEqual(JSON.parse(meta.normalize), learn.normalize);
      assert.ok(learn.normalize, 'the learner normalises (its data stats), so the graph does too');
      assert.equal(meta.input_layout, 'NHWC');
      assert.equal(meta.input_values, 'uint8 RGB 0..255');
      assert.equal(meta.torchts_version, version);
      // The graph holds folded convs only: no BatchNormalization node, and the ops stated.
      const ops = new Set(model.graph.node.map((node) => node.opType));
      assert.deepEqual([...ops].sort(), ['Add', 'AveragePool', 'Cast', 'Conv', 'Div', 'Flatten', 'Gemm', 'GlobalAveragePool', 'MaxPool', 'Relu', 'Sub', 'Transpose']);
      assert.deepEqual(report.input, { name: 'images', type: 'uint8', shape: ['batch', TRAIN_SIZE, TRAIN_SIZE, 3] });
      assert.deepEqual(report.outputs, ['logits']);
      assert.equal(report.bytes, fs.statSync(report.file).size);
      await session.release();
    });

    it("'float' input with the normalisation in the graph takes NCHW RGB in [0, 1]", async () => {
      const { file, session } = await exported('float-unit', { input: 'float', probabilities: true });
      assert.deepEqual(inputDims(readModel(file)), ['batch', 3, TRAIN_SIZE, TRAIN_SIZE]);
      assert.equal(readModel(file).metadataProps.find((e) => e.key === 'input_values')?.value, 'float32 RGB 0..1');
      const x = toUnitNchw(images, n, TRAIN_SIZE, TRAIN_SIZE);
      const out = await session.run({ images: new ort.Tensor('float32', x, [n, 3, TRAIN_SIZE, TRAIN_SIZE]) });
      assert.ok(maxAbsDiff(floats(out.probabilities), expected) <= TOLERANCE);
      await session.release();
    });

    it("'float' input without the normalisation takes what a torchvision user feeds: (x/255 - mean) / std", async () => {
      const { file, session } = await exported('float-normalized', { input: 'float', includeNormalization: false, probabilities: true });
      const model = readModel(file);
      assert.ok(!model.graph.node.some((node) => ['Sub', 'Div', 'Cast', 'Transpose'].includes(node.opType)), 'the graph prepares nothing');
      assert.equal(model.metadataProps.find((e) => e.key === 'input_values')?.value, 'float32 normalized');
      const x = normalizeNchw(toUnitNchw(images, n, TRAIN_SIZE, TRAIN_SIZE), TRAIN_SIZE, TRAIN_SIZE, learn.normalize as { mean: number[]; std: number[] });
      const out = await session.run({ images: new ort.Tensor('float32', x, [n, 3, TRAIN_SIZE, TRAIN_SIZE]) });
      assert.ok(maxAbsDiff(floats(out.probabilities), expected) <= TOLERANCE);
      await session.release();
    });

    it("size 'dynamic' runs any height and width (28 x 28, 28 x 37) as torchts does; a number fixes them", async () => {
      const { file, session } = await exported('dynamic', { size: 'dynamic', probabilities: true });
      assert.deepEqual(inputDims(readModel(file)), ['batch', 'height', 'width', 3]);
      for (const [h, w] of [[28, 28], [28, 37]]) {
        const probe = probeImages(2, h, w, 11);
        const ours = await learn.predict({ images: probe, n: 2, h, w });
        const out = await runUint8(session, probe, 2, h, w);
        assert.ok(maxAbsDiff(floats(out.probabilities), ours.probs) <= TOLERANCE, `${h} x ${w}`);
      }
      await session.release();
      const fixed = await exported('fixed-40', { size: 40 });
      assert.deepEqual(inputDims(readModel(fixed.file)), ['batch', 40, 40, 3]);
      await assert.rejects(runUint8(fixed.session, images, n, TRAIN_SIZE, TRAIN_SIZE), /dimension|Expected: 40/i);
      await fixed.session.release();
    });

    it('dynamicBatch false fixes the batch to 1: batch 1 runs, batch 8 is refused', async () => {
      const { file, session } = await exported('batch-1', { dynamicBatch: false, probabilities: true });
      assert.deepEqual(inputDims(readModel(file)), [1, TRAIN_SIZE, TRAIN_SIZE, 3]);
      const one = await runUint8(session, images.subarray(0, TRAIN_SIZE * TRAIN_SIZE * 3), 1, TRAIN_SIZE, TRAIN_SIZE);
      assert.ok(maxAbsDiff(floats(one.probabilities), expected.subarray(0, 3)) <= TOLERANCE);
      const eight = probeImages(8, TRAIN_SIZE, TRAIN_SIZE);
      await assert.rejects(runUint8(session, eight, 8, TRAIN_SIZE, TRAIN_SIZE), /dimension|Expected: 1/i);
      await session.release();
    });

    it('opsets 13 and 23 (IR 7 and 11) run and give the same probabilities', async () => {
      for (const [opset, ir] of [[13, 7], [23, 11]]) {
        const { file, session } = await exported(`opset-${opset}`, { opset, probabilities: true });
        const model = readModel(file);
        assert.equal(model.irVersion, ir);
        assert.deepEqual(model.opsetImport, [{ domain: '', version: opset }]);
        const out = await runUint8(session, images, n, TRAIN_SIZE, TRAIN_SIZE);
        assert.ok(maxAbsDiff(floats(out.probabilities), expected) <= TOLERANCE, `opset ${opset}`);
        await session.release();
      }
    });

    it('a model trained without normalisation: the graph divides by 255 only', async () => {
      // Loaders without stats: the learner's default normalisation ('data') is then none.
      const unnormalized = await imageFolder(path.join(dir, 'data'), { seed: 0, normalize: 'none', log: () => undefined });
      const plain = new Learner({ data: unnormalized, arch: 'resnet18', device: TEST_DEVICE, size: TRAIN_SIZE, bs: 16, seed: 2 });
      assert.equal(plain.normalize, null);
      try {
        await plain.fitOneCycle(1, 3e-3);
        const file = path.join(dir, 'plain.onnx');
        await exportOnnx(sourceOf(plain), file, { probabilities: true });
        const model = readModel(file);
        assert.ok(!model.graph.node.some((node) => node.opType === 'Sub'));
        assert.equal(model.metadataProps.find((e) => e.key === 'normalize')?.value, 'null');
        const session = await ort.InferenceSession.create(file, SESSION_OPTIONS);
        const out = await runUint8(session, images, n, TRAIN_SIZE, TRAIN_SIZE);
        const ours = await plain.predict({ images, n, h: TRAIN_SIZE, w: TRAIN_SIZE });
        assert.ok(maxAbsDiff(floats(out.probabilities), ours.probs) <= TOLERANCE);
        await session.release();
      } finally {
        plain.dispose();
      }
    });
  });

  describe('refusals', () => {
    let weights: NativeWeight[];
    let source: ExportSource;

    before(async () => {
      const learn = new Learner({ data, arch: 'xresnet18', device: TEST_DEVICE, size: TRAIN_SIZE, bs: 16, seed: 1 });
      weights = await learn.model.weights();
      source = { ...sourceOf(learn), model: { weights: async () => weights } };
      learn.dispose();
    });

    const file = () => path.join(dir, 'refused.onnx');
    async function refuses(src: ExportSource, options: OnnxExportOptions, message: RegExp): Promise<void> {
      await assert.rejects(exportOnnx(src, file(), options), message);
      assert.ok(!fs.existsSync(file()), 'nothing written');
    }
    const withWeights = (list: NativeWeight[]): ExportSource => ({ ...source, model: { weights: async () => list } });

    it('a bad option value, naming the option, the value and what was expected', async () => {
      const bad: [OnnxExportOptions, RegExp][] = [
        [{ opset: 12 }, /options\.opset must be an integer in 13\.\.23, got 12/],
        [{ opset: 24 }, /options\.opset must be an integer in 13\.\.23, got 24/],
        [{ opset: 17.5 }, /options\.opset .* got 17\.5/],
        [{ opset: '17' as unknown as number }, /options\.opset .* got "17"/],
        [{ dynamicBatch: 'yes' as unknown as boolean }, /options\.dynamicBatch must be true or false, got "yes"/],
        [{ input: 'rgb' as unknown as 'uint8' }, /options\.input must be one of "uint8", "float", got "rgb"/],
        [{ includeNormalization: 1 as unknown as boolean }, /options\.includeNormalization must be true or false, got 1/],
        [{ probabilities: null as unknown as boolean }, /options\.probabilities must be true or false, got null/],
        [{ size: 7 }, /options\.size must be an integer in 8\.\.4096, 'training' or 'dynamic', got 7/],
        [{ size: 32.5 }, /options\.size .* got 32\.5/],
        [{ size: 'auto' as unknown as number }, /options\.size .* got "auto"/],
        [{ dynamicbatch: false } as unknown as OnnxExportOptions, /unknown option "dynamicbatch"; expected one of opset, dynamicBatch/],
        [{ includeNormalization: false }, /includeNormalization false needs options\.input 'float'/],
        [null as unknown as OnnxExportOptions, /options must be an object, got null/],
      ];
      for (const [options, message] of bad) await refuses(source, options, message);
    });

    it('an arch it cannot export, and a model without classes', async () => {
      await refuses({ ...source, arch: 'resnet101' }, {}, /arch "resnet101" cannot be exported; expected one of resnet18, resnet34, resnet50, xresnet18, xresnet34, xresnet50/);
      await refuses({ ...source, classes: [] }, {}, /the model has no classes/);
      await refuses({ ...source, size: 0 }, {}, /the model's training size must be an integer in 8\.\.4096, got 0; give options\.size/);
      await refuses({ ...source, normalize: { mean: [0.5], std: [0.2] } }, {}, /normalize must be null or \{ mean, std \} of 3 finite numbers/);
    });

    it('weights that do not fit the arch: a name missing, one unexpected, a wrong shape, a name twice', async () => {
      await refuses(withWeights(weights.filter((w) => w.name !== 'stages.1.0.shortcut.bn.running_var')), {}, /xresnet18 needs weights the model does not have: stages\.1\.0\.shortcut\.bn\.running_var/);
      await refuses(withWeights([...weights, { name: 'head.extra', shape: [1], data: new Float32Array(1) }]), {}, /the model has weights xresnet18 does not use: head\.extra/);
      await refuses({ ...source, classes: ['a', 'b', 'c', 'd'] }, {}, /weight fc\.weight has shape \[3, 512\]; xresnet18 with 4 classes needs \[4, 512\]/);
      await refuses({ ...source, arch: 'resnet18' }, {}, /resnet18 needs weights the model does not have: conv1\.weight, bn1\.weight/);
      await refuses(withWeights([...weights, weights[0]]), {}, /lists weight stem\.0\.conv\.weight more than once/);
    });

    it('non-finite weights: "the fit diverged"', async () => {
      const poisoned = (value: number) =>
        weights.map((w) => (w.name === 'stages.2.1.convs.0.bn.running_var' ? { ...w, data: Float32Array.from(w.data, (v, i) => (i === 5 ? value : v)) } : w));
      await refuses(withWeights(poisoned(NaN)), {}, /NaN or infinite values \(stages\.2\.1\.convs\.0\.bn\.running_var\): the fit diverged/);
      await refuses(withWeights(poisoned(-Infinity)), {}, /the fit diverged/);
    });
  });
});
