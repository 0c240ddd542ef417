/**
 * Metrics a whole dataset cannot define, decided from its ground truth alone: image metrics on
 * a set where every image is anomalous (e.g. the polyp sets: AUROC is undefined, AP and F1-max
 * are 1 for any score), pixel metrics on a set with image labels only (e.g. HeadCT, BrainMRI,
 * Br35H: no anomalous pixel in any mask). Such metrics are dropped from every product and from
 * the mean, with the reason, instead of being reported as numbers (or NaN).
 */
import type { MetricName, ProductMetrics } from './evaluate.js';
import { meanOverProducts, type MeanMetrics } from './evaluate.js';

export const IMAGE_METRICS = ['imageAuroc', 'imageAp', 'imageF1Max'] as const;
export const PIXEL_METRICS = ['pixelAuroc', 'pro', 'pixelAp', 'pixelF1Max', 'iou'] as const;

export interface UndefinedMetrics {
  metrics: MetricName[];
  reason: string;
}

/** What the dataset (all its products together) cannot define, and why. */
export function undefinedOnDataset(products: readonly ProductMetrics[]): UndefinedMetrics[] {
  const images = products.reduce((a, p) => a + p.images, 0);
  const anomalous = products.reduce((a, p) => a + p.anomalousImages, 0);
  const anomalousPixels = products.reduce((a, p) => a + p.anomalousPixels, 0);
  if (images === 0) return [];
  const out: UndefinedMetrics[] = [];
  if (anomalous === images) {
    out.push({
      metrics: [...IMAGE_METRICS],
      reason: `every image is anomalous (${images} of ${images}): image AUROC is undefined, AP and F1-max are 1 for any score`,
    });
  }
  if (anomalous === 0) {
    out.push({
      metrics: [...IMAGE_METRICS, ...PIXEL_METRICS],
      reason: `no anomalous image among ${images}`,
    });
  } else if (anomalousPixels === 0) {
    out.push({
      metrics: [...PIXEL_METRICS],
      reason: `image-level labels only: ${anomalous} anomalous images, no anomalous pixel in any mask`,
    });
  }
  return out;
}

/**
 * Drops the metrics the dataset cannot define from every product (null, with the reason) and
 * recomputes the mean. Returns new product records; the inputs are not changed.
 */
export function applyDatasetApplicability(products: readonly ProductMetrics[]): {
  products: ProductMetrics[];
  mean: MeanMetrics;
  undefined: UndefinedMetrics[];
} {
  const skipped = undefinedOnDataset(products);
  const out = products.map((p) => {
    const copy: ProductMetrics = { ...p, reasons: { ...p.reasons }, notes: [...p.notes] };
    for (const { metrics, reason } of skipped) {
      for (const name of metrics) {
        copy[name] = null;
        copy.reasons[name] = `not defined on this dataset: ${reason}`;
        if (name === 'pixelF1Max') copy.pixelF1Threshold = null;
      }
    }
    return copy;
  });
  return { products: out, mean: meanOverProducts(out), undefined: skipped };
}
