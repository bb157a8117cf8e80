/** Where torchts keeps downloads, datasets and caches. */
import * as os from 'os';
import * as path from 'path';

/** `TORCHTS_HOME`, default ~/.cache/torchts. An explicit `home` wins. */
export function torchtsHome(home?: string): string {
  if (home) return path.resolve(home);
  if (process.env.TORCHTS_HOME) return path.resolve(process.env.TORCHTS_HOME);
  return path.join(os.homedir(), '.cache', 'torchts');
}
