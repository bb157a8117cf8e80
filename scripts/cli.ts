#!/usr/bin/env node
/**
 * The `torchts-train` command (see lib/cli/main.ts; `torchts-train --help`).
 */
import { main } from '../lib/cli/main';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`torchts-train: error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
