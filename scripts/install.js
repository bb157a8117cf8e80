#!/usr/bin/env node
'use strict';
// `npm install` step: use a prebuilt binary when one loads, otherwise find libtorch
// (or set one up with scripts/setup-libtorch) and build the addon with cmake-js.
// Plain JavaScript: it runs before TypeScript is compiled.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { findLibtorch, describeLibtorch } = require('./find-libtorch');
const binary = require('./binary');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');
const truthy = (value) => Boolean(value) && value !== 'false' && value !== '0';
// `npm install --build-from-source` sets npm_config_build_from_source.
const fromSource = force || truthy(process.env.npm_config_build_from_source) || truthy(process.env.TORCHTS_BUILD_FROM_SOURCE);

function log(message) {
  console.log(`torchts: ${message}`);
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

/** Why a source build cannot run here (no cmake, no C++ compiler), or null. */
function missingBuildTools() {
  const works = (command, args) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;
  if (!works('cmake', ['--version'])) return 'cmake is not installed';
  const cxx = process.env.CXX || 'c++';
  if (!works(cxx, ['--version'])) return `no C++ compiler (${cxx}) is installed`;
  return null;
}

/** CUDA architectures for a CUDA libtorch: datacenter and consumer generations its CUDA supports. */
function cudaArchList(cuda) {
  const major = Number(String(cuda).split('.')[0]);
  if (!(major >= 12)) return '6.0;7.0;7.5;8.0;8.6';
  return major >= 13 ? '7.5;8.0;8.6;8.9;9.0;10.0;12.0' : '7.0;7.5;8.0;8.6;8.9;9.0';
}

/** The Torch_DIR a build folder was configured with, or null. */
function configuredTorchDir(buildDir) {
  const cache = path.join(buildDir, 'CMakeCache.txt');
  if (!fs.existsSync(cache)) return null;
  const match = fs.readFileSync(cache, 'utf8').match(/^Torch_DIR:[A-Z]+=(.*)$/m);
  return match ? match[1] : null;
}

/**
 * Builds the addon with cmake-js against `lib` into `outDir` (relative to the package root);
 * throws when the build fails. A folder configured for another libtorch starts afresh: CMake keeps
 * the libraries it found in its cache, and reusing them would link two libtorches.
 */
function build(lib, { outDir = 'build' } = {}) {
  const buildDir = path.join(root, outDir);
  const configured = configuredTorchDir(buildDir);
  if (configured && configured !== lib.torchDir) fs.rmSync(buildDir, { recursive: true, force: true });
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
  const args = [cmakeJs, 'compile', '-p', jobs, '-O', outDir, `--CDTorch_DIR=${lib.torchDir}`];
  const env = { ...process.env, TORCHTS_LIBTORCH_SOURCE: lib.source };
  if (lib.cuda && !env.TORCH_CUDA_ARCH_LIST) env.TORCH_CUDA_ARCH_LIST = cudaArchList(lib.cuda);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) throw new Error(`the native build failed (cmake-js exit ${result.status}).`);
  return path.join(buildDir, 'Release');
}

/** Uses the prebuilt binary for `lib` when one is shipped and loads; else says why not. */
function usePrebuilt(lib) {
  const { record, reason } = binary.matchPrebuilt(root, lib);
  if (!record) return reason;
  const failure = binary.probeRecord(root, record);
  if (failure) return `the prebuilt ${record.variant} binary does not load here (${failure})`;
  binary.writeRecord(root, record);
  log(`using the prebuilt ${record.variant} binary with libtorch ${lib.version} (${lib.source})`);
  return null;
}

function buildFromSource(lib, why) {
  log(why ? `building from source: ${why}` : `building from source against libtorch ${lib.version} (${lib.source})`);
  const missing = missingBuildTools();
  if (missing) throw new Error(binary.noBinaryMessage(root, lib, [why, `a source build is not possible: ${missing}`]));
  build(lib);
  const record = binary.sourceRecord(lib);
  const failure = binary.probeRecord(root, record);
  if (failure) throw new Error(`the addon built against ${lib.torchDir} does not load: ${failure}`);
  binary.writeRecord(root, record);
}

function main() {
  if (!force && process.env.TORCHTS_SKIP_BUILD) return log('TORCHTS_SKIP_BUILD set; not building');
  const found = findLibtorch() || setUpLibtorch();
  if (!found) throw new Error('no libtorch after setup. Set LIBTORCH to a libtorch folder.');
  const lib = describeLibtorch(found);
  const why = fromSource ? null : usePrebuilt(lib);
  if (fromSource || why) buildFromSource(lib, why);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(`torchts: ${err.message}`);
    process.exit(1);
  }
}

module.exports = { build, cudaArchList };
