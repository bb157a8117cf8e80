/**
 * What `npx torchts-train` with no flags trains on: the bundled data and the
 * defaults chosen for it. (The run itself is measured, not timed in tests:
 * see the report in lib/cli/train.ts TRAIN_DEFAULTS.)
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { listImageFolder } from '../../lib/data/folder';
import { bundledDataFolder } from '../../lib/cli/common';
import { trainConfigFrom, TRAIN_DEFAULTS } from '../../lib/cli/train';

describe('cli defaults and the bundled dataset', () => {
  it('ships a class-balanced Fashion-MNIST image folder with its licence and attribution', async () => {
    const root = bundledDataFolder();
    const listed = listImageFolder(root);
    assert.equal(listed.split, 'folder');
    assert.deepEqual(listed.classes, ['Ankle_boot', 'Bag', 'Coat', 'Dress', 'Pullover', 'Sandal', 'Shirt', 'Sneaker', 'T-shirt_top', 'Trouser']);
    for (let c = 0; c < 10; c++) {
      assert.equal(listed.trainItems.filter((i) => i.label === c).length, 300);
      assert.equal(listed.validItems.filter((i) => i.label === c).length, 50);
    }
    const meta = await sharp(listed.trainItems[0].file).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 28, 28, 1]);
    assert.match(fs.readFileSync(path.join(root, 'LICENSE'), 'utf8'), /MIT License[\s\S]*2017 Zalando SE/);
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    for (const needed of [/Zalando/, /arXiv:1708\.07747/, /dataset-fashion-mnist` package \(version \S+\)/, /scripts\/make-default-data\.ts/]) assert.match(readme, needed);
    let bytes = 0;
    for (const item of [...listed.trainItems, ...listed.validItems]) bytes += fs.statSync(item.file).size;
    assert.ok(bytes < 3e6, `the bundled images stay small (${bytes} bytes)`);
  });

  it('no flags: the bundled data, 28 px, xresnet18, 4 epochs, light augmentation, cached decoding', async () => {
    const config = await trainConfigFrom({});
    assert.equal(config.data, bundledDataFolder());
    assert.equal(config.dataName, 'fashion-mnist (bundled)');
    assert.deepEqual(
      [config.arch, config.size, config.epochs, config.bs, config.lr, config.normalize, config.augment, config.cache, config.phases],
      [TRAIN_DEFAULTS.arch, 28, 4, 32, 3e-3, 'dataset', 'light', true, null],
    );
    assert.match(path.relative(process.cwd(), config.out), /^runs[/\\]\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d/);
    assert.ok(!fs.existsSync(config.out), 'checking the flags creates nothing');
  });
});
