/**
 * A browser-sized export (resnet18 at 128 px, fixed shapes) in onnxruntime-web's wasm backend,
 * run under Node as a page would run it: single-threaded, its .wasm loaded from the package's
 * own dist folder (nothing fetched). It must give onnxruntime-node's and torchts's probabilities.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { native } from '../../lib/native';
import type { Learner } from '../../lib/learn';
import { exportOnnx } from '../../lib/export/onnx';
import { removeDir, tempDir } from '../helpers/images';
import { makeExportData, maxAbsDiff, probeImages, sourceOf, trainBriefly } from './helpers';

const BROWSER_SIZE = 128;
const TOLERANCE = 1e-4;

describe('export to ONNX: onnxruntime-web (wasm) under Node', function () {
  this.timeout(600_000);
  let dir: string;
  let learn: Learner;
  let file: string;

  before(async () => {
    native().setThreads(Number(process.env.TORCHTS_TEST_THREADS ?? 1));
    dir = tempDir('torchts-export-onnx-web-');
    learn = await trainBriefly(await makeExportData(dir), 'resnet18', 1);
    file = path.join(dir, 'resnet18-128.onnx');
    // Trained at 33 px, exported at 128: the network is fully convolutional up to its global pool.
    await exportOnnx(sourceOf(learn), file, { size: BROWSER_SIZE, probabilities: true });
  });
  after(() => {
    learn?.dispose();
    removeDir(dir);
  });

  it(`resnet18 at ${BROWSER_SIZE} px: the wasm backend gives onnxruntime-node's and torchts's probabilities within ${TOLERANCE}`, async () => {
    const n = 2;
    const images = probeImages(n, BROWSER_SIZE, BROWSER_SIZE);
    const dims = [n, BROWSER_SIZE, BROWSER_SIZE, 3];

    // Threads would need worker scripts and cross-origin isolation in a page; one is what every page gets.
    ortWeb.env.wasm.numThreads = 1;
    // The package's Node build finds its .wasm beside itself (dist/); no wasmPaths is needed.
    const web = await ortWeb.InferenceSession.create(new Uint8Array(fs.readFileSync(file)), { executionProviders: ['wasm'] });
    const fromWeb = (await web.run({ images: new ortWeb.Tensor('uint8', images, dims) })).probabilities.data as Float32Array;
    await web.release();

    const node = await ortNode.InferenceSession.create(file, { intraOpNumThreads: 1 });
    const fromNode = (await node.run({ images: new ortNode.Tensor('uint8', images, dims) })).probabilities.data as Float32Array;
    await node.release();
    const ours = await learn.predict({ images, n, h: BROWSER_SIZE, w: BROWSER_SIZE });

    const webVsNode = maxAbsDiff(fromWeb, fromNode);
    const webVsTorchts = maxAbsDiff(fromWeb, ours.probs);
    console.log(`      max |diff|: web vs node ${webVsNode.toExponential(1)}, web vs torchts ${webVsTorchts.toExponential(1)}`);
    assert.ok(webVsNode <= TOLERANCE, `web vs node: ${webVsNode}`);
    assert.ok(webVsTorchts <= TOLERANCE, `web vs torchts: ${webVsTorchts}`);
  });
});
