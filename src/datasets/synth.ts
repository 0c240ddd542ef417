/**
 * Synthetic anomaly dataset in MVTec-AD layout, deterministic by seed: every image draws from
 * its own Rng seeded by (seed, product, split, defect, index), so changing one count does not
 * change the other images. Masks are exactly the pixels a defect changed.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { writePngGray8, writePngRgb, type GrayImage, type RgbImage } from './image-io.js';
import { hashString, Rng } from '../io/prng.js';
import { applyDefect, defectsFor, type DefectKind } from './synth-defects.js';
import {
  OBJECT_PRODUCTS,
  renderProduct,
  SYNTH_PRODUCTS,
  type SynthProduct,
} from './synth-products.js';

export { SYNTH_PRODUCTS, type SynthProduct } from './synth-products.js';
export { DEFECT_KINDS, type DefectKind } from './synth-defects.js';

/** A dataset root `vcp-exp run` fills with the synthetic dataset when it is missing (its name starts with "synth"). */
export function isSynthRoot(root: string): boolean {
  return basename(root).startsWith('synth');
}

export interface SynthOptions {
  seed: number;
  products: readonly SynthProduct[];
  /** Image side in pixels. */
  size: number;
  trainGood: number;
  testGood: number;
  /** Test images per defect kind. */
  testDefect: number;
}

export interface SynthOptionsInput {
  /** (default 0) */
  seed?: number;
  /** (default: every synthetic product) */
  products?: readonly string[];
  /** (default 256) */
  size?: number;
  /** (default 10) */
  trainGood?: number;
  /** (default 5) */
  testGood?: number;
  /** (default 3) */
  testDefect?: number;
}

const DEFAULTS = Object.freeze({ seed: 0, size: 256, trainGood: 10, testGood: 5, testDefect: 3 });

export function resolveSynthOptions(input: SynthOptionsInput): Readonly<SynthOptions> {
  const products = (input.products ?? SYNTH_PRODUCTS) as readonly string[];
  const unknown = products.filter((p) => !(SYNTH_PRODUCTS as readonly string[]).includes(p));
  if (unknown.length > 0) {
    throw new UserError(`synth --products: unknown ${unknown.map((p) => `"${p}"`).join(', ')}`, {
      hint: `available: ${SYNTH_PRODUCTS.join(', ')}`,
    });
  }
  const options = {
    ...DEFAULTS,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
    products,
  };
  for (const field of ['seed', 'size', 'trainGood', 'testGood', 'testDefect'] as const) {
    const value = options[field] as number;
    if (!Number.isInteger(value) || value < 0)
      throw new UserError(`synth ${field}: got ${value}, expected a non-negative integer`);
  }
  if (options.size < 32)
    throw new UserError(`synth size: got ${options.size}, expected at least 32`);
  return Object.freeze(options as SynthOptions);
}

export interface SynthSample {
  image: RgbImage;
  /** 0/255 gray; null for a good image. */
  mask: GrayImage | null;
  /** The same image before the defect was drawn (equal to image for a good one). */
  reference: RgbImage;
}

function quantise(rgb: Float32Array): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(rgb[i])));
  return out;
}

/** Renders one sample in memory: a good image when defect is 'good'. */
export function renderSynthSample(
  product: SynthProduct,
  defect: DefectKind | 'good',
  split: 'train' | 'test',
  index: number,
  seed: number,
  size: number,
): SynthSample {
  const rng = new Rng(hashString(`${seed}/${product}/${split}/${defect}/${index}`));
  const rendering = renderProduct(product, size, rng);
  const good = quantise(rendering.rgb);
  const reference = { width: size, height: size, data: good };
  if (defect === 'good') return { image: reference, mask: null, reference };
  // A defect that changes too few pixels (mostly clipped away by the object's outline) is
  // redrawn with the next random numbers: anomalies must be visible to be learnable.
  const minChanged = Math.max(12, Math.round(size * size * 0.0008));
  let fallback: SynthSample | undefined;
  for (let attempt = 0; attempt < 8; attempt++) {
    const drawn = { ...rendering, rgb: rendering.rgb.slice() };
    applyDefect(drawn, defect, rng);
    const data = quantise(drawn.rgb);
    const mask = new Uint8Array(size * size);
    let changed = 0;
    for (let i = 0; i < mask.length; i++) {
      if (
        data[i * 3] !== good[i * 3] ||
        data[i * 3 + 1] !== good[i * 3 + 1] ||
        data[i * 3 + 2] !== good[i * 3 + 2]
      ) {
        mask[i] = 255;
        changed++;
      }
    }
    const sample = {
      image: { width: size, height: size, data },
      mask: { width: size, height: size, data: mask },
      reference,
    };
    if (changed >= minChanged) return sample;
    if (changed > 0) fallback ??= sample;
  }
  if (fallback) return fallback;
  throw new Error(`synth: ${product}/${defect}/${index} changed no pixel in 8 attempts`);
}

export interface SynthSummary {
  root: string;
  products: {
    product: SynthProduct;
    trainGood: number;
    testGood: number;
    defects: Record<string, number>;
  }[];
  files: number;
}

/**
 * What `generateSynthDataset` would write, without rendering anything: per product the
 * train/good images and the test images per defect type ('good' included).
 */
export function synthLayout(
  input: SynthOptionsInput = {},
): { product: string; train: number; test: Record<string, number> }[] {
  const options = resolveSynthOptions(input);
  return options.products.map((product) => {
    const kinds = defectsFor((OBJECT_PRODUCTS as readonly string[]).includes(product));
    return {
      product,
      train: options.trainGood,
      test: {
        good: options.testGood,
        ...Object.fromEntries(kinds.map((k) => [k, options.testDefect])),
      },
    };
  });
}

/** Writes the dataset under outDir in MVTec-AD layout; returns what it wrote. */
export async function generateSynthDataset(
  outDir: string,
  input: SynthOptionsInput = {},
): Promise<SynthSummary> {
  const options = resolveSynthOptions(input);
  const { seed, size } = options;
  const jobs: (() => Promise<void>)[] = [];
  const summary: SynthSummary = { root: outDir, products: [], files: 0 };
  const name = (i: number): string => String(i).padStart(3, '0');
  for (const product of options.products) {
    const kinds = defectsFor((OBJECT_PRODUCTS as readonly string[]).includes(product));
    const dirs = [join(outDir, product, 'train', 'good'), join(outDir, product, 'test', 'good')];
    for (const kind of kinds)
      dirs.push(join(outDir, product, 'test', kind), join(outDir, product, 'ground_truth', kind));
    for (const dir of dirs) await mkdir(dir, { recursive: true });
    for (let i = 0; i < options.trainGood; i++) {
      jobs.push(() =>
        writePngRgb(
          join(outDir, product, 'train', 'good', `${name(i)}.png`),
          renderSynthSample(product, 'good', 'train', i, seed, size).image,
        ),
      );
    }
    for (let i = 0; i < options.testGood; i++) {
      jobs.push(() =>
        writePngRgb(
          join(outDir, product, 'test', 'good', `${name(i)}.png`),
          renderSynthSample(product, 'good', 'test', i, seed, size).image,
        ),
      );
    }
    for (const kind of kinds) {
      for (let i = 0; i < options.testDefect; i++) {
        jobs.push(async () => {
          const { image, mask } = renderSynthSample(product, kind, 'test', i, seed, size);
          await Promise.all([
            writePngRgb(join(outDir, product, 'test', kind, `${name(i)}.png`), image),
            writePngGray8(
              join(outDir, product, 'ground_truth', kind, `${name(i)}_mask.png`),
              mask!,
            ),
          ]);
        });
      }
    }
    summary.products.push({
      product,
      trainGood: options.trainGood,
      testGood: options.testGood,
      defects: Object.fromEntries(kinds.map((k) => [k, options.testDefect])),
    });
    summary.files += options.trainGood + options.testGood + 2 * kinds.length * options.testDefect;
  }
  // Rendering is synchronous JS; PNG encoding runs in sharp's thread pool, so keep a few in flight.
  const inFlight = new Set<Promise<void>>();
  for (const job of jobs) {
    const p = job().finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return summary;
}
