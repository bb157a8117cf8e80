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
