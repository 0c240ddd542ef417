/**
 * Per-product evaluation (every metric the paper reports) and the mean over products.
 * A metric that is undefined for a product is `null` with a reason, never NaN; the mean
 * skips nulls and says how many products it skipped.
 */
import { summariseCurve } from './curve.js';
import { imageMetrics, iouAtF1 } from './image.js';
import type { ProductPixels } from './pixels.js';
import { auproExact, proPaper, type ProResult } from './pro.js';

export const METRICS = [
  'pixelAuroc',
  'pro',
  'pixelAp',
  'pixelF1Max',
  'iou',
  'imageAuroc',
  'imageAp',
  'imageF1Max',
] as const;
export type MetricName = (typeof METRICS)[number];

export type ProVariant = 'paper' | 'exact';

export interface EvaluateOptions {
  /** 'paper' (default): the public cal_pro_score; 'exact': AUPRO over every threshold. */
  pro?: ProVariant;
  /** FPR integration limit of PRO (default 0.3). */
  fprLimit?: number;
}

export interface ProductInput {
  product: string;
  pixels: ProductPixels;
  /** [images] one score per image, in the order the images were added. */
  imageScores: ArrayLike<number>;
  /** [images] nonzero = anomalous image (its mask has an anomalous pixel). */
  imageLabels: ArrayLike<number>;
}

export interface ProductMetrics extends Record<MetricName, number | null> {
  product: string;
  images: number;
  anomalousImages: number;
  pixels: number;
  anomalousPixels: number;
  regions: number;
  /** Score threshold of the pixel F1-max (score >= threshold is anomalous); null with pixelF1Max. */
  pixelF1Threshold: number | null;
  /** Why each null metric is null. */
  reasons: Partial<Record<MetricName, string>>;
  /** Conventions applied to degenerate inputs (e.g. PRO of constant maps). */
  notes: string[];
}

const PRO: Record<ProVariant, (pixels: ProductPixels, fprLimit: number) => ProResult> = {
  paper: (pixels, fprLimit) => proPaper(pixels, { fprLimit }),
  exact: (pixels, fprLimit) => auproExact(pixels, { fprLimit }),
};

/**
 * Every metric of one product.
 * Undefined cases: no anomalous pixel (all-normal product) → all pixel metrics null; no normal
 * pixel → pixel AUROC and PRO null; one class of image → image AUROC null (and image AP/F1
 * null without anomalous images). Constant maps are defined: AUROC 0.5, AP = positive rate,
 * PRO 0 (paper, with a note) or fprLimit/2 (exact).
 */
export function evaluateProduct(
  input: ProductInput,
  options: EvaluateOptions = {},
): ProductMetrics {
  const { pixels, product } = input;
  const P = pixels.positives.length;
  const N = pixels.negatives.length;
  if (input.imageScores.length !== pixels.images || input.imageLabels.length !== pixels.images) {
    throw new RangeError(
      `${product}: ${pixels.images} images but ${input.imageScores.length} image scores and ${input.imageLabels.length} labels`,
    );
  }
  let anomalousImages = 0;
  for (let k = 0; k < input.imageLabels.length; k++)
    if (input.imageLabels[k] !== 0) anomalousImages++;
  const result: ProductMetrics = {
    product,
    images: pixels.images,
    anomalousImages,
    pixels: P + N,
    anomalousPixels: P,
    regions: pixels.regionAreas.length,
    pixelAuroc: null,
    pro: null,
    pixelAp: null,
    pixelF1Max: null,
    pixelF1Threshold: null,
    iou: null,
    imageAuroc: null,
    imageAp: null,
    imageF1Max: null,
    reasons: {},
    notes: [],
  };
  if (P === 0) {
    for (const name of ['pixelAuroc', 'pro', 'pixelAp', 'pixelF1Max', 'iou'] as const)
      result.reasons[name] = 'no anomalous pixels (all-normal product)';
  } else {
    const curve = summariseCurve(pixels.positives, pixels.negatives);
    result.pixelAp = curve.averagePrecision;
    result.pixelF1Max = curve.f1Max;
    result.pixelF1Threshold = curve.f1Threshold;
    result.iou = iouAtF1(curve);
    if (N === 0) {
      result.reasons.pixelAuroc = result.reasons.pro =
        'no normal pixels (every pixel is anomalous)';
    } else {
      result.pixelAuroc = curve.auroc;
      const pro = PRO[options.pro ?? 'paper'](pixels, options.fprLimit ?? 0.3);
      result.pro = pro.value;
      if (pro.note) result.notes.push(`PRO: ${pro.note}`);
    }
  }
  const image = imageMetrics(input.imageScores, input.imageLabels);
  result.imageAuroc = image.auroc;
  result.imageAp = image.ap;
  result.imageF1Max = image.f1Max;
  if (image.reason) {
    for (const name of ['imageAuroc', 'imageAp', 'imageF1Max'] as const)
      if (result[name] === null) result.reasons[name] = image.reason;
  }
  return result;
}

export interface MeanMetrics {
  /** Mean over the products where the metric is defined; null when it is defined nowhere. */
  mean: Record<MetricName, number | null>;
  /** Products counted per metric. */
  counted: Record<MetricName, number>;
  /** Products skipped per metric (metric null there). */
  skipped: Record<MetricName, number>;
}

/** Mean of every metric over products, skipping (and counting) the nulls. */
export function meanOverProducts(products: readonly ProductMetrics[]): MeanMetrics {
  const mean = {} as Record<MetricName, number | null>;
  const counted = {} as Record<MetricName, number>;
  const skipped = {} as Record<MetricName, number>;
  for (const name of METRICS) {
    const values = products.map((p) => p[name]).filter((v): v is number => v !== null);
    counted[name] = values.length;
    skipped[name] = products.length - values.length;
    mean[name] = values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
  }
  return { mean, counted, skipped };
}
