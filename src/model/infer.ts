/**
 * Inference and evaluation (spec "Inference and scores"): per image the method's fused map
 * (α·M_vcp + (1−α)·M_base of the layer-averaged maps) and raw score, then Gaussian smoothing
 * (scipy semantics) and min–max normalisation over the product's images. Image scores by both
 * rules: the method's (public code: top-k mean of the unsmoothed branch maps) and the maximum
 * of the smoothed map. Products are processed one at a time and streamed into the metric
 * accumulators, so memory holds one product's maps at most.
 */
import { loadImageTensorData, loadMaskData } from '../datasets/image-io.js';
import type { Dataset, Sample } from '../datasets/types.js';
import { applyDatasetApplicability, type UndefinedMetrics } from '../eval/applicability.js';
import {
  evaluateProduct,
  type MeanMetrics,
  type ProductMetrics,
  type ProVariant,
} from '../eval/evaluate.js';
import { mapMaximum } from '../eval/image.js';
import { PixelAccumulator } from '../eval/pixels.js';
import { gaussianFilter, minMaxNormalise } from '../eval/smoothing.js';
import { disposeFeatures, type FeatureExtractor, type FeatureImage } from './features.js';
import { UserError } from '../errors.js';
import type { PromptPair, ZeroShotMethod } from './methods/method.js';
import { tf } from './tf.js';

/**
 * The method to evaluate with a spec's test-time prompts (`eval.prompts`, paper Table 9): a
 * view that shares the method's parameters (disposed with the method), or the method itself
 * when `prompts` is null (the training prompts).
 */
export function withEvalPrompts(
  method: ZeroShotMethod,
  prompts: readonly PromptPair[] | null | undefined,
  field = 'eval.prompts',
): ZeroShotMethod {
  if (prompts === null || prompts === undefined) return method;
  if (!method.withPrompts) {
    throw new UserError(
      `${field}: method ${method.name} has no text prompts to replace at test time`,
      { hint: `remove ${field} from the spec` },
    );
  }
  return method.withPrompts(prompts, field);
}

export interface ImagePrediction {
  /** Fused map before smoothing. [S·S] */
  raw: Float32Array;
  /** The method's raw image score (null when the method has none). */
  methodScore: number | null;
  /** Extra tensors of the forward pass, downloaded (only when `keepExtras`). */
  extras?: Map<string, { shape: number[]; data: Float32Array }>;
  /** Per-branch, per-layer abnormal maps (only when `keepExtras`). [S·S] each */
  layerMaps?: Map<string, Float32Array>;
}

/** Runs the method on un-augmented images in batches; returns per-image maps and scores. */
export async function predictImages(
  method: ZeroShotMethod,
  extractor: FeatureExtractor,
  images: readonly FeatureImage[],
  options: {
    batchSize?: number;
    keepExtras?: boolean;
    /** Called after each batch with the images done so far. */
    onBatch?: (done: number) => void;
  } = {},
): Promise<ImagePrediction[]> {
  const batch = Math.max(1, options.batchSize ?? 8);
  const s = method.features.imageSize;
  const out: ImagePrediction[] = [];
  for (let start = 0; start < images.length; start += batch) {
    const chunk = images.slice(start, start + batch);
    const features = await extractor.extract(chunk);
    try {
      const output = method.forward(features, { training: false });
      try {
        if (!output.anomalyMap)
          throw new Error(`${method.name}: forward at test time returned no anomalyMap`);
        const maps = output.anomalyMap.dataSync() as Float32Array; // [b, S, S]
        const scores = output.score ? (output.score.dataSync() as Float32Array) : null;
        const extras = options.keepExtras
          ? Object.entries(output.extras).map(
              ([k, t]) => [k, t.shape, t.dataSync() as Float32Array] as const,
            )
          : [];
        const layers = options.keepExtras
          ? Object.entries(output.layerMaps).flatMap(([branch, list]) =>
              list.map((m, li) => [`${branch}.${li}`, m.dataSync() as Float32Array] as const),
            )
          : [];
        for (let i = 0; i < chunk.length; i++) {
          const prediction: ImagePrediction = {
            raw: maps.slice(i * s * s, (i + 1) * s * s),
            methodScore: scores ? scores[i] : null,
          };
          if (options.keepExtras) {
            prediction.extras = new Map(
              extras.map(([k, shape, data]) => {
                // Tensors shared by the batch (leading 1) are given to every image.
                const per = shape[0] === chunk.length ? data.length / chunk.length : data.length;
                const at = shape[0] === chunk.length ? i * per : 0;
                return [k, { shape: shape.slice(1), data: data.slice(at, at + per) }];
              }),
            );
            prediction.layerMaps = new Map(
              layers.map(([k, data]) => {
                const abnormal = new Float32Array(s * s);
                for (let p = 0; p < s * s; p++) abnormal[p] = data[(i * s * s + p) * 2 + 1];
                return [k, abnormal];
              }),
            );
          }
          out.push(prediction);
        }
      } finally {
        tf.dispose([
          ...Object.values(output.layerMaps).flat(),
          ...Object.values(output.extras),
          ...(output.anomalyMap ? [output.anomalyMap] : []),
          ...(output.score ? [output.score] : []),
        ]);
      }
    } finally {
      disposeFeatures(features);
    }
    options.onBatch?.(out.length);
  }
  return out;
}

export interface PostprocessedProduct {
  /** Smoothed (and, when normalising, min–max-normalised) maps. [S·S] each */
  maps: Float32Array[];
  /** Method score per image, min–max normalised over the product when the method says so (null without one). */
  methodScores: number[] | null;
  /** Maximum of each final map (appendix B.4 score). */
  maxScores: number[];
}

/**
 * Smoothing (σ), min–max normalisation of maps and scores over one product's predictions.
 * `normalize: false` keeps every image's map and score its own (independent of the others).
 */
export function postprocessProduct(
  method: ZeroShotMethod,
  predictions: readonly ImagePrediction[],
  options: { normalize?: boolean } = {},
): PostprocessedProduct {
  const { smoothingSigma } = method.postprocess;
  const normalizeMaps = options.normalize ?? method.postprocess.normalizeMaps;
  const normalizeScores = options.normalize ?? method.postprocess.normalizeScores;
  const s = method.features.imageSize;
  let maps = predictions.map((p) =>
    smoothingSigma > 0 ? gaussianFilter(p.raw, s, s, smoothingSigma) : p.raw,
  );
  if (normalizeMaps) maps = minMaxNormalise(maps);
  const raw = predictions.every((p) => p.methodScore !== null)
    ? predictions.map((p) => p.methodScore!)
    : null;
  const methodScores =
    raw && normalizeScores ? Array.from(minMaxNormalise([Float32Array.from(raw)])[0]) : raw;
  return { maps, methodScores, maxScores: maps.map((m) => mapMaximum(m)) };
}

/** The image score the method's postprocess spec selects. */
export function selectScores(method: ZeroShotMethod, product: PostprocessedProduct): number[] {
  if (method.postprocess.score === 'method' && product.methodScores) return product.methodScores;
  return product.maxScores;
}

export interface EvaluateDatasetOptions {
  method: ZeroShotMethod;
  extractor: FeatureExtractor;
  dataset: Dataset;
  /** Default: every product of the dataset. */
  products?: readonly string[];
  batchSize?: number;
  pro?: ProVariant;
  /** Also evaluate each defect type of a product with several (default true). */
  perDefect?: boolean;
  onProduct?: (metrics: ProductMetrics, elapsedMs: number, defects: DefectMetrics[]) => void;
  /** Images done so far over the whole dataset (after every batch). */
  onImages?: (done: number, total: number, product: string) => void;
  signal?: AbortSignal;
}

/**
 * One defect type of a product: its anomalous images with the product's normal test images
 * (pixel metrics over those images; image metrics normal vs this defect).
 */
export interface DefectMetrics extends ProductMetrics {
  defect: string;
}

export interface DatasetEvaluation {
  dataset: string;
  products: ProductMetrics[];
  /** Per defect type, for products with more than one (in product, then defect order). */
  defects: DefectMetrics[];
  mean: MeanMetrics;
  /** Metrics the dataset cannot define (e.g. image metrics when every image is anomalous), with why: null in `products` and `mean`. */
  undefined: UndefinedMetrics[];
  images: number;
  /** Wall time per image (features + forward + post-processing). */
  msPerImage: number;
}

/** Every product of a dataset's test split: maps, scores, metrics; then the mean over products. */
export async function evaluateDataset(options: EvaluateDatasetOptions): Promise<DatasetEvaluation> {
  const { method, extractor, dataset } = options;
  const s = method.features.imageSize;
  const results: ProductMetrics[] = [];
  const defects: DefectMetrics[] = [];
  const products = options.products ?? dataset.products();
  const total = products.reduce((n, p) => n + dataset.samples(p, 'test').length, 0);
  let images = 0;
  let elapsed = 0;
  for (const product of products) {
    options.signal?.throwIfAborted();
    const samples: Sample[] = dataset.samples(product, 'test');
    if (samples.length === 0) continue;
    const started = performance.now();
    const inputs = await Promise.all(
      samples.map(async (sample) => ({
        pixels: await loadImageTensorData(sample.imagePath, s),
        cacheable: true,
      })),
    );
    const before = images;
    const predictions = await predictImages(method, extractor, inputs, {
      batchSize: options.batchSize,
      onBatch: (done) => options.onImages?.(before + done, total, product),
    });
    const post = postprocessProduct(method, predictions);
    const scores = selectScores(method, post);
    const masks: Uint8Array[] = [];
    for (const sample of samples) masks.push(await loadMaskData(sample.maskPath, s));
    const evaluate = (name: string, indices: readonly number[]) => {
      const accumulator = new PixelAccumulator();
      for (const i of indices) accumulator.add(post.maps[i], masks[i], s, s, samples[i].imagePath);
      return evaluateProduct(
        {
          product: name,
          pixels: accumulator.finish(),
          imageScores: indices.map((i) => scores[i]),
          imageLabels: indices.map((i) => samples[i].label),
        },
        { pro: options.pro },
      );
    };
    const all = samples.map((_, i) => i);
    const metrics = evaluate(product, all);
    const productDefects: DefectMetrics[] = [];
    const kinds = [...new Set(samples.filter((x) => x.label === 1).map((x) => x.defect))].sort();
    if ((options.perDefect ?? true) && kinds.length > 1) {
      const normal = all.filter((i) => samples[i].label !== 1);
      for (const defect of kinds) {
        const own = all.filter((i) => samples[i].label === 1 && samples[i].defect === defect);
        productDefects.push({ ...evaluate(product, [...normal, ...own]), defect });
      }
    }
    const ms = performance.now() - started;
    elapsed += ms;
    images += samples.length;
    results.push(metrics);
    defects.push(...productDefects);
    options.onProduct?.(metrics, ms, productDefects);
  }
  const applied = applyDatasetApplicability(results);
  return {
    dataset: dataset.name,
    products: applied.products,
    defects,
    mean: applied.mean,
    undefined: applied.undefined,
    images,
    msPerImage: images > 0 ? elapsed / images : 0,
  };
}
