import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import * as tar from 'tar';
import { untarData, fastaiDataset } from '../../lib/data/download';
import { removeDir, tempDir, writeClassFolder } from '../helpers/images';

describe('data/download (local HTTP server on 127.0.0.1)', () => {
  let dir: string;
  let server: http.Server;
  let baseUrl: string;
  const archives = new Map<string, Buffer>();
  const requests: string[] = [];

  before(async () => {
    dir = tempDir();
    const src = path.join(dir, 'src');
    await writeClassFolder(path.join(src, 'imagenette2-160'), { split: 'train', classes: { n01: 3, n02: 3 }, format: 'jpeg' });
    await writeClassFolder(path.join(src, 'imagenette2-160'), { split: 'val', classes: { n01: 1, n02: 1 }, format: 'jpeg' });
    const tgz = path.join(dir, 'good.tgz');
    await tar.c({ gzip: true, file: tgz, cwd: src }, ['imagenette2-160']);
    const good = fs.readFileSync(tgz);
    archives.set('/imagenette2-160.tgz', good);
    archives.set('/imagewoof2-160.tgz', good.subarray(0, Math.floor(good.length * 0.6)));
    const renamed = path.join(dir, 'renamed.tgz');
    await tar.c({ gzip: true, file: renamed, cwd: path.join(src, 'imagenette2-160'), prefix: 'imagenette2' }, ['train', 'val']);
    archives.set('/moved/imagenette2.tgz', fs.readFileSync(renamed));
    // A hostile archive: besides a dataset, entries that climb out of it and an absolute path.
    const hostile = path.join(dir, 'hostile');
    fs.mkdirSync(path.join(hostile, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(hostile, 'a', 'escaped.txt'), 'outside');
    fs.writeFileSync(path.join(dir, 'absolute-target.txt'), 'written by the archive');
    const evil = path.join(dir, 'evil.tgz');
    await tar.c({ gzip: true, file: evil, cwd: path.join(hostile, 'a', 'b'), preservePaths: true }, ['../escaped.txt', '../../a/b/../../a/escaped.txt', path.join(dir, 'absolute-target.txt')]);
    fs.writeFileSync(path.join(dir, 'absolute-target.txt'), 'original');
    archives.set('/imagenette2-320.tgz', fs.readFileSync(evil));
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/imagenette2.tgz') {
        res.writeHead(302, { location: '/moved/imagenette2.tgz' }).end();
        return;
      }
      const body = archives.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/gzip' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    removeDir(dir);
  });

  it('downloads, extracts, and a second call downloads nothing', async () => {
    const home = path.join(dir, 'home1');
    const out = await untarData('imagenette2-160', { home, baseUrl, quiet: true });
    assert.equal(out, path.join(home, 'data', 'imagenette2-160'));
    assert.deepEqual(fs.readdirSync(out).sort(), ['train', 'val']);
    assert.ok(fs.existsSync(path.join(home, 'archive', 'imagenette2-160.tgz')));
    assert.deepEqual(fs.readdirSync(path.join(home, 'archive')), ['imagenette2-160.tgz'], 'no .part left');
    const before = requests.length;
    assert.equal(await untarData('imagenette2-160', { home, baseUrl, quiet: true }), out);
    assert.equal(requests.length, before, 'second call made no request');
    const dls = await fastaiDataset('imagenette2-160', { home, baseUrl, quiet: true, normalize: 'none' });
    assert.deepEqual(dls.classes, ['n01', 'n02']);
    assert.equal(dls.trainItems.length, 6);
    assert.equal(dls.validItems.length, 2);
  });

  it('follows redirects, reads TORCHTS_DATA_URL, and writes a progress bar', async () => {
    const home = path.join(dir, 'home2');
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    process.env.TORCHTS_DATA_URL = baseUrl;
    try {
      const out = await untarData('imagenette2', { home, progressStream: stream });
      assert.ok(fs.existsSync(path.join(out, 'train', 'n01')));
    } finally {
      delete process.env.TORCHTS_DATA_URL;
    }
    assert.ok(lines.some((l) => /downloading imagenette2\.tgz \[#+\] 100%/.test(l)), JSON.stringify(lines));
  });

  it('a truncated archive: a clear error, nothing half-extracted, nothing kept', async () => {
    const home = path.join(dir, 'home3');
    await assert.rejects(untarData('imagewoof2-160', { home, baseUrl, quiet: true }), /imagewoof2-160\.tgz could not be extracted .*run again/);
    assert.deepEqual(fs.readdirSync(path.join(home, 'data')), [], 'no dataset folder and no temporary folder');
    assert.deepEqual(fs.readdirSync(path.join(home, 'archive')), [], 'broken archive removed');
  });

  it("a hostile archive (../ entries, absolute paths) writes nothing outside the dataset's folder", async () => {
    const home = path.join(dir, 'home-hostile', 'inner');
    await untarData('imagenette2-320', { home, baseUrl, quiet: true }).catch(() => undefined);
    assert.ok(!fs.existsSync(path.join(dir, 'home-hostile', 'escaped.txt')), 'no ../ entry lands above the home');
    assert.ok(!fs.existsSync(path.join(dir, 'home-hostile', 'inner', 'escaped.txt')));
    assert.equal(fs.readFileSync(path.join(dir, 'absolute-target.txt'), 'utf8'), 'original', 'the absolute path is not overwritten');
    const written = (fs.readdirSync(path.join(dir, 'home-hostile'), { recursive: true }) as string[]).filter((f) => f.endsWith('escaped.txt') && !f.startsWith('inner'));
    assert.deepEqual(written, []);
  });

  it('HTTP errors, an unreachable server and unknown names are clear errors', async () => {
    const home = path.join(dir, 'home4');
    await assert.rejects(untarData('imagewoof2', { home, baseUrl, quiet: true }), /imagewoof2\.tgz answered HTTP 404/);
    await assert.rejects(untarData('imagewoof2-320', { home, baseUrl: 'http://127.0.0.1:1', quiet: true }), /cannot download http:\/\/127\.0\.0\.1:1\/imagewoof2-320\.tgz/);
    await assert.rejects(untarData('mnist', { home, baseUrl, quiet: true }), /unknown dataset 'mnist'; expected one of imagenette2/);
    assert.ok(!fs.existsSync(path.join(home, 'data', 'imagewoof2')));
  });
});
