/**
 * Sizes libuv's thread pool before anything starts it. sharp decodes on that
 * pool, so its size is the decode concurrency. libuv reads the variable once,
 * when the first pool job runs: this module must be imported before any file
 * system or sharp call (lib/data/index.ts imports it first). A value the user
 * already set is kept.
 */
import * as os from 'os';

/** Cores this process may use. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Decode threads: one per core, and at least libuv's usual 4 so file reads never starve decodes. */
export function defaultPoolSize(): number {
  return Math.max(4, coreCount());
}

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(defaultPoolSize());

/** The pool size in effect (what libuv will use if the pool has not started yet). */
export function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}
