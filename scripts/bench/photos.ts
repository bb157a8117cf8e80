/**
 * The benchmarks' photographs: Imagenette-160-like JPEGs (short side 160, quality 90) made from
 * the real photographs that installed Debian packages ship (/usr/share, and python3-skimage's
 * sample photos). There are few such photos, so each is cropped at many random boxes and aspect
 * ratios into 160 px variants.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadSharp } from '../../lib/data/sharp';
import { Random } from '../../lib/data/random';
import { torchtsHome } from '../../lib/data/home';

export interface PhotoFolderOptions {
  images: number;
  classes: number;
  /** Another folder of photographs to draw from first. */
  photos: string | null;
}

const PHOTO_DIRS = ['/usr/share', '/usr/lib/python3/dist-packages/skimage/data'];
/** Sample images that are photographs (skimage also ships drawings, text and microscopy). */
const SKIMAGE_PHOTOS = ['astronaut.png', 'chelsea.png', 'coffee.png', 'motorcycle_left.png', 'motorcycle_right.png', 'rocket.jpg', 'hubble_deep_field.jpg', 'retina.jpg', 'grass.png', 'gravel.png', 'brick.png'];

function findPhotos(extra: string | null): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 8) walk(p, depth + 1);
      else if (e.isFile() && /\.jpe?g$/i.test(e.name) && fs.statSync(p).size > 40_000) found.push(p);
    }
  };
  if (extra) walk(extra, 0);
  walk(PHOTO_DIRS[0], 0);
  for (const name of SKIMAGE_PHOTOS) {
    const p = path.join(PHOTO_DIRS[1], name);
    if (fs.existsSync(p)) found.push(p);
  }
  return found;
}

/**
 * Builds (once, under TORCHTS_HOME/bench) `images` 160-px JPEG variants of the photos, spread
 * over `classes` folders of train/; returns the root.
 */
export async function photoFolder(args: PhotoFolderOptions): Promise<string> {
  const root = path.join(torchtsHome(), 'bench', `photos160-${args.images}`);
  const done = path.join(root, '.complete');
  if (fs.existsSync(done)) return root;
  const photos = findPhotos(args.photos);
  if (photos.length === 0) throw new Error('bench: no photographs found; install python3-skimage or pass --photos DIR');
  console.log(`building ${args.images} 160-px JPEG variants from ${photos.length} photos into ${root}`);
  const rng = Random.stream(0, 'bench-photos');
  for (let i = 0; i < args.images; i++) {
    const src = photos[i % photos.length];
    const meta = await loadSharp()(src).metadata();
    const W = meta.width!;
    const H = meta.height!;
    const aspect = Math.exp(rng.uniform(Math.log(3 / 4), Math.log(16 / 9)));
    const area = rng.uniform(0.3, 1) * W * H;
    const cw = Math.min(W, Math.round(Math.sqrt(area * aspect)));
    const ch = Math.min(H, Math.round(Math.sqrt(area / aspect)));
    const left = rng.int(0, W - cw + 1);
    const top = rng.int(0, H - ch + 1);
    const short = 160;
    const [w, h] = cw >= ch ? [Math.round((short * cw) / ch), short] : [short, Math.round((short * ch) / cw)];
    const file = path.join(root, 'train', `c${i % args.classes}`, `img${i}.jpg`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await loadSharp()(src).extract({ left, top, width: cw, height: ch }).resize(w, h, { fit: 'fill' }).flop(rng.bernoulli(0.5)).removeAlpha().jpeg({ quality: 90 }).toFile(file);
  }
  fs.writeFileSync(done, '');
  return root;
}

