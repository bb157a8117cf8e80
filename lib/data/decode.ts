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
 * - `decodePresizedInto`: the same for a whole batch, written straight into
 *   the batch buffer. Plain JPEGs go to the addon's libjpeg-turbo decoder
 *   (one call per batch, on libuv's pool) when the addon has one; every other
 *   file, and any JPEG it refuses, goes to sharp.
 * - `decodeTransformed` (`transformImage` for an image in memory): fastai's
 *   per-image transforms on the CPU (resize crop/squish/pad, random-resized
 *   crop, flip), producing final-size pixels.
 */
import * as fs from 'fs';
import type SharpModule from 'sharp';
import { promisify } from 'util';
import { native, type NativeBinding } from '../native';
import { Random } from './random';
import { loadSharp } from './sharp';
import { coreCount } from './threads';

// Parallelism comes from decoding many images at once on libuv's pool. One
// libvips thread per image and no operation cache suit that best; they are
// process-wide, so only configureProcess() (threads.ts) sets them.

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

// The callback readFile costs about half the CPU of fs.promises.readFile per small file
// (measured on the 160 px bench JPEGs: 0.03 vs 0.04-0.07 ms).
const readFile = promisify(fs.readFile);

async function readInput(file: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    throw new DecodeError(file, (err as Error).message);
  }
  if (data.length === 0) throw new DecodeError(file, 'empty file (0 bytes)');
  return data;
}

/** What the JPEG header says, read in JS (no pool round trip), or null for anything else. */
export interface JpegHeader {
  width: number;
  height: number;
  /** 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK. */
  components: number;
  /** Bits per sample (8 for almost every JPEG). */
  precision: number;
  /** EXIF orientation 1-8 (1 when absent). */
  orientation: number;
  /** An embedded ICC profile (APP2) or Adobe marker (APP14): colour handling needed. */
  colourManaged: boolean;
}

/** Parses the markers before the first frame header; null when this is not a well-formed JPEG start. */
export function sniffJpeg(data: Uint8Array): JpegHeader | null {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) return null;
  let orientation = 1;
  let colourManaged = false;
  let pos = 2;
  while (pos + 4 <= data.length) {
    if (data[pos] !== 0xff) return null;
    const marker = data[pos + 1];
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    const length = (data[pos + 2] << 8) | data[pos + 3];
    const body = pos + 4;
    if (length < 2 || body + length - 2 > data.length) return null;
    if (marker === 0xe1 && orientation === 1) orientation = exifOrientation(data, body, body + length - 2);
    if (marker === 0xe2 || marker === 0xee) colourManaged = true;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (length < 8) return null;
      const precision = data[body];
      const height = (data[body + 1] << 8) | data[body + 2];
      const width = (data[body + 3] << 8) | data[body + 4];
      const components = data[body + 5];
      if (!width || !height) return null;
      return { width, height, components, precision, orientation, colourManaged };
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before any frame header
    pos = body + length - 2;
  }
  return null;
}

/** The orientation tag of an APP1 Exif segment, 1 when absent or unreadable. */
function exifOrientation(d: Uint8Array, start: number, end: number): number {
  // "Exif\0\0" then a TIFF header.
  if (end - start < 14 || d[start] !== 0x45 || d[start + 1] !== 0x78 || d[start + 2] !== 0x69 || d[start + 3] !== 0x66) return 1;
  const tiff = start + 6;
  const little = d[tiff] === 0x49;
  const u16 = (o: number) => (little ? d[o] | (d[o + 1] << 8) : (d[o] << 8) | d[o + 1]);
  const u32 = (o: number) => (little ? (d[o] | (d[o + 1] << 8) | (d[o + 2] << 16)) + d[o + 3] * 16777216 : d[o] * 16777216 + ((d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3]));
  const ifd = tiff + u32(tiff + 4);
  if (ifd + 2 > end) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > end) return 1;
    if (u16(entry) === 0x0112) {
      const v = u16(entry + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** A JPEG that needs no colour or orientation work: the minimal pipeline gives the same pixels. */
function isPlainJpeg(h: JpegHeader | null): h is JpegHeader {
  return h !== null && h.components === 3 && h.precision === 8 && h.orientation === 1 && !h.colourManaged;
}

/** Size of the image as it will be shown (EXIF orientations 5-8 swap the axes). */
async function orientedSize(file: string, data: Buffer, failOn: FailOn): Promise<Oriented> {
  const jpeg = sniffJpeg(data);
  if (isPlainJpeg(jpeg)) return { width: jpeg.width, height: jpeg.height };
  let meta: SharpModule.Metadata;
  try {
    meta = await loadSharp()(data, { failOn }).metadata();
  } catch (err) {
    throw new DecodeError(file, `not a readable image (${(err as Error).message})`);
  }
  if (!meta.width || !meta.height) throw new DecodeError(file, 'image has no size');
  const swap = (meta.orientation ?? 1) >= 5;
  return swap ? { width: meta.height, height: meta.width } : { width: meta.width, height: meta.height };
}

/** The common tail of every pipeline: 3-channel 8-bit sRGB raw bytes. */
function toRgb(file: string, pipeline: SharpModule.Sharp, width: number, height: number): Promise<Buffer> {
  return rawRgb(file, pipeline.removeAlpha().toColourspace('srgb'), width, height);
}

/** Raw 8-bit output, checked to be width x height x 3. */
async function rawRgb(file: string, pipeline: SharpModule.Sharp, width: number, height: number): Promise<Buffer> {
  try {
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== width || info.height !== height) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x3`);
    }
    return data;
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(file, `decode failed (${(err as Error).message})`);
  }
}

function source(data: Buffer, failOn: FailOn): SharpModule.Sharp {
  // pages: 1 -> the first frame of an animated GIF/WebP only.
  return loadSharp()(data, { failOn, pages: 1 }).autoOrient();
}

/**
 * Resampling kernel for every CPU resize: bilinear, as PIL's (and so fastai's
 * and torchvision's) default; libvips widens it when shrinking, so it
 * antialiases like PIL's. Also measurably cheaper than lanczos3 here.
 */
const KERNEL = 'linear' as const;

/**
 * Decodes `file` and squishes it to presize x presize (the fast path's stored
 * form). Plain 8-bit RGB JPEGs (the common case, recognised from the header in
 * JS) skip the metadata round trip and the colour/orientation steps, which
 * are no-ops for them; everything else takes the full pipeline.
 */
export async function decodePresized(file: string, presize: number, failOn: FailOn = 'warning'): Promise<DecodedImage> {
  return presizedFromData(file, await readInput(file), presize, failOn);
}

async function presizedFromData(file: string, data: Buffer, presize: number, failOn: FailOn): Promise<DecodedImage> {
  const jpeg = sniffJpeg(data);
  if (isPlainJpeg(jpeg)) {
    const pipeline = loadSharp()(data, { failOn }).resize(presize, presize, { fit: 'fill', kernel: KERNEL });
    const pixels = await rawRgb(file, pipeline, presize, presize);
    return { pixels, width: presize, height: presize, aspect: jpeg.width / jpeg.height };
  }
  const size = await orientedSize(file, data, failOn);
  const pipeline = source(data, failOn).resize(presize, presize, { fit: 'fill', kernel: KERNEL });
  const pixels = await toRgb(file, pipeline, presize, presize);
  return { pixels, width: presize, height: presize, aspect: size.width / size.height };
}

/**
 * Which decoder the presized path uses for JPEGs. 'auto': the addon's
 * libjpeg-turbo decoder when the addon is built with it, else sharp;
 * 'native': the addon's decoder or an Error; 'sharp': always sharp.
 */
export type JpegDecoder = 'auto' | 'native' | 'sharp';

type NativeJpeg = NonNullable<NativeBinding['decodeJpegInto']>;
let nativeJpeg: NativeJpeg | null | undefined;

/** The addon's JPEG decoder, or null when the addon cannot be loaded or was built without libjpeg. */
export function nativeJpegDecoder(): NativeJpeg | null {
  if (nativeJpeg === undefined) {
    try {
      const binding = native();
      nativeJpeg = typeof binding.decodeJpegInto === 'function' ? binding.decodeJpegInto.bind(binding) : null;
    } catch {
      nativeJpeg = null;
    }
  }
  return nativeJpeg;
}

/**
 * A JPEG the native decoder gives the same pixels for as sharp: 8-bit YCbCr,
 * RGB or grayscale, no EXIF rotation, no ICC profile or Adobe marker (sharp
 * applies those). Baseline and progressive alike.
 */
function isNativeJpeg(h: JpegHeader | null): h is JpegHeader {
  return h !== null && (h.components === 3 || h.components === 1) && h.precision === 8 && h.orientation === 1 && !h.colourManaged;
}

/** Per file of `decodePresizedInto`: its aspect ratio (width/height as shown), or why it is bad. */
export type PresizedResult = { aspect: number } | DecodeError;

/** Options of `decodePresizedInto`. */
export interface PresizedIntoOptions {
  /** sharp's failOn for the files sharp decodes. Default 'warning'. */
  failOn?: FailOn;
  /** Default 'auto'. */
  jpeg?: JpegDecoder;
}

/**
 * Decodes `files` and squishes each to presize x presize, writing the RGB
 * bytes of file i into `out` at byte offset `offsets[i]`. Never rejects for a
 * bad file: its result is a DecodeError (and its slot is unspecified). A JPEG
 * the native decoder refuses (corrupt, truncated, CMYK, ...) is retried with
 * sharp, so which files count as bad is sharp's rule (failOn) on every path.
 */
export async function decodePresizedInto(
  files: readonly string[],
  presize: number,
  out: Uint8Array,
  offsets: readonly number[],
  options: PresizedIntoOptions = {},
): Promise<PresizedResult[]> {
  const failOn = options.failOn ?? 'warning';
  const mode = options.jpeg ?? 'auto';
  const decoder = mode === 'sharp' ? null : nativeJpegDecoder();
  if (mode === 'native' && !decoder) throw new Error("decodePresizedInto: jpeg 'native' needs the addon built with libjpeg (none found)");
  const results: PresizedResult[] = new Array(files.length);
  const inputs = await Promise.all(files.map((f) => readInput(f).catch((err: unknown) => err)));

  const viaSharp = async (i: number, data: Buffer) => {
    try {
      const decoded = await presizedFromData(files[i], data, presize, failOn);
      out.set(decoded.pixels, offsets[i]);
      results[i] = { aspect: decoded.aspect };
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      results[i] = err;
    }
  };
  const natives: { i: number; data: Buffer; aspect: number }[] = [];
  const sharpJobs: Promise<void>[] = [];
  inputs.forEach((input, i) => {
    if (!(input instanceof Buffer)) {
      if (!(input instanceof DecodeError)) throw input;
      results[i] = input;
      return;
    }
    const header = decoder ? sniffJpeg(input) : null;
    if (isNativeJpeg(header)) natives.push({ i, data: input, aspect: header.width / header.height });
    else sharpJobs.push(viaSharp(i, input));
  });
  if (decoder && natives.length > 0) {
    const run = decoder(
      natives.map((n) => n.data),
      presize,
      out,
      natives.map((n) => offsets[n.i]),
      coreCount(),
    ).then((errors) =>
      Promise.all(
        errors.map((error, j) => {
          const { i, data, aspect } = natives[j];
          if (error === null) results[i] = { aspect };
          else return viaSharp(i, data);
          return undefined;
        }),
      ),
    );
    sharpJobs.push(run.then(() => undefined));
  }
  await Promise.all(sharpJobs);
  return results;
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
  return transformImage(file, await readInput(file), request, failOn);
}

/** Raw 8-bit pixels in memory, row-major HWC: 1 (gray), 3 (RGB) or 4 (RGBA, the alpha is dropped) channels. */
export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/**
 * `decodeTransformed` for an image already in memory: encoded bytes (any
 * format sharp reads) or raw pixels, which take the same pipeline after the
 * decode. `name` stands for the file in a DecodeError. The bytes must not
 * change until the promise settles (sharp reads them on libuv's pool).
 */
export async function transformImage(name: string, image: Uint8Array | RawPixels, request: TransformRequest, failOn: FailOn = 'warning'): Promise<DecodedImage> {
  const { transform, size, rng } = request;
  const opened = await openImage(name, image, failOn);
  const { width: w, height: h } = opened.size;
  let pipeline = opened.pipeline;
  if (transform.type === 'randomResizedCrop') {
    pipeline = pipeline.extract(randomResizedBox(w, h, transform, size, rng)).resize(size, size, { fit: 'fill', kernel: KERNEL });
  } else {
    const method = transform.method ?? 'crop';
    if (method === 'crop') {
      pipeline = pipeline.extract(cropBox(w, h, rng)).resize(size, size, { fit: 'fill', kernel: KERNEL });
    } else if (method === 'squish') {
      pipeline = pipeline.resize(size, size, { fit: 'fill', kernel: KERNEL });
    } else {
      pipeline = padded(pipeline, w, h, size, transform.padMode ?? 'reflection');
    }
  }
  // Draw the flip even when it is off so turning it on does not shift other draws.
  const flip = rng ? rng.bernoulli(0.5) : false;
  if (request.flip && flip) pipeline = pipeline.flop();
  const pixels = await toRgb(name, pipeline, size, size);
  return { pixels, width: size, height: size, aspect: w / h };
}

/** The size as shown and the decoding pipeline of an image in memory. */
async function openImage(name: string, image: Uint8Array | RawPixels, failOn: FailOn): Promise<{ size: Oriented; pipeline: SharpModule.Sharp }> {
  if (image instanceof Uint8Array) {
    // A view, not a copy: sharp and the JPEG sniffer take Buffers.
    const data = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    if (data.length === 0) throw new DecodeError(name, 'empty (0 bytes)');
    return { size: await orientedSize(name, data, failOn), pipeline: source(data, failOn) };
  }
  const { data, width, height, channels } = checkRawPixels(name, image);
  return { size: { width, height }, pipeline: loadSharp()(data, { raw: { width, height, channels } }) };
}

/** Raw pixels whose sizes agree with their bytes. */
function checkRawPixels(name: string, image: RawPixels): RawPixels {
  const { data, width, height, channels } = image;
  const side = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  if (!side(width) || !side(height)) throw new DecodeError(name, `raw pixels need positive integer width and height, got ${width}x${height}`);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new DecodeError(name, `raw pixels need 1, 3 or 4 channels, got ${channels}`);
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    const got = data instanceof Uint8Array ? `${data.length} bytes` : typeof data;
    throw new DecodeError(name, `raw pixels of ${width}x${height}x${channels} need a Uint8Array of ${width * height * channels} bytes, got ${got}`);
  }
  return image;
}

/** Fit inside size x size keeping the aspect, then pad the short axis. */
function padded(pipeline: SharpModule.Sharp, w: number, h: number, size: number, mode: PadMode): SharpModule.Sharp {
  const scale = size / Math.max(w, h);
  const fw = Math.max(1, Math.min(size, Math.round(w * scale)));
  const fh = Math.max(1, Math.min(size, Math.round(h * scale)));
  const left = Math.floor((size - fw) / 2);
  const top = Math.floor((size - fh) / 2);
  const extendWith = mode === 'zeros' ? 'background' : mode === 'border' ? 'copy' : 'mirror';
  return pipeline
    .resize(fw, fh, { fit: 'fill', kernel: KERNEL })
    .extend({ left, top, right: size - fw - left, bottom: size - fh - top, extendWith, background: { r: 0, g: 0, b: 0, alpha: 1 } });
}
