import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MetricsLog, csvField, parseCsv, toCsv, writeJson } from '../../lib/report/logs';

describe('report/logs', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-logs-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('quotes CSV fields only when needed and parses them back', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    const text = toCsv([{ name: 'a,b', v: 1 }, { name: 'x"y', v: 2.5 }]);
    assert.deepEqual(parseCsv(text), [['name', 'v'], ['a,b', '1'], ['x"y', '2.5']]);
  });

  it('keeps metrics.csv and metrics.json in step, replacing a repeated epoch', () => {
    const log = new MetricsLog(dir);
    log.add({ epoch: 0, train_loss: 1.2, valid_loss: 1.1, accuracy: 0.5, time: 3 });
    log.add({ epoch: 1, train_loss: 0.9, valid_loss: 0.8, accuracy: 0.7, time: 3 });
    log.add({ epoch: 1, train_loss: 0.8, valid_loss: 0.7, accuracy: 0.75, time: 4 });
    const rows = parseCsv(fs.readFileSync(log.csvFile, 'utf8'));
    assert.deepEqual(rows[0], ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']);
    assert.equal(rows.length, 3);
    assert.deepEqual(rows[2], ['1', '0.8', '0.7', '0.75', '4']);
    assert.deepEqual(MetricsLog.read(dir), log.records);
    const resumed = new MetricsLog(dir, MetricsLog.read(dir).slice(0, 1));
    resumed.add({ epoch: 1, train_loss: 0.8, valid_loss: 0.7, accuracy: 0.75, time: 4 });
    assert.equal(MetricsLog.read(dir).length, 2);
  });

  it('writes JSON atomically, leaving no temporary file', () => {
    writeJson(path.join(dir, 'deep', 'config.json'), { a: 1 });
    assert.deepEqual(fs.readdirSync(path.join(dir, 'deep')), ['config.json']);
    assert.equal(fs.readFileSync(path.join(dir, 'deep', 'config.json'), 'utf8'), '{\n  "a": 1\n}\n');
  });
});
