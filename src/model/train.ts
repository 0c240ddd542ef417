/**
 * Training loop for any ZeroShotMethod on frozen CLIP features: seeded shuffling and
 * augmentation, Adam over the method's lr groups, one optimiser step per batch with gradients
 * accumulated over micro-batches (the sum of the micro-batch gradients of loss·(m/B) equals the
 * full-batch gradient, since the losses are means over the batch), per-step callbacks, NaN
 * detection and clean stopping through an AbortSignal.
 */
import { UserError } from '../errors.js';
import { normalizeClip, readImageRgb, resizeRgb, loadMaskData } from '../datasets/image-io.js';
import { hashString, Rng } from '../io/prng.js';
import type { Sample } from '../datasets/types.js';
import {
  augmentSample,
  mosaic,
  type AugmentProbabilities,
  type AugmentSwitches,
  type AugSample,
} from './augment.js';
import { disposeFeatures, type FeatureExtractor, type FeatureImage } from './features.js';
import type { ZeroShotMethod } from './methods/method.js';
import { createOptimizer } from './methods/optim.js';
import { tf } from './tf.js';
import type { Tensor1D, Tensor3D } from './tf.js';

export interface TrainSchedule {
  epochs: number;
  batch_size: number;
  /** Images per forward/backward (gradient accumulation); ≥ batch_size means one chunk. */
  micro_batch: number;
  augment: AugmentSwitches;
}

export interface StepEvent {
  epoch: number;
  /** 0-based over the whole run. */
  step: number;
  /** Step within the epoch and steps per epoch. */
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  images: number;
}

export interface EpochEvent {
  epoch: number;
  /** Mean of the epoch's step losses, weighted by images. */
  loss: number;
  steps: number;
}

export interface TrainOptions {
  method: ZeroShotMethod;
  extractor: FeatureExtractor;
  samples: readonly Sample[];
  schedule: TrainSchedule;
  seed: number;
  /** Loads a sample at S×S (default: decode, PIL-bicubic resize, binarised mask). */
  load?: (sample: Sample, size: number) => Promise<AugSample>;
  /** Overrides the augmentation probabilities (tests). */
  probabilities?: Partial<AugmentProbabilities>;
  /** Bytes of decoded S×S samples kept between epochs (default 1 GiB; 0 re-decodes every time). */
  sampleCacheBytes?: number;
  onStep?: (event: StepEvent) => void;
  onEpoch?: (event: EpochEvent) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  /** Loss of every optimiser step. */
  losses: number[];
  epochLosses: number[];
  steps: number;
  /** True when the signal stopped the run (after a complete step). */
  aborted: boolean;
}

/** Decodes an image and its mask at S×S: the test-time transform before normalisation. */
export async function loadSample(sample: Sample, size: number): Promise<AugSample> {
  const [image, mask] = await Promise.all([
    readImageRgb(sample.imagePath),
    loadMaskData(sample.maskPath, size),
  ]);
  return { image: resizeRgb(image, size, size, 'bicubic'), mask };
}

type Loader = (sample: Sample, size: number) => Promise<AugSample>;

/**
 * Keeps decoded S×S samples (least recently used first out, up to `maxBytes`): decoding and
 * resizing a 1024² PNG costs ~0.16 s, and every epoch (and every mosaic) needs the same images
 * again. Samples are never modified (augmentations return new arrays), so sharing is safe.
 */
function keepLoaded(load: Loader, maxBytes: number): Loader {
  if (maxBytes <= 0) return load;
  const entries = new Map<string, { loaded: Promise<AugSample>; bytes: number }>();
  let total = 0;
  return async (sample, size) => {
    const key = sample.imagePath; // S is fixed for a run
    const hit = entries.get(key);
    if (hit) {
      entries.delete(key); // re-insert: Map order is the recency order
      entries.set(key, hit);
      return hit.loaded;
    }
    const entry = { loaded: load(sample, size), bytes: 0 };
    entries.set(key, entry);
    const loaded = await entry.loaded.catch((error: unknown) => {
      entries.delete(key);
      throw error;
    });
    if (entries.get(key) === entry) {
      entry.bytes = loaded.image.data.byteLength + loaded.mask.byteLength;
      total += entry.bytes;
      for (const [oldest, old] of entries) {
        if (total <= maxBytes || oldest === key) break;
        entries.delete(oldest);
        total -= old.bytes;
      }
    }
    return loaded;
  };
}

/** Deterministic Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

interface Prepared {
  features: FeatureImage;
  mask: Uint8Array;
  label: number;
}

export async function trainMethod(options: TrainOptions): Promise<TrainResult> {
  const { method, extractor, samples, schedule, seed, signal } = options;
  const size = method.features.imageSize;
  const load = keepLoaded(options.load ?? loadSample, options.sampleCacheBytes ?? 2 ** 30);
  if (samples.length === 0)
    throw new UserError('training: the training set has no samples', {
      hint: 'check train.dataset (root, products, split)',
    });
  for (const field of ['epochs', 'batch_size', 'micro_batch'] as const) {
    if (!Number.isInteger(schedule[field]) || schedule[field] < 1)
      throw new UserError(`train.${field}: got ${schedule[field]}, expected an integer ≥ 1`);
  }
  const byProduct = new Map<string, number[]>();
  samples.forEach((s, i) => byProduct.set(s.product, [...(byProduct.get(s.product) ?? []), i]));

  const prepare = async (index: number, epoch: number): Promise<Prepared> => {
    const sample = samples[index];
    const rng = new Rng(hashString(`${seed}:augment:${epoch}:${index}`));
    let base = await load(sample, size);
    let mosaicked = false;
    if (schedule.augment.mosaic > 0 && rng.next() < schedule.augment.mosaic) {
      const pool = byProduct.get(sample.product)!;
      const partners = await Promise.all(
        [0, 1, 2].map(() => load(samples[pool[rng.int(0, pool.length - 1)]], size)),
      );
      base = mosaic([base, ...partners]);
      mosaicked = true;
    }
    const out = augmentSample(base, { ...schedule.augment, mosaic: 0 }, rng, {
      probabilities: options.probabilities,
    });
    const changed = mosaicked || out.applied.length > 0;
    let label = sample.label as number;
    if (mosaicked) label = out.mask.some((v) => v !== 0) ? 1 : 0;
    return {
      features: { pixels: normalizeClip(out.image), cacheable: !changed },
      mask: out.mask,
      label,
    };
  };

  const optimizer = createOptimizer(method);
  const batch = schedule.batch_size;
  const micro = Math.min(schedule.micro_batch, batch);
  const stepsPerEpoch = Math.ceil(samples.length / batch);
  const result: TrainResult = { losses: [], epochLosses: [], steps: 0, aborted: false };
  try {
    for (let epoch = 0; epoch < schedule.epochs && !result.aborted; epoch++) {
      const order = permutation(samples.length, new Rng(hashString(`${seed}:shuffle:${epoch}`)));
      let epochSum = 0;
      let epochImages = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (signal?.aborted) {
          result.aborted = true;
          break;
        }
        const indices = order.slice(s * batch, (s + 1) * batch);
        const stepSeed = hashString(`${seed}:step:${result.steps}`);
        let stepLoss = 0;
        let accumulated: tf.NamedTensorMap = {};
        for (let m = 0; m < indices.length; m += micro) {
          const chunk = await Promise.all(
            indices.slice(m, m + micro).map((i) => prepare(i, epoch)),
          );
          const weight = chunk.length / indices.length;
          const { value, grads } = await microBatchGradients(
            method,
            extractor,
            chunk,
            weight,
            stepSeed,
            optimizer,
          );
          if (!Number.isFinite(value)) {
            tf.dispose(grads);
            tf.dispose(accumulated);
            throw new UserError(
              `training diverged: the loss is ${value} at epoch ${epoch + 1}, step ${s + 1} of ${stepsPerEpoch} (micro-batch ${m / micro + 1})`,
              {
                hint: 'lower the learning rates (lr, lr_tau) or check the training masks',
              },
            );
          }
          stepLoss += value;
          accumulated = addInto(accumulated, grads);
        }
        optimizer.apply(accumulated);
        tf.dispose(accumulated);
        result.losses.push(stepLoss);
        epochSum += stepLoss * indices.length;
        epochImages += indices.length;
        options.onStep?.({
          epoch,
          step: result.steps,
          stepInEpoch: s,
          stepsPerEpoch,
          loss: stepLoss,
          images: indices.length,
        });
        result.steps++;
      }
      if (epochImages > 0) {
        const loss = epochSum / epochImages;
        result.epochLosses.push(loss);
        options.onEpoch?.({ epoch, loss, steps: Math.ceil(epochImages / batch) });
      }
    }
  } finally {
    optimizer.dispose();
  }
  return result;
}

/** Gradients of weight·loss for one micro-batch; features and masks are freed before returning. */
async function microBatchGradients(
  method: ZeroShotMethod,
  extractor: FeatureExtractor,
  chunk: Prepared[],
  weight: number,
  stepSeed: number,
  optimizer: ReturnType<typeof createOptimizer>,
): Promise<{ value: number; grads: tf.NamedTensorMap }> {
  const features = await extractor.extract(chunk.map((c) => c.features));
  const s = method.features.imageSize;
  const maskData = new Float32Array(chunk.length * s * s);
  chunk.forEach((c, i) => maskData.set(c.mask, i * s * s));
  const masks = tf.tensor3d(maskData, [chunk.length, s, s]) as Tensor3D; // [m, S, S]
  const labels = tf.tensor1d(chunk.map((c) => c.label)) as Tensor1D; // [m]
  try {
    // Same seed for every micro-batch of a step: they share the dropout masks a full batch would use.
    method.seedRandomness?.(stepSeed);
    const { value, grads } = optimizer.gradients(
      () =>
        method
          .loss(method.forward(features, { training: true }), masks, labels)
          .mul(weight) as tf.Scalar,
    );
    return { value, grads };
  } finally {
    disposeFeatures(features);
    tf.dispose([masks, labels]);
  }
}

/** acc += grads (by variable name); consumes both maps' tensors. */
function addInto(acc: tf.NamedTensorMap, grads: tf.NamedTensorMap): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = { ...acc };
  for (const [name, g] of Object.entries(grads)) {
    const previous = out[name];
    if (previous) {
      out[name] = tf.add(previous, g);
      tf.dispose([previous, g]);
    } else out[name] = g;
  }
  return out;
}
