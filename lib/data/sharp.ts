/**
 * sharp, loaded on first use. Loading sharp's native module starts libuv's
 * thread pool, which fixes the pool's size (`UV_THREADPOOL_SIZE`) for the life
 * of the process; loading it lazily keeps importing torchts free of that, so
 * `configureProcess()` (threads.ts) can still size the pool after the import.
 */
import type SharpModule from 'sharp';

/** sharp's default export: the pipeline constructor with its process-wide settings. */
export type Sharp = typeof SharpModule;

let loaded: Sharp | undefined;
let tuned = false;

/**
 * One libvips thread per image (parallelism comes from decoding many images at
 * once on libuv's pool) and no libvips operation cache (it only helps when the
 * same image is processed twice).
 */
function tune(sharp: Sharp): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

/** The sharp module, loaded on the first call (with the settings `tuneSharp` asked for). */
export function loadSharp(): Sharp {
  if (!loaded) {
    // A static import would load sharp, and start libuv's pool, as soon as torchts is imported.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('sharp') as Sharp;
    if (tuned) tune(loaded);
  }
  return loaded;
}

/**
 * Applies torchts' sharp settings: at once if sharp is loaded (by torchts or
 * anyone), else when torchts loads it. Loads nothing itself.
 */
export function tuneSharp(): void {
  tuned = true;
  if (!loaded && require.cache[require.resolve('sharp')]) loadSharp();
  if (loaded) tune(loaded);
}
