/**
 * Skipping a test that needs something of the machine (root, a tool), with the reason said.
 * CI provides all of it and sets TORCHTS_NO_SKIP=1 (.ci/run): there a missing requirement fails
 * the test instead, so nothing CI is meant to run is skipped unnoticed.
 */
import type { Context } from 'mocha';

export function skipUnless(ctx: Context, ok: boolean, why: string): void {
  if (ok) return;
  if (process.env.TORCHTS_NO_SKIP === '1') throw new Error(`cannot run here (TORCHTS_NO_SKIP=1): ${why}`);
  process.stdout.write(`      (skipped: ${why})\n`);
  ctx.skip();
}

/** True when this process runs as root (mounting a tmpfs, making network namespaces). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
