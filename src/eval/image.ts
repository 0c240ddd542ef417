/**
 * Image-level detection metrics (AUROC, AP, F1-max over image scores) and the pixel IoU at
 * the F1-optimal pixel threshold.
 */
import { splitSorted, summariseCurve, type CurveSummary } from './curve.js';

export interface ImageMetrics {
  /** null when only one class of image is present, with `reason`. */
  auroc: number | null;
  /** null without anomalous images. */
  ap: number | null;
  f1Max: number | null;
  /** Lowest image score reaching f1Max (score >= threshold is anomalous). */
  f1Threshold: number | null;
  reason?: string;
}

/**
 * Image AUROC / AP / F1-max (sklearn semantics, as the pixel metrics).
 * @param scores [n] one score per image (e.g. the map maximum, or the public top-k score)
 * @param labels [n] nonzero = anomalous image
 */
export function imageMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>): ImageMetrics {
  const { positives, negatives } = splitSorted(scores, labels);
  if (positives.length === 0) {
    return {
      auroc: null,
      ap: null,
      f1Max: null,
      f1Threshold: null,
      reason: `no anomalous images among ${negatives.length}`,
    };
  }
  const s = summariseCurve(positives, negatives);
  return {
    auroc: s.auroc,
    ap: s.averagePrecision,
    f1Max: s.f1Max,
    f1Threshold: s.f1Threshold,
    reason: s.auroc === null ? `no normal images among ${positives.length}` : undefined,
  };
}

/**
 * Intersection over union of the predicted (score >= F1-optimal threshold) and true anomalous
 * pixels of a product: tp / (tp + fp + fn) = tp / (fp + P).
 */
export function iouAtF1(summary: CurveSummary): number {
  return summary.tpAtF1 / (summary.fpAtF1 + summary.positives);
}

/** The maximum of a map: the image score of the paper's appendix B.4. */
export function mapMaximum(map: ArrayLike<number>): number {
  let hi = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < map.length; k++) if (map[k] > hi) hi = map[k];
  return hi;
}
