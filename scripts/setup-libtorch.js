#!/usr/bin/env node
'use strict';
// Gets a libtorch to build against when none is found:
//   - Debian/Ubuntu as root: `apt-get install libtorch-dev` (CPU);
//   - elsewhere: the official libtorch archive (CPU, or the CUDA build that the
//     installed driver can run) downloaded into the cache folder.
// Prints `LIBTORCH=<folder>` as its last line when it downloaded one.
//
// Options: --download (skip apt), --cpu (never pick a CUDA build), --force (ignore what is found).
// Environment: TORCHTS_HOME (cache, default ~/.cache/torchts), TORCHTS_LIBTORCH_URL (archive URL,
// overrides the choice below), TORCHTS_LIBTORCH_VERSION (default below).
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const { spawnSync } = require('child_process');
const { findLibtorch, torchDirOf } = require('./find-libtorch');

const DEFAULT_VERSION = '2.7.0';
// CUDA builds published for DEFAULT_VERSION, newest first, with the CUDA version each needs.
const CUDA_BUILDS = [
  { tag: 'cu128', cuda: 12.8 },
  { tag: 'cu126', cuda: 12.6 },
  { tag: 'cu118', cuda: 11.8 },
];

function say(message) {
  console.error(`setup-libtorch: ${message}`);
}

function cacheHome(env = process.env) {
  return env.TORCHTS_HOME || path.join(os.homedir(), '.cache', 'torchts');
}

function commandExists(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** The CUDA version the driver supports ("CUDA Version: 12.4" in nvidia-smi), or null. */
function driverCudaVersion() {
  if (!commandExists('nvidia-smi')) return null;
  const out = spawnSync('nvidia-smi', [], { encoding: 'utf8' }).stdout || '';
  const match = out.match(/CUDA Version:\s*(\d+)\.(\d+)/);
  return match ? Number(`${match[1]}.${match[2]}`) : null;
}

/** Which archive variant to get: 'cpu' or the newest CUDA build the driver can run. */
function chooseVariant(driverCuda) {
  if (driverCuda == null) return 'cpu';
  const build = CUDA_BUILDS.find((b) => b.cuda <= driverCuda);
  return build ? build.tag : 'cpu';
}

function archiveUrl(variant, version = DEFAULT_VERSION, platform = process.platform, arch = process.arch) {
  const base = 'https://download.pytorch.org/libtorch';
  if (platform === 'darwin') {
    if (arch !== 'arm64') throw new Error(`no official libtorch ${version} archive for macOS ${arch}`);
    return `${base}/cpu/libtorch-macos-arm64-${version}.zip`;
  }
  if (platform === 'linux' && arch === 'x64') {
    return `${base}/${variant}/libtorch-cxx11-abi-shared-with-deps-${version}%2B${variant}.zip`;
  }
  if (platform === 'win32' && arch === 'x64') {
    return `${base}/${variant}/libtorch-win-shared-with-deps-${version}%2B${variant}.zip`;
  }
  throw new Error(`no official libtorch archive for ${platform}-${arch}; build libtorch and set LIBTORCH`);
}

function aptInstall() {
  // libgloo-dev: gloo's headers, which data-parallel training (c10d's Gloo) needs at build time.
  say('installing Debian/Ubuntu libtorch-dev and libgloo-dev with apt-get');
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  if (update.status !== 0) return false;
  const install = spawnSync('apt-get', ['install', '-y', '-qq', 'libtorch-dev', 'libgloo-dev'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return install.status === 0;
}

function canUseApt() {
  return process.platform === 'linux' && typeof process.getuid === 'function' && process.getuid() === 0 &&
    commandExists('apt-get');
}

/** Streams `url` into `file` (via a temporary file renamed when complete), with progress on stderr. */
function download(url, file, redirects = 5) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const request = client.get(url, (response) => {
      const { statusCode = 0, headers } = response;
      if (statusCode >= 300 && statusCode < 400 && headers.location && redirects > 0) {
        response.resume();
        resolve(download(new URL(headers.location, url).toString(), file, redirects - 1));
        return;
      }
      if (statusCode !== 200) {
        response.resume();
        reject(new Error(`download of ${url} failed: HTTP ${statusCode}`));
        return;
      }
      const total = Number(headers['content-length'] || 0);
      const partial = `${file}.part-${process.pid}`;
      const out = fs.createWriteStream(partial);
      let received = 0;
      let lastShown = 0;
      response.on('data', (chunk) => {
        received += chunk.length;
        const now = Date.now();
        if (now - lastShown > 2000) {
          lastShown = now;
          const pct = total ? ` ${((100 * received) / total).toFixed(0)}%` : '';
          say(`downloaded ${(received / 1e6).toFixed(1)} MB${pct}`);
        }
      });
      response.pipe(out);
      const fail = (err) => {
        out.destroy();
        fs.rmSync(partial, { force: true });
        reject(new Error(`download of ${url} failed: ${err.message}`));
      };
      response.on('error', fail);
      response.on('aborted', () => fail(new Error('connection closed early')));
      out.on('error', fail);
      out.on('finish', () => {
        if (total && received !== total) return fail(new Error(`got ${received} of ${total} bytes`));
        fs.renameSync(partial, file);
        resolve(file);
      });
    });
    request.on('error', (err) => reject(new Error(`download of ${url} failed: ${err.message}`)));
  });
}

/** Extracts a zip with the system's unzip, or Python's zipfile where there is no unzip. */
function unzip(archive, into) {
  const attempts = [];
  if (commandExists('unzip')) attempts.push(['unzip', ['-q', '-o', archive, '-d', into]]);
  for (const python of ['python3', 'python']) {
    if (commandExists(python)) attempts.push([python, ['-m', 'zipfile', '-e', archive, into]]);
  }
  if (attempts.length === 0) throw new Error('cannot extract the libtorch zip: install unzip (or python3)');
  const [command, args] = attempts[0];
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${archive} is not a valid zip archive (${command}: ${(result.stderr || '').trim().split('\n')[0]})`);
  }
}

/** Downloads and extracts libtorch into <cache>/libtorch; returns that folder. */
async function downloadLibtorch({ url, home = cacheHome() }) {
  const target = path.join(home, 'libtorch');
  if (torchDirOf(target)) {
    say(`already in the cache: ${target}`);
    return target;
  }
  fs.mkdirSync(home, { recursive: true });
  const archive = path.join(home, path.basename(new URL(url).pathname).replace(/%2B/gi, '+'));
  if (!fs.existsSync(archive)) {
    say(`downloading ${url}`);
    await download(url, archive);
  }
  // Extract beside the target and rename at the end, so a failure leaves nothing half-extracted.
  const staging = fs.mkdtempSync(path.join(home, 'extract-'));
  try {
    unzip(archive, staging);
    const extracted = path.join(staging, 'libtorch');
    if (!torchDirOf(extracted)) {
      throw new Error(`${archive} does not contain libtorch/share/cmake/Torch/TorchConfig.cmake`);
    }
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(extracted, target);
  } catch (err) {
    fs.rmSync(archive, { force: true });
    throw err;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  fs.rmSync(archive, { force: true });
  return target;
}

async function main(argv = process.argv.slice(2), env = process.env) {
  const flags = new Set(argv);
  const unknown = argv.filter((a) => !['--download', '--cpu', '--force'].includes(a));
  if (unknown.length) throw new Error(`unknown option ${unknown[0]}; expected --download, --cpu or --force`);
  if (!flags.has('--force')) {
    const found = findLibtorch(env);
    if (found) {
      say(`libtorch already available: ${found.torchDir} (${found.source})`);
      return;
    }
  }
  if (!flags.has('--download') && !env.TORCHTS_LIBTORCH_URL && canUseApt()) {
    if (aptInstall() && findLibtorch(env)) return;
    say('apt-get could not install libtorch-dev; downloading the official archive instead');
  }
  const variant = flags.has('--cpu') ? 'cpu' : chooseVariant(driverCudaVersion());
  const url = env.TORCHTS_LIBTORCH_URL || archiveUrl(variant, env.TORCHTS_LIBTORCH_VERSION || DEFAULT_VERSION);
  const dir = await downloadLibtorch({ url, home: cacheHome(env) });
  console.log(`LIBTORCH=${dir}`);
}

module.exports = { chooseVariant, archiveUrl, downloadLibtorch, main };

if (require.main === module) {
  main().catch((err) => {
    say(err.message);
    process.exit(1);
  });
}
