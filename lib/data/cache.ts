/**
 * The decoded cache (`cache: true`): every image presized once to uint8 and
 * kept in one flat file, so later epochs read bytes instead of decoding JPEGs.
 *
 * Layout, per (dataset, presize):
 *   <dir>/<key>-p<presize>.u8     count * presize * presize * 3 bytes (sparse until filled)
 *   <dir>/<key>-p<presize>.json   which items are filled, their aspect ratios, which files are bad
 * The key hashes the file list with each file's size and mtime, so an edited
 * dataset gets a new cache. Items are read with positional reads straight
 * into the batch buffer: Node has no mmap without native code, and the OS
 * page cache gives the same effect (a second read of a hot file is a memcpy).
 * The index is written to a temporary file and renamed, so a crash mid-epoch
 * leaves either the old index or the new one; an item is only marked filled
 * after its bytes were written.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const INDEX_VERSION = 1;

interface CacheIndex {
  version: number;
  presize: number;
  count: number;
  /** Aspect per item; 0 = not filled yet. */
  aspects: number[];
  /** Item index -> reason, for files that could not be decoded. */
  bad: Record<string, string>;
}

/** A hash of the files (paths, sizes, modification times) that names a cache. */
export function datasetKey(files: readonly string[]): string {
  const h = crypto.createHash('sha256');
  for (const file of files) {
    let stamp = 'missing';
    try {
      const st = fs.statSync(file);
      stamp = `${st.size}:${Math.floor(st.mtimeMs)}`;
    } catch {
      // A missing file still gets a key; decoding it reports the problem.
    }
    h.update(`${file}\0${stamp}\n`);
  }
  return h.digest('hex').slice(0, 24);
}

export class PresizeCache {
  private dirty = false;
  private closed = false;

  private constructor(
    readonly dataFile: string,
    readonly indexFile: string,
    readonly presize: number,
    private readonly handle: fs.promises.FileHandle,
    private readonly aspects: Float64Array,
    private readonly bad: Map<number, string>,
  ) {}

  /** Opens (or creates) the cache of `count` items at `presize` under `dir`. */
  static async open(dir: string, key: string, count: number, presize: number): Promise<PresizeCache> {
    await fs.promises.mkdir(dir, { recursive: true });
    const base = path.join(dir, `${key}-p${presize}`);
    const dataFile = `${base}.u8`;
    const indexFile = `${base}.json`;
    const itemBytes = presize * presize * 3;
    const aspects = new Float64Array(count);
    const bad = new Map<number, string>();
    const index = readIndex(indexFile);
    const valid = index && index.version === INDEX_VERSION && index.count === count && index.presize === presize && fs.existsSync(dataFile);
    if (valid) {
      index.aspects.forEach((a, i) => (aspects[i] = a));
      for (const [i, reason] of Object.entries(index.bad)) bad.set(Number(i), reason);
    }
    const handle = await fs.promises.open(dataFile, valid ? 'r+' : 'w+');
    if (!valid) await handle.truncate(count * itemBytes);
    return new PresizeCache(dataFile, indexFile, presize, handle, aspects, bad);
  }

  get itemBytes(): number {
    return this.presize * this.presize * 3;
  }

  /** Aspect of a filled item, or undefined when it must be decoded. */
  aspect(item: number): number | undefined {
    const a = this.aspects[item];
    return a > 0 ? a : undefined;
  }

  /** Why a file was found bad on an earlier pass, if it was. */
  badReason(item: number): string | undefined {
    return this.bad.get(item);
  }

  /** Reads a filled item's bytes into `target` at `offset`. */
  async read(item: number, target: Uint8Array, offset: number): Promise<void> {
    const n = this.itemBytes;
    const { bytesRead } = await this.handle.read(target, offset, n, item * n);
    if (bytesRead !== n) throw new Error(`decoded cache ${this.dataFile}: short read for item ${item} (${bytesRead} of ${n} bytes)`);
  }

  /** Stores a decoded item; marks it filled once the bytes are written. */
  async write(item: number, pixels: Uint8Array, aspect: number): Promise<void> {
    if (pixels.length !== this.itemBytes) throw new Error(`decoded cache: item ${item} has ${pixels.length} bytes, expected ${this.itemBytes}`);
    await this.handle.write(pixels, 0, pixels.length, item * this.itemBytes);
    this.aspects[item] = aspect;
    this.dirty = true;
  }

  markBad(item: number, reason: string): void {
    this.bad.set(item, reason);
    this.dirty = true;
  }

  /** Writes the index (atomically) if anything changed. */
  async flush(): Promise<void> {
    if (!this.dirty || this.closed) return;
    this.dirty = false;
    const index: CacheIndex = {
      version: INDEX_VERSION,
      presize: this.presize,
      count: this.aspects.length,
      aspects: Array.from(this.aspects),
      bad: Object.fromEntries(this.bad),
    };
    await this.handle.datasync();
    const tmp = `${this.indexFile}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(index));
    await fs.promises.rename(tmp, this.indexFile);
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.handle.close();
  }
}

function readIndex(file: string): CacheIndex | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CacheIndex;
  } catch {
    return null;
  }
}
