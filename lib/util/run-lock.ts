/**
 * An exclusive lock on a run folder: two runs started into one `--out` at once both pass the
 * emptiness check, so the first to create the lock file wins and the other stops. A lock left
 * by a process that no longer exists (kill -9) is taken over.
 */
import * as fs from 'fs';
import * as path from 'path';

export const LOCK_FILE = '.torchts.lock';

/** Thrown when another live process holds the folder. */
export class FolderLockedError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `dir` (created if missing); returns its release. */
export function lockFolder(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      const release = () => {
        process.off('exit', release);
        try {
          if (fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file, { force: true });
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(file, 'utf8'));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new FolderLockedError(`${dir} is in use by another run (process ${holder}); expected a folder no other run writes to`);
      }
      fs.rmSync(file, { force: true }); // a stale lock: its process is gone
    }
  }
  throw new FolderLockedError(`${dir}: could not take its lock (${file}); another run may be starting there`);
}

/**
 * Removes the temporary files that writers killed mid-write left in `dir` (a checkpoint's
 * `<file>.tmp-<pid>-<n>`, an atomic file's `<file>.<pid>.tmp`) whose process is gone. Returns their names.
 */
export function removeStaleTemporaries(dir: string): string[] {
  const removed: string[] = [];
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const match = /\.tmp-(\d+)-\d+$/.exec(name) ?? /\.(\d+)\.tmp$/.exec(name);
    if (!match || alive(Number(match[1]))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
