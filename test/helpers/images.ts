/**
 * Writes small real image folders for the data tests with sharp.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

/** A fresh temporary folder; removed by `removeDir`. */
export function tempDir(prefix = 'torchts-data-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export type Rgb = [number, number, number];

/** Raw RGB pixels of a w x h image filled by `colour(x, y)`. */
export function rawImage(w: number, h: number, colour: (x: number, y: number) => Rgb): Buffer {
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = colour(x, y);
      const o = (y * w + x) * 3;
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = b;
    }
  }
  return data;
}

/** A solid-colour image with a little deterministic texture. */
export function texturedColour(base: Rgb, seed: number): (x: number, y: number) => Rgb {
  return (x, y) => base.map((v, c) => Math.max(0, Math.min(255, v + (((x * 7 + y * 13 + seed * 31 + c * 17) % 21) - 10)))) as Rgb;
}

export type Format = 'jpeg' | 'png' | 'webp' | 'tiff' | 'gif';

/** Writes raw RGB as `format` to `file`. */
export async function writeImage(file: string, raw: Buffer, w: number, h: number, format: Format = 'png'): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const s = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  if (format === 'jpeg') await s.jpeg({ quality: 95 }).toFile(file);
  else if (format === 'webp') await s.webp({ lossless: true }).toFile(file);
  else if (format === 'tiff') await s.tiff().toFile(file);
  else if (format === 'gif') await s.gif().toFile(file);
  else await s.png().toFile(file);
}

export interface FolderSpec {
  /** Class name -> number of images. */
  classes: Record<string, number>;
  /** Subfolder: 'train', 'val', or '' for class folders at the root. */
  split?: string;
  width?: number;
  height?: number;
  format?: Format;
}

/** Distinct base colours per class, so a label can be checked from pixels. */
export const CLASS_COLOURS: Rgb[] = [
  [220, 40, 40],
  [40, 200, 60],
  [50, 70, 220],
  [230, 210, 40],
  [200, 60, 210],
];

/** Writes `root/<split>/<class>/<class>_<i>.<ext>` images; returns the files written. */
export async function writeClassFolder(root: string, spec: FolderSpec): Promise<string[]> {
  const w = spec.width ?? 40;
  const h = spec.height ?? 30;
  const format = spec.format ?? 'png';
  const ext = format === 'jpeg' ? 'jpg' : format;
  const files: string[] = [];
  const names = Object.keys(spec.classes);
  for (let c = 0; c < names.length; c++) {
    for (let i = 0; i < spec.classes[names[c]]; i++) {
      const file = path.join(root, spec.split ?? '', names[c], `${names[c]}_${i}.${ext}`);
      await writeImage(file, rawImage(w, h, texturedColour(CLASS_COLOURS[c % CLASS_COLOURS.length], i)), w, h, format);
      files.push(file);
    }
  }
  return files;
}

/** A w x h image whose left half is red and right half blue, top rows green-tinted: orientation checks. */
export function halvesImage(w: number, h: number): Buffer {
  return rawImage(w, h, (x, y) => (y < h / 4 ? [0, 255, 0] : x < w / 2 ? [255, 0, 0] : [0, 0, 255]));
}
