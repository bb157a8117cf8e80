#!/usr/bin/env node
'use strict';
// `npm install` step: use a prebuilt binary when one loads, otherwise find libtorch
// (or set one up with scripts/setup-libtorch) and build the addon with cmake-js.
// Plain JavaScript: it runs before TypeScript is compiled.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibtorch } = require('./find-libtorch');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

function log(message) {
  console.log(`torchts: ${message}`);
}

/** Loads a candidate binary in a child process, so a bad one cannot crash this one. */
function loads(file) {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).info()`], { stdio: 'ignore' });
  return probe.status === 0;
}

function prebuilt() {
  const file = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'torchts.node');
  return fs.existsSync(file) && loads(file) ? file : null;
}

function setUpLibtorch() {
  log('no libtorch found; running scripts/setup-libtorch');
  const setup = spawnSync(process.execPath, [path.join(__dirname, 'setup-libtorch.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  process.stdout.write(setup.stdout || '');
  if (setup.status !== 0) {
    throw new Error('scripts/setup-libtorch failed (see above). Set LIBTORCH to a libtorch folder and retry.');
  }
  // setup-libtorch prints `LIBTORCH=<dir>` as its last line when it downloaded one.
  const line = (setup.stdout || '').trim().split('\n').pop() || '';
  const env = { ...process.env };
  if (line.startsWith('LIBTORCH=')) env.LIBTORCH = line.slice('LIBTORCH='.length);
  return findLibtorch(env);
}

function build(found) {
  log(`building the addon against libtorch at ${found.torchDir} (${found.source})`);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
  const args = [cmakeJs, 'compile', '-p', jobs, `--CDTorch_DIR=${found.torchDir}`];
  const result = spawnSync(process.execPath, args, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TORCHTS_LIBTORCH_SOURCE: found.source },
  });
  if (result.status !== 0) throw new Error(`the native build failed (cmake-js exit ${result.status}).`);
}

function main() {
  if (!force && process.env.TORCHTS_SKIP_BUILD) return log('TORCHTS_SKIP_BUILD set; not building');
  const ready = !force && prebuilt();
  if (ready) return log(`using the prebuilt binary ${path.relative(root, ready)}`);
  const found = findLibtorch() || setUpLibtorch();
  if (!found) throw new Error('no libtorch after setup. Set LIBTORCH to a libtorch folder.');
  build(found);
}

try {
  main();
} catch (err) {
  console.error(`torchts: ${err.message}`);
  process.exit(1);
}
