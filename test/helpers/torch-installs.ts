/**
 * The libtorch installs the packaging tests build and run against, as users have them: Debian's
 * libtorch-dev (1.13) and pip torch in a venv, which scripts/setup-test-torch.sh creates.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
const HOME = process.env.TORCHTS_HOME ?? path.join(os.homedir(), '.cache', 'torchts');

/** A pip torch venv's bin folder; fails naming the set-up command when it is missing. */
export function venvBin(kind: 'cpu' | 'cuda'): string {
  const name = kind === 'cpu' ? 'venv-torch2.13-cpu' : 'venv-torch2.14-cu13';
  const bin = path.join(HOME, name, 'bin');
  if (!fs.existsSync(path.join(bin, 'python3'))) {
    throw new Error(`${bin}/python3 is missing: run \`bash scripts/setup-test-torch.sh ${kind}\` (CI's .ci/run does)`);
  }
  return bin;
}

/** A folder of cmake, make, ninja and compiler commands that all fail, as on a machine without them. */
export function noCompilerBin(parent: string): string {
  const bin = path.join(parent, 'no-compiler-bin');
  fs.mkdirSync(bin, { recursive: true });
  for (const tool of ['cmake', 'make', 'ninja', 'cc', 'gcc', 'g++', 'c++', 'clang', 'clang++']) {
    const file = path.join(bin, tool);
    fs.writeFileSync(file, `#!/bin/sh\necho "${tool}: not installed on this test machine" >&2\nexit 127\n`);
    fs.chmodSync(file, 0o755);
  }
  return bin;
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${output.slice(-4000)}`);
  }
  return output;
}

/**
 * The environment of a user's shell: this one without npm's lifecycle variables, torchts overrides
 * or an activated test venv (the suite itself may run with one first on PATH), then `pathPrefix`.
 */
export function userEnv(pathPrefix: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|TORCHTS_ADDON$|TORCHTS_PYTHON$|LIBTORCH$|VIRTUAL_ENV$|INIT_CWD$)/i.test(key)) env[key] = value;
  }
  const inherited = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => !dir.startsWith(path.join(HOME, 'venv-')));
  env.PATH = [...pathPrefix, ...inherited].join(path.delimiter);
  return env;
}

/**
 * `npm pack` of this checkout with the prebuilt binaries in `prebuilds` (a prebuilds/ tree)
 * instead of any in the checkout; returns the tarball's path in `outDir`.
 */
export function packWithPrebuilds(prebuilds: string, outDir: string): string {
  const listing = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { env: userEnv([]) }))[0];
  const stage = fs.mkdtempSync(path.join(outDir, 'stage-'));
  for (const { path: file } of listing.files as Array<{ path: string }>) {
    if (file.startsWith('prebuilds/')) continue;
    fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(stage, file));
  }
  fs.cpSync(prebuilds, path.join(stage, 'prebuilds'), { recursive: true });
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', outDir], { cwd: stage, env: userEnv([]) }))[0];
  fs.rmSync(stage, { recursive: true, force: true });
  return path.join(outDir, packed.filename as string);
}

/**
 * Approves torchts's install script in `project` the way `npm install-scripts approve torchts` does
 * for a tarball (its file: spec): npm 11 runs a dependency's install script only when approved.
 */
export function approveInstallScript(project: string, tarball: string): void {
  const file = path.join(project, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  manifest.allowScripts = { [`file:${tarball}`]: true };
  fs.writeFileSync(file, JSON.stringify(manifest));
}

/** A new npm project folder with nothing installed. */
export function newProject(parent: string, name: string): string {
  const dir = path.join(parent, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}
