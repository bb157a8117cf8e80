/**
 * The batch augmentation sampler: the decisions behind one device grid sample.
 *
 * For every image of a batch it draws a 3x3 projective matrix that maps OUTPUT
 * normalised coordinates ([-1, 1], align_corners = true) to INPUT normalised
 * coordinates, plus a brightness and a contrast value in logit space. The
 * native side applies them (bilinear, reflection padding) in one pass.
 *
 * The matrix composes, from the input side:
 *   M = Crop . Warp . Flip . Rotate . Zoom
 * - Crop: the square the model should see, as a box in the input's normalised
 *   coordinates. In training it is fastai's Resize(method 'crop') with a
 *   random position, followed by its RandomResizedCropGPU(minScale, ratio);
 *   in validation the centred square.
 * - Flip, Rotate, Zoom: fastai's affine matrices, multiplied in the order
 *   aug_transforms lists them; Warp: its perspective corner displacement,
 *   applied to the coordinates after the affine part.
 * Because Crop is the outermost factor, rotation and zoom act in the crop's
 * own square frame, and pixels outside the crop but inside the image are real
 * pixels rather than reflections (fastai crops first and reflects at the
 * crop's border; this is the one deliberate difference).
 */
import type { NativeAugment } from '../native';
import { Random } from './random';
import { AUGMENT_DEFAULTS, withDefaults } from '../defaults';

/** fastai's aug_transforms options (same names, camelCase, same defaults). */
export interface AugmentOptions {
  /** Scales maxRotate, maxLighting and maxWarp. Default 1. */
  mult?: number;
  /** Random horizontal flip with p = 0.5. Default true. */
  doFlip?: boolean;
  /** With doFlip: any of the 8 dihedral symmetries instead of a horizontal flip only. Default false. */
  flipVert?: boolean;
  /** Maximum rotation in degrees, uniform in [-maxRotate, maxRotate]. Default 10. */
  maxRotate?: number;
  /** Zoom factor uniform in [minZoom, maxZoom]. Defaults 1 and 1.1. */
  minZoom?: number;
  maxZoom?: number;
  /** Brightness and contrast strength. Default 0.2. */
  maxLighting?: number;
  /** Perspective warp magnitude. Default 0.2. */
  maxWarp?: number;
  /** Probability of each affine/warp draw per image. Default 0.75. */
  pAffine?: number;
  /** Probability of each lighting draw per image. Default 0.75. */
  pLighting?: number;
  /**
   * Random-resized-crop minimum area fraction of the square crop (fastai's
   * aug_transforms min_scale, done on the device). Default 1 (no extra crop);
   * the article's get_dls uses 0.75.
   */
  minScale?: number;
  /** Aspect-ratio range of that crop, log-uniform. Default [1, 1] as aug_transforms uses. */
  ratio?: [number, number];
}

export type ResolvedAugmentOptions = Required<AugmentOptions>;

/** aug_transforms' defaults. */
export const AUG_DEFAULTS: ResolvedAugmentOptions = AUGMENT_DEFAULTS;

/** Options with every transform off: only the crop (and no lighting) remains. */
export const NO_AUGMENT: ResolvedAugmentOptions = Object.freeze({
  ...AUG_DEFAULTS,
  doFlip: false,
  maxRotate: 0,
  minZoom: 1,
  maxZoom: 1,
  maxLighting: 0,
  maxWarp: 0,
  minScale: 1,
});

function checkRange(name: string, value: number, lo: number, hi: number): void {
  if (!(typeof value === 'number' && value >= lo && value <= hi)) {
    throw new Error(`augment: ${name} must be a number in [${lo}, ${hi}], got ${value}`);
  }
}

/** Fills defaults and checks every option; throws naming the bad value. */
export function resolveAugment(options: AugmentOptions = {}): ResolvedAugmentOptions {
  const o: ResolvedAugmentOptions = withDefaults<ResolvedAugmentOptions>(AUG_DEFAULTS, options);
  checkRange('mult', o.mult, 0, 100);
  checkRange('maxRotate', o.maxRotate, 0, 180);
  checkRange('minZoom', o.minZoom, 0.01, 100);
  checkRange('maxZoom', o.maxZoom, o.minZoom, 100);
  checkRange('maxLighting', o.maxLighting * o.mult, 0, 0.999);
  checkRange('maxWarp', o.maxWarp, 0, 0.99);
  checkRange('pAffine', o.pAffine, 0, 1);
  checkRange('pLighting', o.pLighting, 0, 1);
  checkRange('minScale', o.minScale, 0.001, 1);
  if (!Array.isArray(o.ratio) || o.ratio.length !== 2 || !(o.ratio[0] > 0) || !(o.ratio[1] >= o.ratio[0])) {
    throw new Error(`augment: ratio must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(o.ratio)}`);
  }
  return o;
}

// ---------------------------------------------------------------------------
// 3x3 matrices, row-major, acting on column vectors (x, y, 1).

export type Mat3 = [number, number, number, number, number, number, number, number, number];

export const IDENTITY: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

export function matMul(a: Mat3, b: Mat3): Mat3 {
  const r = new Array(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    }
  }
  return r;
}

/** Applies a projective matrix to a point. */
export function applyMatrix(m: ArrayLike<number>, x: number, y: number, offset = 0): [number, number] {
  const o = offset;
  const w = m[o + 6] * x + m[o + 7] * y + m[o + 8];
  return [(m[o] * x + m[o + 1] * y + m[o + 2]) / w, (m[o + 3] * x + m[o + 4] * y + m[o + 5]) / w];
}

/** A box in normalised coordinates: centre and half extents (1 = half the image). */
export interface Box {
  cx: number;
  cy: number;
  hw: number;
  hh: number;
}

export const FULL_BOX: Box = Object.freeze({ cx: 0, cy: 0, hw: 1, hh: 1 });

/** The matrix that maps output [-1, 1]^2 onto `box` of the input. */
export function boxMatrix(box: Box): Mat3 {
  return [box.hw, 0, box.cx, 0, box.hh, box.cy, 0, 0, 1];
}

/** `inner` (a box in `outer`'s own normalised frame) expressed in the input's frame. */
export function composeBoxes(outer: Box, inner: Box): Box {
  return { cx: outer.cx + outer.hw * inner.cx, cy: outer.cy + outer.hh * inner.cy, hw: outer.hw * inner.hw, hh: outer.hh * inner.hh };
}

/**
 * The largest square of an image of aspect w/h, as a box: centred when `rng`
 * is null (validation), at a uniformly random position otherwise (fastai's
 * Resize(method 'crop') in training).
 */
export function squareCropBox(aspect: number, rng: Random | null): Box {
  if (!(aspect > 0) || !Number.isFinite(aspect)) throw new Error(`augment: aspect ratio must be > 0, got ${aspect}`);
  const hw = aspect >= 1 ? 1 / aspect : 1;
  const hh = aspect >= 1 ? 1 : aspect;
  const cx = rng && hw < 1 ? rng.uniform(-(1 - hw), 1 - hw) : 0;
  const cy = rng && hh < 1 ? rng.uniform(-(1 - hh), 1 - hh) : 0;
  return { cx, cy, hw, hh };
}

/**
 * fastai's random-resized-crop draw inside a square: area fraction uniform in
 * [minScale, 1], aspect log-uniform in `ratio`, random position; 10 tries,
 * then the whole square.
 */
export function randomResizedCropBox(rng: Random, minScale: number, ratio: [number, number]): Box {
  if (minScale >= 1 && ratio[0] === 1 && ratio[1] === 1) return { ...FULL_BOX };
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = rng.uniform(minScale, 1);
    const r = Math.exp(rng.uniform(logLo, logHi));
    const hw = Math.sqrt(area * r);
    const hh = Math.sqrt(area / r);
    if (hw <= 1 && hh <= 1) {
      return { cx: rng.uniform(-(1 - hw), 1 - hw), cy: rng.uniform(-(1 - hh), 1 - hh), hw, hh };
    }
  }
  return { ...FULL_BOX };
}

export function flipMatrix(): Mat3 {
  return [-1, 0, 0, 0, 1, 0, 0, 0, 1];
}

/** One of the 8 symmetries of the square: bit 0 flips x, bit 1 flips y, bit 2 transposes. */
export function dihedralMatrix(k: number): Mat3 {
  const sx = k & 1 ? -1 : 1;
  const sy = k & 2 ? -1 : 1;
  return k & 4 ? [0, sx, 0, sy, 0, 0, 0, 0, 1] : [sx, 0, 0, 0, sy, 0, 0, 0, 1];
}

export function rotationMatrix(degrees: number): Mat3 {
  const t = (degrees * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t);
  return [c, -s, 0, s, c, 0, 0, 0, 1];
}

/** fastai's zoom: scale 1/zoom about a random centre (colPct, rowPct in [0, 1]) that keeps the view inside. */
export function zoomMatrix(zoom: number, colPct: number, rowPct: number): Mat3 {
  const s = 1 / zoom;
  return [s, 0, (1 - s) * (2 * colPct - 1), 0, s, (1 - s) * (2 * rowPct - 1), 0, 0, 1];
}

/** Solves the 8x8 linear system of a homography by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    [b[col], b[pivot]] = [b[pivot], b[col]];
    if (Math.abs(a[col][col]) < 1e-12) throw new Error('augment: degenerate perspective warp');
    for (let r = col + 1; r < n; r++) {
      const f = a[r][col] / a[col][col];
      for (let c = col; c < n; c++) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r];
    for (let c = r + 1; c < n; c++) s -= a[r][c] * x[c];
    x[r] = s / a[r][r];
  }
  return x;
}

/** The homography that sends each `from[i]` to `to[i]` (four point pairs). */
export function homography(from: [number, number][], to: [number, number][]): Mat3 {
  const a: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = from[i];
    const [u, v] = to[i];
    a.push([x, y, 1, 0, 0, 0, -u * x, -u * y]);
    b.push(u);
    a.push([0, 0, 0, x, y, 1, -v * x, -v * y]);
    b.push(v);
  }
  const h = solve(a, b);
  return [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1];
}

/**
 * fastai's perspective warp: each corner (x, y) of the view is moved to
 * (x(1 - y*dy), y(1 - x*dx)) — a keystone of strength dx along one axis and dy
 * along the other — and the coordinates follow the homography through them.
 */
export function warpMatrix(dx: number, dy: number): Mat3 {
  if (dx === 0 && dy === 0) return [...IDENTITY] as Mat3;
  const corners: [number, number][] = [[-1, -1], [-1, 1], [1, -1], [1, 1]];
  const moved = corners.map(([x, y]) => [x * (1 - y * dy), y * (1 - x * dx)] as [number, number]);
  return homography(corners, moved);
}

function logit(p: number): number {
  return Math.log(p / (1 - p));
}

/** What to crop for each image before the random transforms. */
export type CropMode =
  /** Largest square at a random position, then the random-resized crop (training). */
  | 'random'
  /** Largest centred square (validation). */
  | 'centre'
  /** The whole input (it is already the final crop, e.g. made by sharp on the CPU). */
  | 'none';

export interface SampleAugmentArgs {
  /** Draws for this batch; one stream per batch keeps batches independent of decode order. */
  rng: Random;
  /** Width/height of each image's original content (after EXIF rotation). */
  aspects: ArrayLike<number>;
  /** Output side length. */
  size: number;
  crop: CropMode;
  /** Random transforms, or null for none (validation). */
  augment: ResolvedAugmentOptions | null;
}

/**
 * Draws one batch's device augmentation. Draw order per image is fixed
 * (crop, flip, warp, rotate, zoom, brightness, contrast) so a seed gives the
 * same batch whatever else changes.
 */
export function sampleAugment(args: SampleAugmentArgs): NativeAugment {
  const { rng, aspects, size, crop, augment: aug } = args;
  if (!Number.isInteger(size) || size < 1) throw new Error(`augment: size must be a positive integer, got ${size}`);
  const n = aspects.length;
  const matrices = new Float32Array(n * 9);
  const lighting = aug !== null && aug.maxLighting * aug.mult > 0;
  const brightness = lighting ? new Float32Array(n) : undefined;
  const contrast = lighting ? new Float32Array(n).fill(1) : undefined;
  for (let i = 0; i < n; i++) {
    let box: Box = FULL_BOX;
    if (crop === 'random') {
      box = squareCropBox(aspects[i], rng);
      if (aug) box = composeBoxes(box, randomResizedCropBox(rng, aug.minScale, aug.ratio));
    } else if (crop === 'centre') {
      box = squareCropBox(aspects[i], null);
    }
    let m = boxMatrix(box);
    if (aug) {
      m = matMul(m, drawGeometry(rng, aug));
      if (brightness && contrast) {
        const light = drawLighting(rng, aug);
        brightness[i] = light.brightness;
        contrast[i] = light.contrast;
      }
    }
    matrices.set(m, i * 9);
  }
  const out: NativeAugment = { size, matrices };
  if (brightness) out.brightness = brightness;
  if (contrast) out.contrast = contrast;
  return out;
}

/** Warp . Flip . Rotate . Zoom for one image (fastai's aug_transforms order). */
function drawGeometry(rng: Random, aug: ResolvedAugmentOptions): Mat3 {
  let flip: Mat3 = IDENTITY;
  if (aug.doFlip) {
    if (aug.flipVert) {
      const k = rng.int(0, 8);
      if (rng.bernoulli(0.5)) flip = dihedralMatrix(k);
    } else if (rng.bernoulli(0.5)) {
      flip = flipMatrix();
    }
  }
  const maxWarp = aug.maxWarp * aug.mult;
  let warp: Mat3 = IDENTITY;
  if (maxWarp > 0) {
    // Two independent masked draws, as fastai draws x and y separately.
    const dx = rng.uniform(-maxWarp, maxWarp) * (rng.bernoulli(aug.pAffine) ? 1 : 0);
    const dy = rng.uniform(-maxWarp, maxWarp) * (rng.bernoulli(aug.pAffine) ? 1 : 0);
    warp = warpMatrix(dx, dy);
  }
  const maxRotate = aug.maxRotate * aug.mult;
  let rotate: Mat3 = IDENTITY;
  if (maxRotate > 0) {
    const degrees = rng.uniform(-maxRotate, maxRotate);
    if (rng.bernoulli(aug.pAffine)) rotate = rotationMatrix(degrees);
  }
  let zoom: Mat3 = IDENTITY;
  if (aug.minZoom < 1 || aug.maxZoom > 1) {
    const z = rng.uniform(aug.minZoom, aug.maxZoom);
    const col = rng.next();
    const row = rng.next();
    if (rng.bernoulli(aug.pAffine)) zoom = zoomMatrix(z, col, row);
  }
  return matMul(warp, matMul(flip, matMul(rotate, zoom)));
}

/** fastai's logit-space lighting: brightness = logit(U[0.5(1-l), 0.5(1+l)]), contrast = exp(U[log(1-l), -log(1-l)]). */
function drawLighting(rng: Random, aug: ResolvedAugmentOptions): { brightness: number; contrast: number } {
  const l = aug.maxLighting * aug.mult;
  const change = rng.uniform(0.5 * (1 - l), 0.5 * (1 + l));
  const brightness = rng.bernoulli(aug.pLighting) ? logit(change) : 0;
  const logC = rng.uniform(Math.log(1 - l), -Math.log(1 - l));
  const contrast = rng.bernoulli(aug.pLighting) ? Math.exp(logC) : 1;
  return { brightness, contrast };
}

// ---------------------------------------------------------------------------
// A plain CPU reference of the device sampler, for tests and parity checks.

function reflect(coord: number, size: number): number {
  // align_corners = true: reflect about the centres of the edge pixels.
  if (size <= 1) return 0;
  const span = size - 1;
  let c = Math.abs(coord);
  const flips = Math.floor(c / span);
  const extra = c - flips * span;
  c = flips % 2 === 0 ? extra : span - extra;
  return c;
}

/**
 * Samples `image` (h x w x 3 uint8, HWC) through matrix `m` into an
 * out x out image: bilinear, align_corners = true, reflection padding. The
 * reference semantics of NativeAugment's geometry; slow, for checks only.
 */
export function referenceWarp(image: Uint8Array, h: number, w: number, m: ArrayLike<number>, out: number, offset = 0): Float32Array {
  const result = new Float32Array(out * out * 3);
  for (let oy = 0; oy < out; oy++) {
    for (let ox = 0; ox < out; ox++) {
      const nx = out > 1 ? (2 * ox) / (out - 1) - 1 : 0;
      const ny = out > 1 ? (2 * oy) / (out - 1) - 1 : 0;
      const [sx, sy] = applyMatrix(m, nx, ny, offset);
      const px = reflect(((sx + 1) / 2) * (w - 1), w);
      const py = reflect(((sy + 1) / 2) * (h - 1), h);
      const x0 = Math.min(Math.floor(px), w - 1);
      const y0 = Math.min(Math.floor(py), h - 1);
      const x1 = Math.min(x0 + 1, w - 1);
      const y1 = Math.min(y0 + 1, h - 1);
      const fx = px - x0;
      const fy = py - y0;
      for (let c = 0; c < 3; c++) {
        const v00 = image[(y0 * w + x0) * 3 + c];
        const v01 = image[(y0 * w + x1) * 3 + c];
        const v10 = image[(y1 * w + x0) * 3 + c];
        const v11 = image[(y1 * w + x1) * 3 + c];
        result[(oy * out + ox) * 3 + c] = (v00 * (1 - fx) + v01 * fx) * (1 - fy) + (v10 * (1 - fx) + v11 * fx) * fy;
      }
    }
  }
  return result;
}
