import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { listImageFolder } from '../../lib/data/folder';
import { imageFolder } from '../../lib/data/loader';
import { removeDir, tempDir, writeClassFolder } from '../helpers/images';

describe('data/folder listing and split', () => {
  let dir: string;
  before(async () => {
    dir = tempDir();
    await writeClassFolder(path.join(dir, 'split'), { split: 'train', classes: { dog: 3, cat: 2, bird: 2 } });
    await writeClassFolder(path.join(dir, 'split'), { split: 'val', classes: { dog: 1, cat: 1, bird: 1 } });
    fs.writeFileSync(path.join(dir, 'split', 'train', 'dog', 'notes.txt'), 'not an image');
    await writeClassFolder(path.join(dir, 'flat'), { split: '', classes: { b: 10, a: 10 } });
  });
  after(() => removeDir(dir));

  it('labels by parent folder, classes sorted by name, train/val from folders', () => {
    const l = listImageFolder(path.join(dir, 'split'));
    assert.deepEqual(l.classes, ['bird', 'cat', 'dog']);
    assert.equal(l.split, 'folder');
    assert.equal(l.trainItems.length, 7, 'the .txt file is not an image');
    assert.equal(l.validItems.length, 3);
    for (const item of [...l.trainItems, ...l.validItems]) assert.equal(l.classes[item.label], path.basename(path.dirname(item.file)));
  });

  it('lists only regular files after following links: a FIFO, a link to one and a dangling link are left out, with why', async () => {
    const root = path.join(dir, 'odd');
    await writeClassFolder(root, { split: '', classes: { a: 3, b: 3 } });
    const fifo = path.join(dir, 'pipe.png');
    execFileSync('mkfifo', [fifo]);
    fs.symlinkSync(fifo, path.join(root, 'a', 'link-to-fifo.png'));
    execFileSync('mkfifo', [path.join(root, 'b', 'fifo.png')]);
    fs.symlinkSync(path.join(dir, 'nothing.png'), path.join(root, 'b', 'dangling.png'));
    fs.symlinkSync(path.join(root, 'a', fs.readdirSync(path.join(root, 'a')).find((f) => f.endsWith('.png'))!), path.join(root, 'b', 'good-link.png'));
    const l = listImageFolder(root, { validPct: 0 });
    assert.equal(l.trainItems.length, 7, 'the 6 images and the link to a regular image');
    assert.deepEqual(
      l.ignored.map((s) => [path.basename(s.file), s.reason]),
      [
        ['link-to-fifo.png', 'a named pipe (FIFO), not a regular file'],
        ['dangling.png', 'a link to nothing (its target does not exist)'],
        ['fifo.png', 'a named pipe (FIFO), not a regular file'],
      ],
    );
    // Reading the whole set ends (a FIFO in it would block the read forever) and says what was left out.
    const lines: string[] = [];
    const dls = await imageFolder(root, { validPct: 0.5, log: (line) => lines.push(line) });
    for await (const batch of dls.train({ size: 16, bs: 2 }, 0)) assert.ok(batch.n > 0);
    assert.equal(lines.filter((line) => /skipping .*(fifo|dangling)\.png: /.test(line)).length, 3, lines.join('\n'));
  });

  it('without val/: a seeded random split of validPct', () => {
    const a = listImageFolder(path.join(dir, 'flat'), { validPct: 0.25, seed: 1 });
    const b = listImageFolder(path.join(dir, 'flat'), { validPct: 0.25, seed: 1 });
    const c = listImageFolder(path.join(dir, 'flat'), { validPct: 0.25, seed: 2 });
    assert.equal(a.split, 'random');
    assert.deepEqual(a.classes, ['a', 'b']);
    assert.equal(a.validItems.length, 5);
    assert.equal(a.trainItems.length, 15);
    assert.deepEqual(a.validItems, b.validItems);
    assert.notDeepEqual(a.validItems, c.validItems);
    const all = new Set([...a.trainItems, ...a.validItems].map((i) => i.file));
    assert.equal(all.size, 20, 'train and valid are disjoint and cover everything');
    assert.equal(listImageFolder(path.join(dir, 'flat')).validItems.length, 4, 'default validPct 0.2');
  });

  it('a missing folder, an empty class folder, a folder without images: errors naming the path', () => {
    assert.throws(() => listImageFolder(path.join(dir, 'nope')), new RegExp(`${path.join(dir, 'nope')} does not exist`));
    const empty = path.join(dir, 'emptyclass');
    fs.mkdirSync(path.join(empty, 'x'), { recursive: true });
    fs.mkdirSync(path.join(empty, 'y'), { recursive: true });
    fs.writeFileSync(path.join(empty, 'x', 'a.txt'), 'hi');
    assert.throws(() => listImageFolder(empty), new RegExp(`class folder ${path.join(empty, 'x')} has no image files`));
    const bare = path.join(dir, 'bare');
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, 'readme.md'), 'x');
    assert.throws(() => listImageFolder(bare), new RegExp(`${bare} has no class subfolders`));
    assert.throws(() => listImageFolder(path.join(dir, 'flat'), { validPct: 1 }), /validPct must be in \[0, 1\)/);
  });
});
