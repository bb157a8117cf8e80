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

function fromPython(env) {
  for (const python of pythonCandidates(env)) {
    let prefix;
    try {
      prefix = execFileSync(python, ['-c', 'import torch.utils; print(torch.utils.cmake_prefix_path)'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 60000,
      }).trim();
    } catch {
      continue;
    }
    const dir = path.join(prefix, 'Torch');
    if (hasConfig(dir)) return { torchDir: dir, source: `python torch (${python})` };
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

module.exports = { findLibtorch, torchDirOf };

if (require.main === module) {
  const found = findLibtorch();
  if (!found) {
    console.error('No libtorch found. Run scripts/setup-libtorch, or set LIBTORCH.');
    process.exit(1);
  }
  console.log(`${found.torchDir}\t${found.source}`);
}
