import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { barChart, escapeXml, formatTick, heatmap, lineChart, logTicks, niceTicks, writeChart } from '../../lib/report/plot';
import { confusionChart, lrFindChart, scheduleChart, writeRunCharts } from '../../lib/report/charts';

describe('report/plot', () => {
  it('picks round ticks that cover the range', () => {
    assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    assert.deepEqual(niceTicks(0.31, 2.27), [0, 0.5, 1, 1.5, 2, 2.5]);
    const ticks = niceTicks(3, 3);
    assert.ok(ticks[0] < 3 && ticks[ticks.length - 1] > 3);
    assert.deepEqual(logTicks(1e-7, 3), [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10]);
  });

  it('formats ticks briefly', () => {
    assert.equal(formatTick(0), '0');
    assert.equal(formatTick(0.25), '0.25');
    assert.equal(formatTick(1e-5), '1e-5');
    assert.equal(formatTick(12000), '1.2e4');
  });

  it('escapes class names that are not XML-safe', () => {
    assert.equal(escapeXml('T-shirt/top <&> "x"'), 'T-shirt/top &lt;&amp;&gt; &quot;x&quot;');
    const svg = heatmap({ title: 'a & b', labels: ['<x>', 'y'], matrix: [[1, 0], [2, 3]] });
    assert.ok(!svg.includes('<x>'));
    assert.ok(svg.includes('&lt;x&gt;'));
  });

  it('draws one polyline per series, splitting at gaps, plus a legend', () => {
    const svg = lineChart({
      title: 'Loss', xLabel: 'step', yLabel: 'loss',
      series: [
        { name: 'train', points: [[0, 2], [1, 1.5], [2, NaN], [3, 1], [4, 0.8]] },
        { name: 'valid', points: [[4, 1.1]] },
      ],
    });
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.equal((svg.match(/<circle/g) ?? []).length, 1);
    assert.ok(svg.includes('>train<') && svg.includes('>valid<'));
  });

  it('renders line, bar, heat map and two-panel charts to valid PNG of the stated size', async () => {
    const charts = [
      lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[1, 1], [2, 4], [3, 9]] }], width: 500, height: 300 }),
      barChart({ title: 'bars', yLabel: 'acc', categories: ['a', 'b', 'c'], series: [{ name: 'acc', values: [0.5, 0.8, -0.1] }] }),
      confusionChart(['a', 'b', 'c'], [[5, 1, 0], [0, 6, 1], [2, 0, 4]]),
      scheduleChart([0, 1, 2, 3].map((i) => ({ iteration: i, loss: 1, lr: 1e-3 * (i + 1), mom: 0.95 - i * 0.01 }))),
      lrFindChart([1e-6, 1e-5, 1e-4, 1e-3, 1e-2], [2.3, 2.2, 1.9, 1.4, 3.5], 1e-4),
    ];
    for (const svg of charts) {
      const meta = await sharp(Buffer.from(svg)).metadata();
      assert.equal(meta.format, 'svg');
      const png = await sharp(Buffer.from(svg)).png().toBuffer();
      const pngMeta = await sharp(png).metadata();
      assert.equal(pngMeta.format, 'png');
      assert.equal(pngMeta.width, meta.width);
      // The picture is not blank: the standard deviation of its pixels is well above zero.
      const stats = await sharp(png).stats();
      assert.ok(stats.channels[0].stdev > 5, 'chart has visible content');
    }
  });

  it('writes SVG and PNG side by side, and the run charts as a set', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-plot-'));
    try {
      const files = await writeChart(path.join(dir, 'sub', 'bars'), barChart({ title: 'b', yLabel: 'v', categories: ['x'], series: [{ name: 'v', values: [1] }] }));
      assert.ok(fs.readFileSync(files.svg, 'utf8').startsWith('<svg'));
      assert.deepEqual([...fs.readFileSync(files.png).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      const steps = [0, 1, 2, 3, 4, 5].map((i) => ({ iteration: i, loss: 2 - i * 0.2, lr: 1e-3, mom: 0.9 }));
      const epochs = [{ epoch: 0, iteration: 3, validLoss: 1.5, accuracy: 0.6 }, { epoch: 1, iteration: 6, validLoss: 1.2, accuracy: 0.7 }];
      const written = await writeRunCharts(dir, { steps, epochs, classes: ['a', 'b'], confusion: [[3, 1], [0, 4]] });
      assert.deepEqual(written.map((f) => path.basename(f)).sort(), ['accuracy.png', 'accuracy.svg', 'confusion.png', 'confusion.svg', 'loss.png', 'loss.svg', 'schedule.png', 'schedule.svg']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
