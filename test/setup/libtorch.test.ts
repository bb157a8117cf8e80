import { strict as assert } from 'assert';
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';

// Plain-JS install helpers (they run before TypeScript is compiled).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { findLibtorch } = require('../../scripts/find-libtorch.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chooseVariant, archiveUrl } = require('../../scripts/setup-libtorch.js');

const SETUP = path.resolve(__dirname, '../../scripts/setup-libtorch.js');

/** A folder shaped like the official libtorch archive's content. */
function fakeLibtorch(root: string): string {
  const dir = path.join(root, 'libtorch');
  fs.mkdirSync(path.join(dir, 'share', 'cmake', 'Torch'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), '# test\n');
  fs.writeFileSync(path.join(dir, 'lib', 'libtorch.so'), Buffer.alloc(64 * 1024, 7));
  return dir;
}

/** Zips `folder` (relative entries under its parent) with Python's zipfile. */
function zipFolder(folder: string, archive: string): void {
  const script = [
    'import os, sys, zipfile',
    'src, out = sys.argv[1], sys.argv[2]',
    'base = os.path.dirname(src)',
    'with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:',
    '    for d, _, files in os.walk(src):',
    '        for f in files:',
    '            p = os.path.join(d, f); z.write(p, os.path.relpath(p, base))',
  ].join('\n');
  execFileSync('/usr/bin/python3', ['-c', script, folder, archive]);
}

interface Served {
  url: (name: string) => string;
  requests: string[];
  close: () => Promise<void>;
}

/** Serves files from `dir` on 127.0.0.1; `/short/<name>` promises more bytes than it sends. */
async function serve(dir: string): Promise<Served> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = req.url || '/';
    requests.push(url);
    const short = url.startsWith('/short/');
    const file = path.join(dir, path.basename(url));
    if (!fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const body = fs.readFileSync(file);
    if (short) {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, body.length >> 1));
      res.destroy();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs setup-libtorch asynchronously: the server answering it lives in this process. */
function runSetup(home: string, url: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SETUP, '--download', '--force'], {
      env: { ...process.env, TORCHTS_HOME: home, TORCHTS_LIBTORCH_URL: url },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('finding libtorch', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-find-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('takes LIBTORCH first and names it as the source', () => {
    const dir = fakeLibtorch(tmp);
    const found = findLibtorch({ LIBTORCH: dir, PATH: process.env.PATH });
    assert.equal(found.source, 'LIBTORCH');
    assert.equal(found.torchDir, path.join(dir, 'share', 'cmake', 'Torch'));
  });

  it('takes Torch_DIR before LIBTORCH', () => {
    const dir = fakeLibtorch(tmp);
    const torchDir = path.join(dir, 'share', 'cmake', 'Torch');
    const found = findLibtorch({ Torch_DIR: torchDir, LIBTORCH: '/nowhere', PATH: process.env.PATH });
    assert.deepEqual(found, { torchDir, source: 'Torch_DIR' });
  });

  it('rejects a LIBTORCH that is not a libtorch folder, naming it', () => {
    assert.throws(() => findLibtorch({ LIBTORCH: tmp }), (err: Error) => err.message.includes(`LIBTORCH=${tmp}`));
  });

  it('finds the system libtorch on this machine when nothing is set', () => {
    const found = findLibtorch({ PATH: '/nonexistent', TORCHTS_HOME: tmp });
    assert.ok(found, 'expected the Debian libtorch-dev installed by setup');
    assert.equal(found.source, 'system');
  });
});

describe('choosing a libtorch archive', () => {
  it('picks the newest CUDA build the driver can run, else the CPU build', () => {
    assert.equal(chooseVariant(null), 'cpu');
    assert.equal(chooseVariant(12.9), 'cu128');
    assert.equal(chooseVariant(12.6), 'cu126');
    assert.equal(chooseVariant(12.4), 'cu118');
    assert.equal(chooseVariant(11.4), 'cpu');
  });

  it('builds the official archive names', () => {
    assert.equal(
      archiveUrl('cpu', '2.7.0', 'linux', 'x64'),
      'https://download.pytorch.org/libtorch/cpu/libtorch-cxx11-abi-shared-with-deps-2.7.0%2Bcpu.zip',
    );
    assert.match(archiveUrl('cpu', '2.7.0', 'darwin', 'arm64'), /libtorch-macos-arm64-2\.7\.0\.zip$/);
    assert.throws(() => archiveUrl('cpu', '2.7.0', 'linux', 'ppc64'), /linux-ppc64/);
  });
});

describe('scripts/setup-libtorch download (local server)', function () {
  this.timeout(60000);
  let tmp: string;
  let served: Served;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-setup-'));
    const www = path.join(tmp, 'www');
    fs.mkdirSync(www);
    zipFolder(fakeLibtorch(path.join(tmp, 'src')), path.join(www, 'libtorch-test%2Bcpu.zip'));
    const whole = fs.readFileSync(path.join(www, 'libtorch-test%2Bcpu.zip'));
    fs.writeFileSync(path.join(www, 'broken.zip'), whole.subarray(0, whole.length >> 1));
    served = await serve(www);
  });
  after(async () => {
    await served.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('downloads, extracts and prints LIBTORCH; a second run downloads nothing', async () => {
    const home = path.join(tmp, 'home-ok');
    const first = await runSetup(home, served.url('libtorch-test%2Bcpu.zip'));
    assert.equal(first.status, 0, first.stderr);
    const lines = first.stdout.trim().split('\n');
    assert.equal(lines[lines.length - 1], `LIBTORCH=${path.join(home, 'libtorch')}`);
    assert.ok(fs.existsSync(path.join(home, 'libtorch', 'share', 'cmake', 'Torch', 'TorchConfig.cmake')));
    assert.equal(fs.statSync(path.join(home, 'libtorch', 'lib', 'libtorch.so')).size, 64 * 1024);
    assert.deepEqual(fs.readdirSync(home), ['libtorch'], 'archive and staging folders are removed');
    const before = served.requests.length;
    const second = await runSetup(home, served.url('libtorch-test%2Bcpu.zip'));
    assert.equal(second.status, 0, second.stderr);
    assert.equal(served.requests.length, before, 'the cached libtorch is reused');
  });

  it('fails clearly on a broken archive and leaves nothing half-extracted', async () => {
    const home = path.join(tmp, 'home-broken');
    const result = await runSetup(home, served.url('broken.zip'));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /broken\.zip is not a valid zip archive/);
    assert.deepEqual(fs.readdirSync(home), []);
  });

  it('fails clearly when the connection drops mid-download', async () => {
    const home = path.join(tmp, 'home-short');
    const result = await runSetup(home, served.url('short/libtorch-test%2Bcpu.zip'));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /download of http:\/\/127\.0\.0\.1:\d+\/short\/.* failed/);
    assert.deepEqual(fs.existsSync(home) ? fs.readdirSync(home) : [], []);
  });

  it('reports an HTTP error with its status', async () => {
    const result = await runSetup(path.join(tmp, 'home-404'), served.url('missing.zip'));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /HTTP 404/);
  });
});
