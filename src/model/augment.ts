/**
 * Training augmentations of the public VCP-CLIP implementation (spec "Training defaults"), on
 * 8-bit RGB images already resized to S×S and their 0/1 masks, before CLIP normalisation.
 * Every random draw comes from the seeded Rng, so a (seed, sample) pair always gives the same
 * result. Geometric ops move the mask with the image (nearest sampling, so it stays 0/1);
 * photometric ops leave it alone. Parameters follow albumentations' defaults (Rotate limit 30,
 * border reflect-101; RandomBrightnessContrast 0.2/0.2; GaussNoise var 10..50; Blur / GaussianBlur
 * kernel 3..7; ColorJitter 0.2).
 */
import type { Rng } from '../io/prng.js';
import { resizeRgb, type RgbImage } from '../datasets/image-io.js';

export interface AugmentSwitches {
  rotate: boolean;
  rot90: boolean;
  brightness_contrast: boolean;
  noise: boolean;
  blur_jitter: boolean;
  /** Probability of a 2×2 mosaic of four images of the same product (0 disables). */
  mosaic: number;
}

export const NO_AUGMENT: Readonly<AugmentSwitches> = Object.freeze({
  rotate: false,
  rot90: false,
  brightness_contrast: false,
  noise: false,
  blur_jitter: false,
  mosaic: 0,
});

/** Probabilities of the switchable ops (the public code's; tests force them to 1). */
export interface AugmentProbabilities {
  rotate: number;
  rot90: number;
  brightness_contrast: number;
  noise: number;
  blur_jitter: number;
}

export const PUBLIC_PROBABILITIES: Readonly<AugmentProbabilities> = Object.freeze({
  rotate: 0.5,
  rot90: 0.5,
  brightness_contrast: 0.5,
  noise: 0.5,
  blur_jitter: 0.5,
});

export interface AugSample {
  /** S×S RGB. */
  image: RgbImage;
  /** [S·S] 0/1. */
  mask: Uint8Array;
}

export interface AugmentResult extends AugSample {
  /** Names of the ops applied, in order ([] = the input unchanged, features may come from the cache). */
  applied: string[];
}

export interface AugmentContext {
  /** Three more samples of the same product for the mosaic (called only when it fires). */
  mosaicPartners?: (rng: Rng) => AugSample[];
  probabilities?: Partial<AugmentProbabilities>;
}

/** Applies the enabled augmentations: mosaic, rotate, rot90, brightness/contrast, noise, one of blur/jitter/Gaussian blur. */
export function augmentSample(
  sample: AugSample,
  switches: AugmentSwitches,
  rng: Rng,
  context: AugmentContext = {},
): AugmentResult {
  const p = { ...PUBLIC_PROBABILITIES, ...context.probabilities };
  const applied: string[] = [];
  let { image, mask } = sample;
  if (switches.mosaic > 0 && context.mosaicPartners && rng.next() < switches.mosaic) {
    ({ image, mask } = mosaic([{ image, mask }, ...context.mosaicPartners(rng).slice(0, 3)]));
    applied.push('mosaic');
  }
  if (switches.rotate && rng.next() < p.rotate) {
    ({ image, mask } = rotate({ image, mask }, rng.uniform(-30, 30)));
    applied.push('rotate');
  }
  if (switches.rot90 && rng.next() < p.rot90) {
    const k = rng.int(0, 3);
    ({ image, mask } = rot90({ image, mask }, k));
    applied.push(`rot90x${k}`);
  }
  if (switches.brightness_contrast && rng.next() < p.brightness_contrast) {
    image = brightnessContrast(image, 1 + rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2) * 255);
    applied.push('brightness_contrast');
  }
  if (switches.noise && rng.next() < p.noise) {
    image = gaussianNoise(image, Math.sqrt(rng.uniform(10, 50)), rng);
    applied.push('noise');
  }
  if (switches.blur_jitter && rng.next() < p.blur_jitter) {
    const which = rng.int(0, 2);
    const kernelSize = 2 * rng.int(1, 3) + 1; // 3, 5 or 7
    if (which === 0) image = separableBlur(image, boxKernel(kernelSize));
    else if (which === 1) image = colorJitter(image, rng);
    else
      image = separableBlur(
        image,
        gaussianKernel1d(kernelSize, 0.3 * ((kernelSize - 1) * 0.5 - 1) + 0.8),
      );
    applied.push(['blur', 'color_jitter', 'gaussian_blur'][which]);
  }
  return { image, mask, applied };
}

/** 2×2 mosaic: each sample shrunk to a quadrant (image bilinear, mask nearest), back to S×S. */
export function mosaic(samples: AugSample[]): AugSample {
  if (samples.length !== 4) throw new Error(`mosaic needs 4 samples, got ${samples.length}`);
  const s = samples[0].image.width;
  const half = [Math.floor(s / 2), s - Math.floor(s / 2)];
  const out = new Uint8Array(s * s * 3);
  const outMask = new Uint8Array(s * s);
  samples.forEach((sample, q) => {
    const w = half[q % 2];
    const h = half[q >> 1];
    const x0 = (q % 2) * half[0];
    const y0 = (q >> 1) * half[0];
    const small = resizeRgb(sample.image, w, h, 'bilinear');
    const smallMask = nearestResize(sample.mask, sample.image.width, sample.image.height, w, h);
    for (let y = 0; y < h; y++) {
      out.set(small.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * s + x0) * 3);
      outMask.set(smallMask.subarray(y * w, (y + 1) * w), (y0 + y) * s + x0);
    }
  });
  return { image: { width: s, height: s, data: out }, mask: outMask };
}

function nearestResize(
  mask: Uint8Array,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Uint8Array {
  const out = new Uint8Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / outH));
    for (let x = 0; x < outW; x++)
      out[y * outW + x] = mask[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / outW))];
  }
  return out;
}

/** Index for border mode reflect-101 (d c b | a b c d | c b a). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n - 2;
  let m = Math.abs(i) % period;
  if (m >= n) m = period - m;
  return m;
}

/** Rotation by `degrees` (counter-clockwise) about the centre: image bilinear, mask nearest, borders reflect-101. */
export function rotate(sample: AugSample, degrees: number): AugSample {
  const { width: w, height: h, data } = sample.image;
  const theta = (degrees * Math.PI) / 180;
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const out = new Uint8Array(w * h * 3);
  const outMask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse map: the source pixel that lands on (x, y).
      const dx = x - cx;
      const dy = y - cy;
      const sx = cos * dx - sin * dy + cx;
      const sy = sin * dx + cos * dy + cy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const xa = reflect101(x0, w);
      const xb = reflect101(x0 + 1, w);
      const ya = reflect101(y0, h);
      const yb = reflect101(y0 + 1, h);
      for (let c = 0; c < 3; c++) {
        const v =
          (1 - fy) * ((1 - fx) * data[(ya * w + xa) * 3 + c] + fx * data[(ya * w + xb) * 3 + c]) +
          fy * ((1 - fx) * data[(yb * w + xa) * 3 + c] + fx * data[(yb * w + xb) * 3 + c]);
        out[(y * w + x) * 3 + c] = Math.round(v);
      }
      outMask[y * w + x] =
        sample.mask[reflect101(Math.round(sy), h) * w + reflect101(Math.round(sx), w)];
    }
  }
  return { image: { width: w, height: h, data: out }, mask: outMask };
}

/** k quarter turns counter-clockwise (square images). */
export function rot90(sample: AugSample, k: number): AugSample {
  const { width: s, data } = sample.image;
  const turns = ((k % 4) + 4) % 4;
  if (turns === 0) return sample;
  const out = new Uint8Array(data.length);
  const outMask = new Uint8Array(sample.mask.length);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      // Source of output (x, y) after `turns` counter-clockwise quarter turns.
      const [sx, sy] =
        turns === 1 ? [s - 1 - y, x] : turns === 2 ? [s - 1 - x, s - 1 - y] : [y, s - 1 - x];
      const src = sy * s + sx;
      const dst = y * s + x;
      out[dst * 3] = data[src * 3];
      out[dst * 3 + 1] = data[src * 3 + 1];
      out[dst * 3 + 2] = data[src * 3 + 2];
      outMask[dst] = sample.mask[src];
    }
  }
  return { image: { width: s, height: s, data: out }, mask: outMask };
}

const clamp255 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

function mapPixels(image: RgbImage, f: (v: number, i: number) => number): RgbImage {
  const out = new Uint8Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = clamp255(f(image.data[i], i));
  return { width: image.width, height: image.height, data: out };
}

/** v·alpha + beta, clipped (albumentations' brightness_by_max). */
export function brightnessContrast(image: RgbImage, alpha: number, beta: number): RgbImage {
  return mapPixels(image, (v) => v * alpha + beta);
}

/** Additive N(0, σ²) per pixel and channel. */
export function gaussianNoise(image: RgbImage, sigma: number, rng: Rng): RgbImage {
  return mapPixels(image, (v) => v + sigma * rng.normal());
}

/** Brightness, contrast, saturation factors in [0.8, 1.2] and a hue rotation of up to ±0.2 turns, in random order. */
export function colorJitter(image: RgbImage, rng: Rng): RgbImage {
  const ops = [0, 1, 2, 3];
  for (let i = ops.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [ops[i], ops[j]] = [ops[j], ops[i]];
  }
  const factors = [
    rng.uniform(0.8, 1.2),
    rng.uniform(0.8, 1.2),
    rng.uniform(0.8, 1.2),
    rng.uniform(-0.2, 0.2),
  ];
  let out = image;
  for (const op of ops) {
    const f = factors[op];
    if (op === 0) out = mapPixels(out, (v) => v * f);
    else if (op === 1) {
      let mean = 0;
      for (let i = 0; i < out.data.length; i += 3)
        mean += 0.299 * out.data[i] + 0.587 * out.data[i + 1] + 0.114 * out.data[i + 2];
      mean /= out.data.length / 3;
      out = mapPixels(out, (v) => (v - mean) * f + mean);
    } else if (op === 2) {
      const src = out.data;
      out = mapPixels(out, (v, i) => {
        const p = i - (i % 3);
        const gray = 0.299 * src[p] + 0.587 * src[p + 1] + 0.114 * src[p + 2];
        return (v - gray) * f + gray;
      });
    } else out = hueRotate(out, f * 2 * Math.PI);
  }
  return out;
}

/** Hue rotation about the gray axis in YIQ space. */
function hueRotate(image: RgbImage, angle: number): RgbImage {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const out = new Uint8Array(image.data.length);
  const d = image.data;
  for (let p = 0; p < d.length; p += 3) {
    const y = 0.299 * d[p] + 0.587 * d[p + 1] + 0.114 * d[p + 2];
    const i0 = 0.596 * d[p] - 0.274 * d[p + 1] - 0.322 * d[p + 2];
    const q0 = 0.211 * d[p] - 0.523 * d[p + 1] + 0.312 * d[p + 2];
    const i = c * i0 - s * q0;
    const q = s * i0 + c * q0;
    out[p] = clamp255(y + 0.956 * i + 0.621 * q);
    out[p + 1] = clamp255(y - 0.272 * i - 0.647 * q);
    out[p + 2] = clamp255(y - 1.106 * i + 1.703 * q);
  }
  return { width: image.width, height: image.height, data: out };
}

function boxKernel(size: number): Float64Array {
  return new Float64Array(size).fill(1 / size);
}

function gaussianKernel1d(size: number, sigma: number): Float64Array {
  const r = (size - 1) / 2;
  const k = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) sum += k[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma));
  return k.map((v) => v / sum);
}

/** Separable filter, rows then columns, borders reflect-101. */
function separableBlur(image: RgbImage, kernel: Float64Array): RgbImage {
  const { width: w, height: h, data } = image;
  const r = (kernel.length - 1) / 2;
  const mid = new Float32Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = -r; k <= r; k++)
          acc += kernel[k + r] * data[(y * w + reflect101(x + k, w)) * 3 + c];
        mid[(y * w + x) * 3 + c] = acc;
      }
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let k = -r; k <= r; k++)
          acc += kernel[k + r] * mid[(reflect101(y + k, h) * w + x) * 3 + c];
        out[(y * w + x) * 3 + c] = clamp255(acc);
      }
  return { width: w, height: h, data: out };
}
