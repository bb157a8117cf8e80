/**
 * Runs torchts-train as a child process, the way a user does, from the
 * TypeScript sources (through tsx's loader, so no build step is needed).
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';

export const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'scripts', 'cli.ts');
/** tsx's loader, registered the way `node --import tsx` does. */
const TSX = pathToFileURL(require.resolve('tsx', { paths: [ROOT] })).href;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  child: ChildProcess;
  /** Everything printed so far. */
  readonly stdout: string;
  done: Promise<CliResult>;
}

/** Starts the CLI in `cwd`; stdout is a pipe (not a TTY), as in CI logs. */
export function startCli(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    cwd,
    env: { ...process.env, ...env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    done,
  };
}

export function runCli(args: readonly string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, cwd, env).done;
}

/** A temporary folder removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves when `predicate` holds for the run's stdout (polling), or rejects after `ms`. */
export async function waitForOutput(run: CliRun, predicate: (stdout: string) => boolean, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!predicate(run.stdout)) {
    if (run.child.exitCode !== null) throw new Error(`the CLI exited (${run.child.exitCode}) before the expected output:\n${run.stdout}`);
    if (Date.now() - start > ms) throw new Error(`timed out waiting for output:\n${run.stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
