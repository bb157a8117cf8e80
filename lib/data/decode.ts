/**
 * Image decoding with sharp: every format sharp reads (JPEG, PNG, WebP, TIFF,
 * GIF first frame, AVIF), any colour space, alpha, 8 or 16 bits, EXIF
 * orientation, out as 8-bit sRGB, 3 channels, HWC.
 *
 * Two entry points:
 * - `decodePresized`: the default fast path. One sharp pipeline per image:
 *   decode with shrink-on-load and squish the whole image to a square
 *   presize. The original aspect ratio is kept beside the pixels, so the
 *   device crop can undo the squish exactly (see augment.ts).
 * - `decodeTransformed`: fastai's per-image transforms on the CPU (resize
 *   crop/squish/pad, random-resized crop, flip), producing final-size pixels.
 */
import './threads';
import * as fs from 'fs';
import sharp from 'sharp';
import { Random } from './random';

// Parallelism comes from decoding many images at once on libuv's pool; one
// libvips thread per image avoids oversubscribing the cores.
sharp.concurrency(1);
// libvips' operation cache only helps when the same image is processed twice.
sharp.cache(false);

/** Why a file could not be used. Carries the file for skip lists and strict errors. */
export class DecodeError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'DecodeError';
  }
}

/** How strictly sharp treats damaged data. 'warning' (default) rejects truncated files. */
export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

export interface DecodedImage {
  /** width*height*3 bytes, RGB, HWC. */
  pixels: Buffer;
  width: number;
  height: number;
  /** Width/height of the original image after EXIF orientation. */
  aspect: number;
}

interface Oriented {
  width: number;
  height: number;
}

async function readInput(file: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await fs.promises.readFile(file);
  } catch (err) {
    throw new DecodeError(file, (err as Error).message);
  }
  if (data.length === 0) throw new DecodeError(file, 'empty file (0 bytes)');
  return data;
}

/** Size of the image as it will be shown (EXIF orientations 5-8 swap the axes). */
async function orientedSize(file: string, data: Buffer, failOn: FailOn): Promise<Oriented> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(data, { failOn }).metadata();
  } catch (err) {
    throw new DecodeError(file, `not a readable image (${(err as Error).message})`);
  }
  if (!meta.width || !meta.height) throw new DecodeError(file, 'image has no size');
  const swap = (meta.orientation ?? 1) >= 5;
  return swap ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
}

/** The common tail of every pipeline: 3-channel 8-bit sRGB raw bytes. */
async function toRgb(file: string, pipeline: sharp.Sharp, width: number, height: number): Promise<Buffer> {
  try {
    const { data, info } = await pipeline
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== width || info.height !== height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`);
    }
    return data;
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(file, `decode failed (${(err as Error).message})`);
  }
}

function source(data: Buffer, failOn: FailOn): sharp.Sharp {
  // pages: 1 -> the first frame of an animated GIF/WebP only.
  return sharp(data, { failOn, pages: 1 }).autoOrient();
}

/** Decodes `file` and squishes it to presize x presize (the fast path's stored form). */
export async function decodePresized(file: string, presize: number, failOn: FailOn = 'warning'): Promise<DecodedImage> {
  const data = await readInput(file);
  const size = await orientedSize(file, data, failOn);
  const pipeline = source(data, failOn).resize(presize, presize, { fit: 'fill' });
  const pixels = await toRgb(file, pipeline, presize, presize);
  return { pixels, width: presize, height: presize, aspect: size.width / size.height };
}

/** How `resize` fits an image into the target square (fastai's ResizeMethod). */
export type ResizeMethod = 'crop' | 'squish' | 'pad';
/** How 'pad' fills the border (fastai's PadMode). */
export type PadMode = 'zeros' | 'border' | 'reflection';

/** fastai's Resize: crop (random position in training, centre in validation), squish, or pad. */
export interface ResizeTransform {
  type: 'resize';
  /** Default 'crop'. */
  method?: ResizeMethod;
  /** For method 'pad'. Default 'reflection'. */
  padMode?: PadMode;
}

/** fastai's RandomResizedCrop; validation: resize the short side to size*(1+valXtra) rounded up to 8, centre crop. */
export interface RandomResizedCropTransform {
  type: 'randomResizedCrop';
  /** Minimum area fraction. Default 0.08. */
  minScale?: number;
  /** Aspect-ratio range, log-uniform. Default [3/4, 4/3]. */
  ratio?: [number, number];
  /** Extra validation margin. Default 0.14. */
  valXtra?: number;
}

export type SharpItemTransform = ResizeTransform | RandomResizedCropTransform;

/** Per-image CPU transforms for one item. */
export interface TransformRequest {
  transform: SharpItemTransform;
  /** Random horizontal flip with p = 0.5 (training only). */
  flip: boolean;
  size: number;
  /** Training draws for this item, or null for validation (deterministic centre). */
  rng: Random | null;
}

interface PixelBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The largest box of the target aspect (square), at a random or centred position. */
function cropBox(w: number, h: number, rng: Random | null): PixelBox {
  const side = Math.min(w, h);
  const left = rng ? rng.int(0, w - side + 1) : Math.floor((w - side) / 2);
  const top = rng ? rng.int(0, h - side + 1) : Math.floor((h - side) / 2);
  return { left, top, width: side, height: side };
}

function randomResizedBox(w: number, h: number, t: RandomResizedCropTransform, size: number, rng: Random | null): PixelBox {
  const minScale = t.minScale ?? 0.08;
  const ratio = t.ratio ?? [3 / 4, 4 / 3];
  if (!rng) {
    // Validation: the centred square of side short*(size / presize-with-margin).
    const withMargin = Math.ceil((size * (1 + (t.valXtra ?? 0.14))) / 8) * 8;
    const side = Math.max(1, Math.round((Math.min(w, h) * size) / withMargin));
    return { left: Math.floor((w - side) / 2), top: Math.floor((h - side) / 2), width: side, height: side };
  }
  const area = w * h;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(minScale, 1);
    const r = Math.exp(rng.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
    const cw = Math.round(Math.sqrt(target * r));
    const ch = Math.round(Math.sqrt(target / r));
    if (cw >= 1 && ch >= 1 && cw <= w && ch <= h) {
      return { left: rng.int(0, w - cw + 1), top: rng.int(0, h - ch + 1), width: cw, height: ch };
    }
  }
  return cropBox(w, h, null);
}

/** Decodes `file` and applies the per-image transforms; the result is size x size. */
export async function decodeTransformed(file: string, request: TransformRequest, failOn: FailOn = 'warning'): Promise<DecodedImage> {
  const { transform, size, rng } = request;
  const data = await readInput(file);
  const { width: w, height: h } = await orientedSize(file, data, failOn);
  let pipeline = source(data, failOn);
  if (transform.type === 'randomResizedCrop') {
    pipeline = pipeline.extract(randomResizedBox(w, h, transform, size, rng)).resize(size, size, { fit: 'fill' });
  } else {
    const method = transform.method ?? 'crop';
    if (method === 'crop') {
      pipeline = pipeline.extract(cropBox(w, h, rng)).resize(size, size, { fit: 'fill' });
    } else if (method === 'squish') {
      pipeline = pipeline.resize(size, size, { fit: 'fill' });
    } else {
      pipeline = padded(pipeline, w, h, size, transform.padMode ?? 'reflection');
    }
  }
  // Draw the flip even when it is off so turning it on does not shift other draws.
  const flip = rng ? rng.bernoulli(0.5) : false;
  if (request.flip && flip) pipeline = pipeline.flop();
  const pixels = await toRgb(file, pipeline, size, size);
  return { pixels, width: size, height: size, aspect: w / h };
}

/** Fit inside size x size keeping the aspect, then pad the short axis. */
function padded(pipeline: sharp.Sharp, w: number, h: number, size: number, mode: PadMode): sharp.Sharp {
  const scale = size / Math.max(w, h);
  const fw = Math.max(1, Math.min(size, Math.round(w * scale)));
  const fh = Math.max(1, Math.min(size, Math.round(h * scale)));
  const left = Math.floor((size - fw) / 2);
  const top = Math.floor((size - fh) / 2);
  const extendWith = mode === 'zeros' ? 'background' : mode === 'border' ? 'copy' : 'mirror';
  return pipeline
    .resize(fw, fh, { fit: 'fill' })
    .extend({ left, top, right: size - fw - left, bottom: size - fh - top, extendWith, background: { r: 0, g: 0, b: 0, alpha: 1 } });
}
