/**
 * Imagenette and Imagewoof by name: downloaded once from fast.ai's public
 * bucket into TORCHTS_HOME, then extracted with the `tar` package.
 *
 *   <home>/archive/<name>.tgz   written as <name>.tgz.<pid>.part, renamed when complete
 *   <home>/data/<name>/         extracted into a temporary folder, renamed when complete
 *
 * So a crash or a broken archive never leaves something that looks finished,
 * and a second call finds the folder and downloads nothing.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { Transform } from 'stream';
import * as tar from 'tar';
import { torchtsHome } from './home';
import { ByteProgress } from './progress';
import { imageFolder, type ImageDataLoaders, type ImageFolderOptions } from './loader';

/** The datasets `untarData` knows. */
export const FASTAI_DATASETS = ['imagenette2', 'imagenette2-160', 'imagenette2-320', 'imagewoof2', 'imagewoof2-160', 'imagewoof2-320'] as const;
export type FastaiDatasetName = (typeof FASTAI_DATASETS)[number];

/** Where the archives are: <base>/<name>.tgz. Override with `baseUrl` or TORCHTS_DATA_URL. */
export const DEFAULT_DATA_URL = 'https://s3.amazonaws.com/fast-ai-imageclas';

export interface UntarOptions {
  /** Cache root. Default TORCHTS_HOME or ~/.cache/torchts. */
  home?: string;
  /** Base URL of the archives. Default TORCHTS_DATA_URL or DEFAULT_DATA_URL. */
  baseUrl?: string;
  /** Download and extract again even when present. Default false. */
  force?: boolean;
  /** No progress output. Default false. */
  quiet?: boolean;
  /** Progress stream. Default process.stderr. */
  progressStream?: NodeJS.WriteStream;
}

function checkName(name: string): asserts name is FastaiDatasetName {
  if (!(FASTAI_DATASETS as readonly string[]).includes(name)) {
    throw new Error(`untarData: unknown dataset '${name}'; expected one of ${FASTAI_DATASETS.join(', ')}`);
  }
}

/** Downloads (if needed) and extracts (if needed) `name`; resolves with the dataset folder. */
export async function untarData(name: string, options: UntarOptions = {}): Promise<string> {
  checkName(name);
  const home = torchtsHome(options.home);
  const dataDir = path.join(home, 'data', name);
  if (!options.force && fs.existsSync(dataDir)) return dataDir;
  const archive = path.join(home, 'archive', `${name}.tgz`);
  if (options.force || !fs.existsSync(archive)) {
    const base = (options.baseUrl ?? process.env.TORCHTS_DATA_URL ?? DEFAULT_DATA_URL).replace(/\/+$/, '');
    await download(`${base}/${name}.tgz`, archive, options);
  }
  await extract(archive, name, dataDir);
  return dataDir;
}

/** `untarData` then `imageFolder` on the result. */
export async function fastaiDataset(name: string, options: UntarOptions & ImageFolderOptions = {}): Promise<ImageDataLoaders> {
  return imageFolder(await untarData(name, options), options);
}

function get(url: string): Promise<http.IncomingMessage> {
  const client = url.startsWith('https:') ? https : url.startsWith('http:') ? http : null;
  if (!client) return Promise.reject(new Error(`untarData: unsupported URL ${url} (expected http: or https:)`));
  return new Promise((resolve, reject) => {
    const req = client.get(url, (res) => resolve(res));
    req.on('error', (err) => reject(new Error(`untarData: cannot download ${url}: ${err.message}`)));
    req.setTimeout(60_000, () => req.destroy(new Error('no data for 60 s')));
  });
}

async function download(url: string, file: string, options: UntarOptions): Promise<void> {
  let res = await get(url);
  for (let hops = 0; res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location; hops++) {
    res.resume();
    if (hops >= 5) throw new Error(`untarData: too many redirects from ${url}`);
    url = new URL(res.headers.location, url).toString();
    res = await get(url);
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`untarData: ${url} answered HTTP ${res.statusCode}`);
  }
  const total = Number(res.headers['content-length'] ?? 0);
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const part = `${file}.${process.pid}.part`;
  const bar = new ByteProgress({ label: `downloading ${path.basename(file)}`, total, quiet: options.quiet, stream: options.progressStream });
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      bar.tick(chunk.length);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, counter, fs.createWriteStream(part));
    if (total > 0 && received !== total) throw new Error(`got ${received} of ${total} bytes`);
    bar.finish();
    await fs.promises.rename(part, file);
  } catch (err) {
    await fs.promises.rm(part, { force: true });
    throw new Error(`untarData: download of ${url} failed: ${(err as Error).message}`);
  }
}

async function extract(archive: string, name: string, dataDir: string): Promise<void> {
  const parent = path.dirname(dataDir);
  await fs.promises.mkdir(parent, { recursive: true });
  const tmp = await fs.promises.mkdtemp(path.join(parent, `.${name}.extracting-`));
  try {
    await tar.x({ file: archive, cwd: tmp, strict: true });
    // The archives hold one top folder named like the dataset; accept a bare layout too.
    const inner = path.join(tmp, name);
    const top = fs.existsSync(inner) && fs.statSync(inner).isDirectory() ? inner : tmp;
    if (fs.readdirSync(top).length === 0) throw new Error('the archive is empty');
    await fs.promises.rm(dataDir, { recursive: true, force: true });
    await fs.promises.rename(top, dataDir);
  } catch (err) {
    // A broken archive would fail the same way next time: remove it so a new call downloads again.
    await fs.promises.rm(archive, { force: true });
    throw new Error(`untarData: ${archive} could not be extracted (${(err as Error).message}); it was removed, run again to download it afresh`);
  } finally {
    // tar may still be closing files of a failed entry: retry while the folder is busy.
    await fs.promises.rm(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
}
