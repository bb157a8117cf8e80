import { strict as assert } from 'assert';
import { EpochTable, formatDuration, markdownTable, textTable } from '../../lib/report/table';

describe('report/table', () => {
  it('formats durations as mm:ss and h:mm:ss', () => {
    assert.equal(formatDuration(0), '00:00');
    assert.equal(formatDuration(7.6), '00:07');
    assert.equal(formatDuration(125), '02:05');
    assert.equal(formatDuration(3725), '1:02:05');
  });

  it('prints a fastai-style epoch table with the header once', () => {
    const lines: string[] = [];
    const table = new EpochTable({ columns: ['train_loss', 'valid_loss', 'accuracy'], write: (l) => lines.push(l) });
    table.add({ epoch: 0, values: { train_loss: 0.9123456, valid_loss: 0.7, accuracy: 0.745 }, seconds: 12 });
    table.add({ epoch: 1, values: { train_loss: 0.5, valid_loss: NaN, accuracy: 0.8 }, seconds: 75 });
    assert.deepEqual(lines, [
      'epoch  train_loss  valid_loss  accuracy  time',
      '0      0.912346    0.700000    0.745000  00:12',
      '1      0.500000    nan         0.800000  01:15',
    ]);
  });

  it('makes Markdown and text tables', () => {
    assert.equal(markdownTable(['name', 'acc'], [['base', 0.5]]), '| name | acc      |\n| ---- | -------- |\n| base | 0.500000 |\n');
    assert.equal(textTable(['a', 'bb'], [['xyz', 'q']]), 'a    bb\nxyz  q');
  });
});
