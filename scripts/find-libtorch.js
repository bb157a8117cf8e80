'use strict';
// Finds a libtorch to build against, in the order of DESIGN.md:
//   1. LIBTORCH (a libtorch folder) or Torch_DIR (its cmake folder);
//   2. a Python torch install (how most CUDA users already have a CUDA libtorch);
//   3. the system one (Debian/Ubuntu libtorch-dev).
// Plain JavaScript: it runs at install time, before TypeScript is compiled.
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const CONFIG = 'TorchConfig.cmake';

function hasConfig(dir) {
  return Boolean(dir) && fs.existsSync(path.join(dir, CONFIG));
}

/** Torch_DIR inside a libtorch folder (official archive or cache), if it is one. */
function torchDirOf(libtorch) {
  const dir = path.join(libtorch, 'share', 'cmake', 'Torch');
  return hasConfig(dir) ? dir : null;
}

function fromEnvironment(env) {
  if (env.Torch_DIR) {
    if (!hasConfig(env.Torch_DIR)) {
      throw new Error(`Torch_DIR=${env.Torch_DIR} has no ${CONFIG}; expected libtorch's share/cmake/Torch folder.`);
    }
    return { torchDir: env.Torch_DIR, source: 'Torch_DIR' };
  }
  if (env.LIBTORCH) {
    const dir = torchDirOf(env.LIBTORCH);
    if (!dir) throw new Error(`LIBTORCH=${env.LIBTORCH} is not a libtorch folder (no share/cmake/Torch/${CONFIG}).`);
    return { torchDir: dir, source: 'LIBTORCH' };
  }
  return null;
}

function pythonCandidates(env) {
  const list = [];
  if (env.TORCHTS_PYTHON) list.push(env.TORCHTS_PYTHON);
  list.push('python3', '/usr/bin/python3', 'python');
  return [...new Set(list)];
}

// Locates the torch package without importing it (an import takes seconds and loads CUDA).
const PYTHON_PROBE = [
  'import importlib.util, sys',
  'spec = importlib.util.find_spec("torch")',
  'print(sys.executable)',
  'print(spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else "")',
].join('\n');

function fromPython(env) {
  for (const python of pythonCandidates(env)) {
    let lines;
    try {
      lines = execFileSync(python, ['-c', PYTHON_PROBE], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
        env,
      }).trim().split('\n');
    } catch {
      continue;
    }
    const [executable, torchPackage] = lines;
    if (!torchPackage) continue;
    const dir = path.join(torchPackage, 'share', 'cmake', 'Torch');
    if (hasConfig(dir)) return { torchDir: dir, source: `python torch (${executable})` };
  }
  return null;
}

const SYSTEM_DIRS = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/lib/cmake/Torch',
  '/usr/share/cmake/Torch',
  '/usr/local/share/cmake/Torch',
  '/usr/local/lib/cmake/Torch',
];

function fromSystem() {
  const dir = SYSTEM_DIRS.find(hasConfig);
  return dir ? { torchDir: dir, source: 'system' } : null;
}

function fromCache(env) {
  const home = env.TORCHTS_HOME || path.join(require('os').homedir(), '.cache', 'torchts');
  const dir = torchDirOf(path.join(home, 'libtorch'));
  return dir ? { torchDir: dir, source: `cache (${path.join(home, 'libtorch')})` } : null;
}

/** The first libtorch found, or null. Throws when an explicit setting is wrong. */
function findLibtorch(env = process.env) {
  return fromEnvironment(env) || fromPython(env) || fromSystem() || fromCache(env);
}

/** The folder holding libtorch's shared libraries: <prefix>/lib, or beside cmake/ (Debian's multiarch). */
function libDirOf(torchDir) {
  const candidates = [path.resolve(torchDir, '..', '..', '..', 'lib'), path.resolve(torchDir, '..', '..')];
  return candidates.find((dir) => fs.existsSync(dir) && fs.readdirSync(dir).some((f) => /^libtorch_cpu\.(so|dylib)/.test(f))) || null;
}

/** The file in `libDir` whose name starts with `stem` + ".so" (libc10.so, libc10.so.1.13, ...). */
function libraryFile(libDir, stem) {
  const names = fs.readdirSync(libDir).filter((f) => f === `${stem}.so` || f.startsWith(`${stem}.so.`) || f === `${stem}.dylib`);
  return names.length ? path.join(libDir, names.sort()[0]) : null;
}

/** CUDA version of a CUDA libtorch: torch/version.py (pip) or build-version (official archive). */
function cudaVersionOf(prefix) {
  const versionPy = path.join(prefix, 'version.py');
  if (fs.existsSync(versionPy)) {
    const match = fs.readFileSync(versionPy, 'utf8').match(/^cuda[^=\n]*=\s*'([\d.]+)'/m);
    if (match) return match[1];
  }
  const buildVersion = path.join(prefix, 'build-version');
  if (fs.existsSync(buildVersion)) {
    const match = fs.readFileSync(buildVersion, 'utf8').match(/\+cu(\d+)(\d)\b/);
    if (match) return `${match[1]}.${match[2]}`;
  }
  return 'unknown';
}

/**
 * What a found libtorch is, read from its files (nothing is loaded): version, library folder,
 * C++ ABI, CUDA. This is what a prebuilt binary must match.
 */
function describeLibtorch(found) {
  const prefix = path.resolve(found.torchDir, '..', '..', '..');
  const versionFile = path.join(found.torchDir, 'TorchConfigVersion.cmake');
  const versionMatch = fs.existsSync(versionFile) && fs.readFileSync(versionFile, 'utf8').match(/PACKAGE_VERSION "([^"]+)"/);
  const version = versionMatch ? versionMatch[1] : 'unknown';
  const libDir = libDirOf(found.torchDir);
  const c10 = libDir && libraryFile(libDir, 'libc10');
  // Libraries built with the new libstdc++ ABI name std::string as std::__cxx11::basic_string.
  const cxx11Abi = c10 ? fs.readFileSync(c10).includes('St7__cxx11') : null;
  const cudaBuild = Boolean(libDir && libraryFile(libDir, 'libtorch_cuda'));
  return {
    ...found,
    prefix,
    libDir,
    version,
    majorMinor: version.split('.').slice(0, 2).join('.'),
    cxx11Abi,
    cuda: cudaBuild ? cudaVersionOf(prefix) : null,
  };
}

module.exports = { findLibtorch, describeLibtorch, libraryFile, torchDirOf };

if (require.main === module) {
  const found = findLibtorch();
  if (!found) {
    console.error('No libtorch found. Run scripts/setup-libtorch, or set LIBTORCH.');
    process.exit(1);
  }
  console.log(JSON.stringify(describeLibtorch(found), null, 2));
}
