#!/usr/bin/env node
'use strict';
// `npm run prebuild`: builds one portable binary per libtorch variant this machine has, into
// prebuilds/<platform>-<arch>/<variant>/ (torchts.node + manifest.json), plus the libtorch-free
// loader prebuilds/<platform>-<arch>/torchts_preload.node. `npm pack` ships them; install.js
// and lib/native.ts pick the one matching the user's libtorch.
//
//   node scripts/prebuild.js [--torch <python | libtorch folder | system>]... [--out <dir>]
//
// Without --torch it builds for every libtorch it finds: LIBTORCH, python3's torch, the system
// one, the cache. Each build goes to build-prebuild/<variant>/ (kept, so a rebuild is quick),
// or is the source build in build/ when that was made against the same libtorch.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { findLibtorch, describeLibtorch } = require('./find-libtorch');
const binary = require('./binary');
const { build } = require('./install');

const root = path.resolve(__dirname, '..');

function parseArgs(argv) {
  const args = { torches: [], out: path.join(root, 'prebuilds') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if ((flag === '--torch' || flag === '--out') && value) {
      if (flag === '--torch') args.torches.push(value);
      else args.out = path.resolve(value);
      i++;
    } else {
      throw new Error(`unknown argument ${flag}; expected --torch <python|libtorch folder|system> or --out <dir>`);
    }
  }
  return args;
}

/** A libtorch named on the command line: a Python interpreter, a libtorch folder, or "system". */
function libtorchFrom(spec) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  if (spec === 'system') return findLibtorch({ PATH: '/nonexistent', TORCHTS_HOME: '/nonexistent' });
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) return findLibtorch({ ...env, LIBTORCH: spec });
  const found = findLibtorch({ ...env, TORCHTS_PYTHON: spec, PATH: '/nonexistent' });
  if (!found || !found.source.startsWith('python')) throw new Error(`--torch ${spec}: that python has no torch with cmake files`);
  return found;
}

/** Every libtorch this machine has, once each. */
function discover() {
  const seen = new Map();
  const add = (found) => found && !seen.has(found.torchDir) && seen.set(found.torchDir, found);
  add(findLibtorch());
  add(libtorchFrom('system'));
  return [...seen.values()];
}

/** The sonames a shared library needs (readelf is part of binutils, which every compiler brings). */
function neededSonames(file) {
  const out = execFileSync('readelf', ['-d', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

function glibcVersion() {
  const report = process.report && process.report.getReport();
  return (report && report.header && report.header.glibcVersionRuntime) || null;
}

/**
 * Builds `lib`'s portable binary. The source build in build/ serves when it is for the same
 * libtorch (one compile links both binaries); otherwise build-prebuild/<variant>/.
 */
function prebuild(found, out) {
  const lib = describeLibtorch(found);
  const variant = binary.variantName(lib);
  const record = binary.readRecord(root);
  const sameAsSource = record && record.kind === 'source' && record.libtorch.dir === lib.libDir;
  console.log(`prebuild: ${variant} from libtorch ${lib.version} (${lib.source})`);
  const release = build(lib, { outDir: sameAsSource ? 'build' : path.join('build-prebuild', variant) });
  const platformDir = path.join(out, binary.PLATFORM);
  const target = path.join(platformDir, variant);
  fs.mkdirSync(target, { recursive: true });
  const addon = path.join(release, 'portable', 'torchts.node');
  fs.copyFileSync(addon, path.join(target, 'torchts.node'));
  fs.copyFileSync(path.join(release, 'torchts_preload.node'), path.join(platformDir, 'torchts_preload.node'));
  const manifest = {
    variant,
    platform: binary.PLATFORM,
    torchVersion: lib.version,
    majorMinor: lib.majorMinor,
    cxx11Abi: lib.cxx11Abi,
    cuda: lib.cuda,
    needed: neededSonames(addon),
    glibc: glibcVersion(),
    builtFrom: lib.source,
  };
  fs.writeFileSync(path.join(target, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { variant, target };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const torches = args.torches.length ? args.torches.map(libtorchFrom) : discover();
  if (!torches.length) throw new Error('no libtorch found to build against; pass --torch or set LIBTORCH');
  const built = torches.map((found) => prebuild(found, args.out));
  for (const { variant, target } of built) console.log(`prebuild: ${variant} -> ${path.relative(root, target)}`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(`prebuild: ${err.message}`);
    process.exit(1);
  }
}
