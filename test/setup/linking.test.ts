/**
 * One libtorch per build and per process: the build links the libraries of the libtorch it found,
 * never a mix, whatever else is installed; the process maps only the libtorch info() names.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ROOT, run, userEnv, venvBin } from '../helpers/torch-installs';

// Plain-JS install helpers (they run before TypeScript is compiled).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { findLibtorch, describeLibtorch } = require('../../scripts/find-libtorch.js');

/** The libtorch/c10 libraries a process has mapped, by real path. */
const MAPPED_SCRIPT = `
const { native } = require(${JSON.stringify(path.join(ROOT, 'lib', 'native.ts'))});
const info = native().info();
const maps = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n');
const libs = [...new Set(maps.map((l) => l.split(/\\s+/)[5]).filter((f) => f && /\\/lib(torch|c10)[^/]*\\.so/.test(f)))];
console.log(JSON.stringify({ info, libs }));
`;

describe('one libtorch per build and per process', function () {
  this.timeout(300_000);

  it('maps only the libraries of the libtorch that info() names', () => {
    const out = run(process.execPath, ['--import', 'tsx', '-e', MAPPED_SCRIPT]);
    const { info, libs } = JSON.parse(out.trim().split('\n').pop()!);
    const dir = fs.realpathSync(info.libtorchDir);
    assert.ok(libs.length >= 3, `expected libtorch, libtorch_cpu and libc10 mapped, got ${libs}`);
    for (const lib of libs) assert.equal(path.dirname(fs.realpathSync(lib)), dir, `${lib} is not from ${dir}`);
  });

  it("links pip torch 2.13's libraries, not Debian's 1.13, when both are installed", () => {
    const system = findLibtorch({ PATH: '/nonexistent', TORCHTS_HOME: '/nonexistent' });
    assert.ok(system && system.source === 'system', "expected Debian's libtorch-dev installed (CI installs it)");
    const pip = describeLibtorch(findLibtorch(userEnv([venvBin('cpu')])));
    assert.equal(pip.version, '2.13.0');
    const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-linkmix-'));
    try {
      run('cmake', ['-S', ROOT, '-B', buildDir, '-G', 'Unix Makefiles', `-DTorch_DIR=${pip.torchDir}`], { env: userEnv([]) });
      const link = fs.readFileSync(path.join(buildDir, 'CMakeFiles', 'torchts.dir', 'link.txt'), 'utf8');
      // Paths appear bare or inside linker flags such as -Wl,--no-as-needed,"<path>".
      const libs = [...link.matchAll(/(\/[^\s",]*\/lib(?:torch|torch_cpu|c10)\.so)/g)].map((m) => m[1]);
      assert.ok(libs.length >= 3, `expected libtorch, libtorch_cpu and libc10 on the link line:\n${link}`);
      for (const lib of libs) assert.ok(lib.startsWith(`${pip.prefix}/`), `${lib} is not pip torch's (${pip.prefix})`);
      assert.doesNotMatch(link, /x86_64-linux-gnu\/lib(torch|c10)/);
    } finally {
      fs.rmSync(buildDir, { recursive: true, force: true });
    }
  });
});
