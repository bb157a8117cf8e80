/**
 * dist/ as `npm install` builds it (npm's prepare: a clean `tsc -p tsconfig.json`), built once per
 * mocha run for the tests that load the package the way users do. A clean build, because a file
 * left over from an older tree (lib/learn/callbacks.js beside a new callbacks/ folder) shadows
 * the new one in resolution and would be packed.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');

let built = false;

/** Builds dist/ afresh once (about 10 s); throws with tsc's output if the tree does not compile. */
export function buildDist(): void {
  if (built) return;
  // Built beside dist/ and swapped in, so that dist/ is never half-written.
  const fresh = path.join(ROOT, `build-dist-${process.pid}`);
  fs.rmSync(fresh, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json', '--outDir', fresh], { cwd: ROOT, encoding: 'utf8' });
  if (tsc.status !== 0) {
    fs.rmSync(fresh, { recursive: true, force: true });
    throw new Error(`tsc -p tsconfig.json failed (exit ${tsc.status}):\n${tsc.stdout}${tsc.stderr}`);
  }
  const old = path.join(ROOT, `build-dist-old-${process.pid}`);
  if (fs.existsSync(path.join(ROOT, 'dist'))) fs.renameSync(path.join(ROOT, 'dist'), old);
  fs.renameSync(fresh, path.join(ROOT, 'dist'));
  fs.rmSync(old, { recursive: true, force: true });
  built = true;
}

/** Runs a CommonJS snippet in a fresh node inside the package (so `require('torchts')` is a self-reference). */
export function nodeIn(script: string, env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const child = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}
