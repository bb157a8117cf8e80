/**
 * Data-pipeline benchmark (not a test): decode + random-resized crop + flip +
 * collate into uint8 batches, ours against torchvision ImageFolder + PIL
 * DataLoader on the same JPEG files and the same machine.
 *
 *   npx tsx scripts/bench/data.ts [--images 2000] [--size 128] [--bs 64] [--photos DIR]
 *
 * The files: Imagenette-160-like JPEGs (photos.ts).
 *
 * What "ours" measures: the default path does decode + presize on the CPU and
 * turns crop and flip into per-image matrices (the grid sample itself runs on
 * the device during the training step and is not timed here). Its JPEGs are
 * decoded by the addon's libjpeg-turbo decoder when the addon has one
 * (jpegDecoder 'auto'); the row "jpegDecoder sharp" is the same path with
 * sharp only. The 'sharp' path does the crop and flip on the CPU like
 * torchvision does.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { imageFolder, type ImageFolderOptions } from '../../lib/data/loader';
import { loadSharp } from '../../lib/data/sharp';
import { configureProcess, coreCount, threadPoolSize } from '../../lib/data/threads';
import { nativeJpegDecoder } from '../../lib/data/decode';
import { native } from '../../lib/native';
import { photoFolder } from './photos';

interface Args {
  images: number;
  size: number;
  bs: number;
  photos: string | null;
  classes: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { images: 2000, size: 128, bs: 64, photos: null, classes: 10 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (key === 'photos') args.photos = value;
    else if (key in args) (args as unknown as Record<string, number>)[key] = Number(value);
    else throw new Error(`bench/data: unknown option ${argv[i]} (expected --images --size --bs --photos --classes)`);
  }
  return args;
}

/** Builds (once) a folder of 160-px JPEG variants of the photos (photos.ts). */
function buildFolder(args: Args): Promise<string> {
  return photoFolder({ images: args.images, classes: args.classes, photos: args.photos });
}

function listFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Throughput and CPU cost (all threads of this process) of one timed run. */
interface Rate {
  imgPerS: number;
  cpuMsPerImg: number;
}

async function timeIt(fn: () => Promise<number>): Promise<Rate> {
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const n = await fn();
  const wall = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { imgPerS: n / wall, cpuMsPerImg: (cpu.user + cpu.system) / 1000 / n };
}

/** sharp decode-only from files, as many in flight as the pool has threads (x2 to keep it fed). */
async function decodeOnly(files: string[]): Promise<Rate> {
  return timeIt(async () => {
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++];
        await loadSharp()(await fs.promises.readFile(f)).raw().toBuffer();
      }
    };
    await Promise.all(Array.from({ length: threadPoolSize() * 2 }, worker));
    return files.length;
  });
}

async function pass(root: string, options: ImageFolderOptions, args: Args, epoch: number): Promise<Rate> {
  const dls = await imageFolder(root, { normalize: 'none', validPct: 0, ...options });
  try {
    return await timeIt(async () => {
      let n = 0;
      for await (const b of dls.train({ size: args.size, bs: args.bs }, epoch)) n += b.n;
      return n;
    });
  } finally {
    await dls.close();
  }
}

async function main(): Promise<void> {
  // The decode settings the CLI uses, before anything starts libuv's pool (loading sharp does).
  configureProcess();
  const args = parseArgs(process.argv.slice(2));
  const root = await buildFolder(args);
  const files = listFiles(path.join(root, 'train'));
  for (const f of files) fs.readFileSync(f); // warm the page cache for everyone
  const cores = coreCount();
  console.log(`${files.length} JPEGs, size ${args.size}, bs ${args.bs}, ${cores} cores, UV_THREADPOOL_SIZE ${threadPoolSize()}, sharp ${loadSharp().versions.sharp} (libvips ${loadSharp().versions.vips})`);

  const jpeg = nativeJpegDecoder() ? (native().jpegVersion?.() ?? 'yes') : 'none (addon missing or built without libjpeg)';
  console.log(`native JPEG decoder: ${jpeg}`);

  const decode = await decodeOnly(files);
  const firstSharp = await pass(root, { jpegDecoder: 'sharp' }, args, 0);
  const first = await pass(root, {}, args, 0);
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchts-bench-cache-'));
  let filling: Rate;
  let cached: Rate;
  try {
    filling = await pass(root, { cache: cacheDir }, args, 0);
    cached = await pass(root, { cache: cacheDir }, args, 1);
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
  const sharpPath = await pass(root, { itemTransforms: 'sharp' }, args, 0);

  const peerScript = path.join(__dirname, 'data_peer.py');
  const peer = spawnSync('/usr/bin/python3', [peerScript, path.join(root, 'train'), '--size', String(args.size), '--bs', String(args.bs), '--workers', '0', String(cores)], { encoding: 'utf8' });
  if (peer.status !== 0) throw new Error(`bench/data: peer failed:\n${peer.stderr}`);
  type PeerRate = { img_per_s: number; cpu_ms_per_img: number };
  const p = JSON.parse(peer.stdout.trim().split('\n').pop()!) as { torch: string; torchvision: string; pil_decode_1core: PeerRate; loader: Record<string, PeerRate> };
  const fromPeer = (r: PeerRate): Rate => ({ imgPerS: r.img_per_s, cpuMsPerImg: r.cpu_ms_per_img });
  const tv0 = fromPeer(p.loader['0']);
  const tvN = fromPeer(p.loader[String(cores)]);

  const rows: [string, Rate][] = [
    [`sharp decode only (ceiling, ${threadPoolSize()} pool threads)`, decode],
    ['ours, default, jpegDecoder sharp, 1st epoch', firstSharp],
    [`ours, default (presize + device matrices${nativeJpegDecoder() ? ', libjpeg-turbo' : ''}), 1st epoch`, first],
    ['ours, cache: true, 1st epoch (decodes and fills)', filling],
    ['ours, cache: true, later epoch', cached],
    ['ours, itemTransforms sharp (CPU crop+flip), 1st epoch', sharpPath],
    [`PIL decode only, 1 core (torch ${p.torch}, torchvision ${p.torchvision})`, fromPeer(p.pil_decode_1core)],
    ['torchvision DataLoader, num_workers 0', tv0],
    [`torchvision DataLoader, num_workers ${cores}`, tvN],
  ];
  console.log('');
  console.log(`${'(CPU ms/img counts every thread and worker process: robust when other jobs share the cores)'.padEnd(66)}   img/s  CPU ms/img`);
  for (const [name, r] of rows) console.log(`${name.padEnd(66)} ${r.imgPerS.toFixed(0).padStart(7)}  ${r.cpuMsPerImg.toFixed(3).padStart(10)}`);
  console.log('');
  const ratio = (a: Rate, b: Rate) => `${(a.imgPerS / b.imgPerS).toFixed(2)}x img/s, ${(b.cpuMsPerImg / a.cpuMsPerImg).toFixed(2)}x by CPU cost`;
  console.log(`default 1st epoch vs torchvision ${cores} workers: ${ratio(first, tvN)} (target >= 1.0x)`);
  console.log(`default 1st epoch vs torchvision 0 workers: ${ratio(first, tv0)}`);
  console.log(`default 1st epoch, sharp-only JPEGs vs torchvision ${cores} workers: ${ratio(firstSharp, tvN)}`);
  console.log(`cached later epoch vs torchvision ${cores} workers: ${ratio(cached, tvN)} (target >= 5x)`);
  console.log(`sharp decode-only ceiling vs torchvision ${cores} workers: ${ratio(decode, tvN)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
