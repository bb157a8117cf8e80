/**
 * Process-wide settings for fast decoding, opt-in: importing torchts changes
 * none of them. `configureProcess()` sizes libuv's thread pool and sets sharp
 * up for many small images; the torchts-train CLI calls it before any work.
 *
 * sharp decodes on libuv's pool, so the pool's size is the decode
 * concurrency. libuv reads `UV_THREADPOOL_SIZE` once, when the first pool job
 * runs (the first asynchronous fs, dns, crypto or zlib call, or loading
 * sharp): set later, it has no effect. Importing torchts starts no pool job
 * (torchts loads sharp on first use, lib/data/sharp.ts).
 */
import * as os from 'os';
import { tuneSharp } from './sharp';

/** Cores this process may use. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Decode threads: one per core, and at least libuv's usual 4 so file reads never starve decodes. */
export function defaultPoolSize(): number {
  return Math.max(4, coreCount());
}

/** The pool size in effect (what libuv will use if the pool has not started yet). */
export function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** What {@link configureProcess} sets. Every field is optional. */
export interface ProcessOptions {
  /**
   * libuv's thread pool size (`UV_THREADPOOL_SIZE`), i.e. how many images are
   * decoded at once. An integer from 1 to 1024. Default: a `UV_THREADPOOL_SIZE`
   * already set is kept, else one thread per core and at least 4.
   */
  threadPoolSize?: number;
  /**
   * Sets sharp up for many small images: one libvips thread per image
   * (parallelism comes from decoding many images at once) and no libvips
   * operation cache (it only helps when the same image is processed twice).
   * Applied at once if sharp is loaded, else when torchts first loads it.
   * Default true; false leaves sharp's settings alone.
   */
  sharp?: boolean;
}

/** The settings in effect after {@link configureProcess}. */
export interface ProcessSettings {
  /** libuv's pool size, if the pool has not started yet (it reads the variable once). */
  threadPoolSize: number;
  /** Whether sharp runs one libvips thread per image, without its operation cache. */
  sharpTuned: boolean;
}

/**
 * Opts this process in to torchts' decode settings: sizes libuv's thread pool
 * and sets sharp's concurrency and cache (see {@link ProcessOptions}).
 * Importing torchts changes none of these. An application that decodes many
 * images calls this once, before its first asynchronous file, network or
 * crypto call and before its first image is decoded, because libuv sizes its
 * pool when the first job runs (and loading sharp runs one; torchts loads it
 * on first use). The call itself starts nothing, so calling it again before
 * then changes the size; an explicit `threadPoolSize` wins over an earlier one.
 */
export function configureProcess(options: ProcessOptions = {}): ProcessSettings {
  const { threadPoolSize: size, sharp = true } = options;
  if (size !== undefined) {
    if (!Number.isInteger(size) || size < 1 || size > 1024) {
      throw new RangeError(`threadPoolSize: expected an integer from 1 to 1024, got ${String(size)}`);
    }
    process.env.UV_THREADPOOL_SIZE = String(size);
  } else if (!process.env.UV_THREADPOOL_SIZE) {
    process.env.UV_THREADPOOL_SIZE = String(defaultPoolSize());
  }
  if (sharp) tuneSharp();
  return { threadPoolSize: threadPoolSize(), sharpTuned: sharp };
}
