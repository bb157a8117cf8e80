/** File writes that never leave a half-written file under the final name. */
import * as fs from 'fs';
import * as path from 'path';

/** Writes `data` to a temporary file beside `file`, then renames it over `file` (atomic on one filesystem). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** What a path is, in words, for errors: "a folder", "a named pipe (FIFO)", ... */
export function kindOf(stats: fs.Stats): string {
  if (stats.isFile()) return 'a file';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Why `file` cannot be read as a regular file (after following links), or null when it can.
 * A FIFO or a device would block a read forever or never end.
 */
export function notRegularFile(file: string): string | null {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(file);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'a link to nothing (its target does not exist)' : (err as Error).message;
  }
  return stats.isFile() ? null : `${kindOf(stats)}, not a regular file`;
}
