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
  /** Extra tensors of the forward pass, downloaded (only when kept). */
  extras?: Map<string, { shape: number[]; data: Float32Array }>;
  /** Per-branch, per-layer abnormal maps (only when kept). [S·S] each */
  layerMaps?: Map<string, Float32Array>;
}

/** What the evaluator counts: method forwards run, and the images they covered. */
export interface InferenceStats {
  /** Calls of the method's forward (one per batch). */
  forwards: number;
  /** Images run through the method's forward. */
  forwardImages: number;
}

export interface PredictOptions {
  /** Images per forward (default 8). */
  batchSize?: number;
  /** Keep the forward's extras and layer maps of every image (default false)… */
  keepExtras?: boolean;
  /** …or of these image indices only. */
  keepExtrasOf?: ReadonlySet<number>;
  /** Counts forwards into these stats. */
  stats?: InferenceStats;
  /** Called after each batch with the images done so far. */
  onBatch?: (done: number) => void;
}

/** Images given up front, or loaded batch by batch (so a product's pixels are never all held). */
export type ImageSource =
  readonly FeatureImage[] | { readonly length: number; load(index: number): Promise<FeatureImage> };

async function imagesOf(
  source: ImageSource,
  start: number,
  end: number,
): Promise<readonly FeatureImage[]> {
  if ('load' in source) {
    const indices = Array.from({ length: end - start }, (_, i) => start + i);
    return Promise.all(indices.map((i) => source.load(i)));
  }
  return (source as readonly FeatureImage[]).slice(start, end);
}

/**
 * Runs the method on un-augmented images in batches; returns per-image maps and scores.
 * `variants` are post-forward variants of one method (ZeroShotMethod.withPostForward, or the
 * method itself): the first runs the forward, every one reads it out, so the images go
 * through the method once however many variants there are. Returns [variant][image].
 */
export async function predictVariants(
  variants: readonly ZeroShotMethod[],
  extractor: FeatureExtractor,
  images: ImageSource,
  options: PredictOptions = {},
): Promise<ImagePrediction[][]> {
  if (variants.length === 0) throw new Error('predictVariants: no method given');
  const [method] = variants;
  // No more images at once than the encoder takes (few for large inputs): a batch's features
  // and the method's activations would otherwise grow with it (ViT-L-14@518: ~0.3 GB per image).
  const batch = Math.max(1, Math.min(options.batchSize ?? 8, extractor.chunkSize));
  const s = method.features.imageSize;
  const out: ImagePrediction[][] = variants.map(() => []);
  const keep = (i: number) => options.keepExtras === true || options.keepExtrasOf?.has(i) === true;
  for (let start = 0; start < images.length; start += batch) {
    const chunk = await imagesOf(images, start, Math.min(images.length, start + batch));
    const features = await extractor.extract(chunk);
    try {
      const output = method.forward(features, { training: false, skipReadout: true });
      if (options.stats) {
        options.stats.forwards++;
        options.stats.forwardImages += chunk.length;
      }
      const kept = chunk.map((_, i) => keep(start + i));
      const anyKept = kept.some(Boolean);
      try {
        // Variant-independent, so downloaded once and shared by every variant's predictions.
        const extras = anyKept
          ? Object.entries(output.extras).map(
              ([k, t]) => [k, t.shape, t.dataSync() as Float32Array] as const,
            )
          : [];
        const layers = anyKept
          ? Object.entries(output.layerMaps).flatMap(([branch, list]) =>
              list.map((m, li) => [`${branch}.${li}`, m.dataSync() as Float32Array] as const),
            )
          : [];
        const extrasOf = (i: number) =>
          new Map(
            extras.map(([k, shape, data]) => {
              // Tensors shared by the batch (leading 1) are given to every image.
              const per = shape[0] === chunk.length ? data.length / chunk.length : data.length;
              const at = shape[0] === chunk.length ? i * per : 0;
              return [k, { shape: shape.slice(1), data: data.slice(at, at + per) }];
            }),
          );
        const layerMapsOf = (i: number) =>
          new Map(
            layers.map(([k, data]) => {
              const abnormal = new Float32Array(s * s);
              for (let p = 0; p < s * s; p++) abnormal[p] = data[(i * s * s + p) * 2 + 1];
              return [k, abnormal];
            }),
          );
        const keptExtras = kept.map((k, i) =>
          k ? { extras: extrasOf(i), layerMaps: layerMapsOf(i) } : undefined,
        );
        variants.forEach((variant, v) => {
          const readout = variant.readout(output);
          try {
            const maps = readout.anomalyMap.dataSync() as Float32Array; // [b, S, S]
            const scores = readout.score ? (readout.score.dataSync() as Float32Array) : null;
            for (let i = 0; i < chunk.length; i++) {
              out[v].push({
                raw: maps.slice(i * s * s, (i + 1) * s * s),
                methodScore: scores ? scores[i] : null,
                ...keptExtras[i],
              });
            }
          } finally {
            tf.dispose([readout.anomalyMap, ...(readout.score ? [readout.score] : [])]);
          }
        });
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
    options.onBatch?.(Math.min(images.length, start + batch));
  }
  return out;
}

/** Runs the method on un-augmented images in batches; returns per-image maps and scores. */
export async function predictImages(
  method: ZeroShotMethod,
  extractor: FeatureExtractor,
  images: readonly FeatureImage[],
  options: PredictOptions = {},
): Promise<ImagePrediction[]> {
  return (await predictVariants([method], extractor, images, options))[0];
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
  // The smoothed maps are ours to overwrite; unsmoothed ones are the predictions' own.
  if (normalizeMaps) maps = minMaxNormalise(maps, { inPlace: smoothingSigma > 0 });
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
  stats?: InferenceStats;
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
  /** Wall time per image (features + forward + post-processing), of the whole group when grouped. */
  msPerImage: number;
}

/** Every product of a dataset's test split: maps, scores, metrics; then the mean over products. */
export async function evaluateDataset(options: EvaluateDatasetOptions): Promise<DatasetEvaluation> {
  const { method, onProduct, ...rest } = options;
  const [result] = await evaluateDatasetGroup({
    ...rest,
    variants: [method],
    onProduct: onProduct && ((_v, metrics, ms, defects) => onProduct(metrics, ms, defects)),
  });
  return result;
}

/** One product's test images with what a group's variants predicted for them. */
export interface ProductPredictions {
  product: string;
  samples: readonly Sample[];
  /** [variant][image], in `samples` order; extras kept for the images `keepExtras` chose. */
  predictions: readonly (readonly ImagePrediction[])[];
}

export interface EvaluateGroupOptions extends Omit<EvaluateDatasetOptions, 'method' | 'onProduct'> {
  /** Post-forward variants of one method (the first runs the forward; see predictVariants). */
  variants: readonly ZeroShotMethod[];
  /** Per variant and product, once its metrics are computed. */
  onProduct?: (
    variant: number,
    metrics: ProductMetrics,
    elapsedMs: number,
    defects: DefectMetrics[],
  ) => void;
  /** Indices (into a product's test samples) whose forward extras and layer maps are kept. */
  keepExtras?: (product: string, samples: readonly Sample[]) => ReadonlySet<number>;
  /** Called with each product's predictions before they are post-processed (e.g. to draw samples). */
  onPredictions?: (product: ProductPredictions) => Promise<void>;
}

/**
 * An evaluation group: every variant evaluated on every product of a dataset from one forward
 * pass per test image. Per product: the forward and the variants' readouts, then for one
 * variant after the other smoothing, normalisation and metrics (so at most one variant's
 * post-processed maps are held besides the raw ones, which are dropped as each variant ends).
 * Returns one DatasetEvaluation per variant, each what evaluateDataset gives for it alone.
 */
export async function evaluateDatasetGroup(
  options: EvaluateGroupOptions,
): Promise<DatasetEvaluation[]> {
  const { variants, extractor, dataset } = options;
  const s = variants[0].features.imageSize;
  const results: ProductMetrics[][] = variants.map(() => []);
  const defects: DefectMetrics[][] = variants.map(() => []);
  const products = options.products ?? dataset.products();
  const total = products.reduce((n, p) => n + dataset.samples(p, 'test').length, 0);
  let images = 0;
  let elapsed = 0;
  for (const product of products) {
    options.signal?.throwIfAborted();
    const samples: Sample[] = dataset.samples(product, 'test');
    if (samples.length === 0) continue;
    const started = performance.now();
    const inputs: ImageSource = {
      length: samples.length,
      load: async (i) => ({
        pixels: await loadImageTensorData(samples[i].imagePath, s),
        cacheable: true,
      }),
    };
    const before = images;
    const predictions: (ImagePrediction[] | undefined)[] = await predictVariants(
      variants,
      extractor,
      inputs,
      {
        batchSize: options.batchSize,
        keepExtrasOf: options.keepExtras?.(product, samples),
        stats: options.stats,
        onBatch: (done) => options.onImages?.(before + done, total, product),
      },
    );
    await options.onPredictions?.({
      product,
      samples,
      predictions: predictions as ImagePrediction[][],
    });
    const masks: Uint8Array[] = [];
    for (const sample of samples) masks.push(await loadMaskData(sample.maskPath, s));
    const all = samples.map((_, i) => i);
    const kinds = [...new Set(samples.filter((x) => x.label === 1).map((x) => x.defect))].sort();
    const perDefect = (options.perDefect ?? true) && kinds.length > 1;
    const forwardMs = performance.now() - started;
    let postMs = 0;
    for (let v = 0; v < variants.length; v++) {
      const postStarted = performance.now();
      const post = postprocessProduct(variants[v], predictions[v]!);
      predictions[v] = undefined; // the raw maps are not needed any more
      const scores = selectScores(variants[v], post);
      const evaluate = (indices: readonly number[]) => {
        const accumulator = new PixelAccumulator();
        for (const i of indices)
          accumulator.add(post.maps[i], masks[i], s, s, samples[i].imagePath);
        return evaluateProduct(
          {
            product,
            pixels: accumulator.finish(),
            imageScores: indices.map((i) => scores[i]),
            imageLabels: indices.map((i) => samples[i].label),
          },
          { pro: options.pro },
        );
      };
      const metrics = evaluate(all);
      const productDefects: DefectMetrics[] = [];
      if (perDefect) {
        const normal = all.filter((i) => samples[i].label !== 1);
        for (const defect of kinds) {
          const own = all.filter((i) => samples[i].label === 1 && samples[i].defect === defect);
          productDefects.push({ ...evaluate([...normal, ...own]), defect });
        }
      }
      results[v].push(metrics);
      defects[v].push(...productDefects);
      const ms = performance.now() - postStarted;
      postMs += ms;
      options.onProduct?.(v, metrics, forwardMs + ms, productDefects);
    }
    elapsed += forwardMs + postMs;
    images += samples.length;
  }
  return results.map((products, v) => {
    const applied = applyDatasetApplicability(products);
    return {
      dataset: dataset.name,
      products: applied.products,
      defects: defects[v],
      mean: applied.mean,
      undefined: applied.undefined,
      images,
      msPerImage: images > 0 ? elapsed / images : 0,
    };
  });
}
