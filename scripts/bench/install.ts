/**
 * `npm install` of the packed tarball into a new project: with a matching prebuilt binary against a
 * source build, for the libtorch found here (Debian's by default; put a venv first on PATH for pip's).
 *
 *   npx tsx scripts/bench/install.ts [--prebuilds <prebuilds folder>]
 *
 * Without --prebuilds it runs `npm run prebuild` for the libtorch found into a temporary folder.
 * npm's own cache is warm after the first install, as on a user's machine that has installed before.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { approveInstallScript, newProject, packWithPrebuilds, ROOT, run, userEnv } from '../../test/helpers/torch-installs';

function seconds(started: number): string {
  return ((Date.now() - started) / 1000).toFixed(1);
}

function main(): void {
  const args = process.argv.slice(2);
  const at = args.indexOf('--prebuilds');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-bench-install-'));
  try {
    let prebuilds = at >= 0 ? path.resolve(args[at + 1]) : '';
    if (!prebuilds) {
      prebuilds = path.join(tmp, 'prebuilds');
      run(process.execPath, [path.join(ROOT, 'scripts', 'prebuild.js'), '--out', prebuilds]);
    }
    const tarball = packWithPrebuilds(prebuilds, tmp);
    const env = userEnv([]);
    const timings: Array<[string, string, string]> = [];
    // TORCHTS_BUILD_FROM_SOURCE, not npm's --build-from-source: that one also makes sharp compile itself.
    for (const [name, extra] of [
      ['warm-up (fills npm cache)', {}],
      ['prebuilt binary', {}],
      ['source build (TORCHTS_BUILD_FROM_SOURCE=1)', { TORCHTS_BUILD_FROM_SOURCE: '1' }],
    ] as Array<[string, NodeJS.ProcessEnv]>) {
      const project = newProject(tmp, name.replace(/\W+/g, '-'));
      approveInstallScript(project, tarball);
      const started = Date.now();
      const output = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: project, env: { ...env, ...extra }, timeoutMs: 900_000 });
      const line = output.split('\n').find((l) => /torchts: (using|building)/.test(l)) ?? '';
      timings.push([name, seconds(started), line.trim()]);
    }
    console.log('npm install of the torchts tarball into a new project (wall time)');
    for (const [name, secs, line] of timings) console.log(`  ${name.padEnd(38)} ${secs.padStart(7)} s   ${line}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
