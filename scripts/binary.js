'use strict';
// Which compiled addon serves the libtorch found, and how it is loaded. Shared by the install
// step (install.js), the prebuild step (prebuild.js) and the runtime loader (lib/native.ts).
// Plain JavaScript: it runs at install time, before TypeScript is compiled.
//
// A prebuilt binary is built per variant: platform-arch x libtorch major.minor x C++ ABI x
// cpu or CUDA major, and names libtorch's libraries by soname only (no RPATH). To load one, the
// user's libtorch libraries are loaded first by full path (torchts_preload.node); the dynamic
// linker then resolves the addon's sonames to them.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const PLATFORM = `${process.platform}-${process.arch}`;
const RECORD = 'torchts-binding.json';
const SOURCE_BUILD = path.join('build', 'Release', 'torchts.node');

/** The variant a libtorch (describeLibtorch) or a manifest stands for, e.g. "torch2.13-cxx11-cpu". */
function variantName(lib) {
  const abi = lib.cxx11Abi === false ? 'cxx03' : 'cxx11';
  const device = lib.cuda ? `cu${String(lib.cuda).split('.')[0]}` : 'cpu';
  return `torch${lib.majorMinor}-${abi}-${device}`;
}

function prebuildsDir(root) {
  return path.join(root, 'prebuilds', PLATFORM);
}

/** The prebuilt binaries shipped for this platform: [{ dir, manifest }]. */
function prebuiltVariants(root) {
  const dir = prebuildsDir(root);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => path.join(dir, name, 'manifest.json'))
    .filter((file) => fs.existsSync(file))
    .map((file) => ({ dir: path.dirname(file), manifest: JSON.parse(fs.readFileSync(file, 'utf8')) }));
}

/** libtorch's own libraries among a binary's needed sonames (libc10, libtorch*, ...). */
function libtorchSonames(needed) {
  return needed.filter((soname) => /^lib(torch|c10)/.test(soname));
}

/**
 * The prebuilt binary for `lib`, as a loadable record, or the reason there is none:
 * { record } or { reason }.
 */
function matchPrebuilt(root, lib) {
  const want = variantName(lib);
  const variants = prebuiltVariants(root);
  const found = variants.find((v) => v.manifest.variant === want);
  if (!found) {
    return { reason: `no prebuilt binary for ${want} (libtorch ${lib.version}); shipped: ${shippedList(variants)}` };
  }
  const sonames = libtorchSonames(found.manifest.needed);
  const missing = sonames.filter((soname) => !fs.existsSync(path.join(lib.libDir, soname)));
  if (missing.length) {
    return { reason: `the prebuilt ${want} binary needs ${missing.join(', ')}, which ${lib.libDir} does not have` };
  }
  return {
    record: {
      kind: 'prebuilt',
      variant: want,
      addon: path.relative(root, path.join(found.dir, 'torchts.node')),
      preloader: path.relative(root, path.join(prebuildsDir(root), 'torchts_preload.node')),
      preload: sonames.map((soname) => path.join(lib.libDir, soname)),
      libtorch: summary(lib),
    },
  };
}

function shippedList(variants) {
  return variants.length ? variants.map((v) => v.manifest.variant).join(', ') : 'none';
}

/** The facts about a libtorch that info() reports. */
function summary(lib) {
  return { version: lib.version, source: lib.source, dir: lib.libDir, cuda: lib.cuda, cxx11Abi: lib.cxx11Abi };
}

function sourceRecord(lib) {
  return { kind: 'source', variant: variantName(lib), addon: SOURCE_BUILD, libtorch: summary(lib) };
}

/** Loads the addon a record names, in this process (preloading libtorch for a prebuilt one). */
function loadRecord(root, record) {
  if (record.kind === 'prebuilt') {
    const preloader = require(path.resolve(root, record.preloader));
    const error = preloader.preload(record.preload);
    if (error) throw new Error(`could not load libtorch ${record.libtorch.version} for the prebuilt binary: ${error}`);
  }
  return require(path.resolve(root, record.addon));
}

/** Whether the files a record names are all still there. */
function recordUsable(root, record) {
  const files = [record.addon, ...(record.kind === 'prebuilt' ? [record.preloader, ...record.preload] : [])];
  return files.every((file) => fs.existsSync(path.resolve(root, file)));
}

function readRecord(root) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, RECORD), 'utf8'));
  } catch {
    return null;
  }
}

function writeRecord(root, record) {
  const file = path.join(root, RECORD);
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Loads a record in a child process, so a bad binary cannot crash this one, and checks that the
 * libtorch it runs on is the one expected. Resolves to null when it loads, else why not.
 */
function probeRecord(root, record) {
  const script = [
    `const binary = require(${JSON.stringify(__filename)});`,
    'const record = JSON.parse(process.argv[1]);',
    `const info = binary.loadRecord(${JSON.stringify(root)}, record).info();`,
    'process.stdout.write(JSON.stringify(info));',
  ].join('\n');
  const child = spawnSync(process.execPath, ['-e', script, JSON.stringify(record)], { encoding: 'utf8', timeout: 120000 });
  if (child.status !== 0) {
    const lines = `${child.stderr || ''}`.split('\n').filter((line) => /Error|error:|undefined symbol/.test(line));
    return lines[0] ? lines[0].trim() : `the loader exited with ${child.status ?? child.signal}`;
  }
  const info = JSON.parse(child.stdout);
  const want = record.libtorch.version.split('.').slice(0, 2).join('.');
  if (!info.torchVersion.startsWith(`${want}.`) && info.torchVersion !== want) {
    return `it was built for libtorch ${info.torchVersion}, not ${record.libtorch.version}`;
  }
  return null;
}

/** The one error for a libtorch that no shipped binary serves and that cannot be built here. */
function noBinaryMessage(root, lib, reasons) {
  return [
    `no native addon for libtorch ${lib.version} (${variantName(lib)}, ${lib.source}, libraries in ${lib.libDir}).`,
    `Prebuilt binaries in this package: ${shippedList(prebuiltVariants(root))}.`,
    ...reasons.filter(Boolean).map((reason) => `- ${reason}`),
    'To build from source, install cmake and a C++ compiler (g++ or clang), then run',
    '`npm rebuild torchts` (`npm run build:native` in a clone). npm 11 runs that build only once',
    'the project approves it: `npm install-scripts approve torchts` first. To use a shipped binary instead,',
    "point LIBTORCH, or the python3 on PATH, at a libtorch that one of them serves.",
  ].join('\n');
}

module.exports = {
  PLATFORM,
  RECORD,
  SOURCE_BUILD,
  variantName,
  prebuildsDir,
  prebuiltVariants,
  matchPrebuilt,
  sourceRecord,
  loadRecord,
  recordUsable,
  readRecord,
  writeRecord,
  probeRecord,
  noBinaryMessage,
};
