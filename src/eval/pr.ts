/**
 * Precision–recall metrics with scikit-learn semantics: average precision is the step sum
 * Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct thresholds (not the trapezoid), and F1-max is the maximum
 * of 2PR/(P+R) over the points of `precision_recall_curve`, as the public VCP-CLIP code takes
 * it. The appended (P=1, R=0) point has F1 = 0, so it counts but can only win when every other
 * point has F1 = 0, which cannot happen with at least one positive; points with P = R = 0
 * (0/0) are skipped like the public code's `np.isfinite` filter.
 */
import { curvePoints, splitSorted, summariseCurve } from './curve.js';

/**
 * Average precision of scores against binary labels (nonzero = positive).
 * @param scores [n]
 * @param labels [n]
 * @returns the positive rate for constant scores; 1 when every sample is positive
 * @throws RangeError without positive samples
 */
export function averagePrecision(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { positives, negatives } = splitSorted(scores, labels);
  return summariseCurve(positives, negatives).averagePrecision;
}

export interface F1Max {
  f1: number;
  /** Lowest threshold reaching the maximum; predictions are score >= threshold. */
  threshold: number;
  precision: number;
  recall: number;
}

/** Maximum F1 over thresholds and the threshold reaching it. @throws RangeError without positives */
export function f1Max(scores: ArrayLike<number>, labels: ArrayLike<number>): F1Max {
  const { positives, negatives } = splitSorted(scores, labels);
  const s = summariseCurve(positives, negatives);
  return {
    f1: s.f1Max,
    threshold: s.f1Threshold,
    precision: s.tpAtF1 / (s.tpAtF1 + s.fpAtF1),
    recall: s.tpAtF1 / s.positives,
  };
}

export interface PrecisionRecallCurve {
  /** [m+1] precision at increasing thresholds, then the appended 1. */
  precision: Float64Array;
  /** [m+1] recall, decreasing, then the appended 0. */
  recall: Float64Array;
  /** [m] the distinct scores, increasing. */
  thresholds: Float64Array;
}

/**
 * sklearn's `precision_recall_curve` (drop_intermediate=False), for small inputs.
 * @throws RangeError without positive samples
 */
export function precisionRecallCurve(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): PrecisionRecallCurve {
  const { positives, negatives } = splitSorted(scores, labels);
  const P = positives.length;
  if (P === 0)
    throw new RangeError('the precision–recall curve is undefined without positive samples');
  const { thresholds, tp, fp } = curvePoints(positives, negatives);
  const m = thresholds.length;
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const ascending = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    const from = m - 1 - k; // sklearn lists thresholds increasing
    precision[k] = tp[from] / (tp[from] + fp[from]);
    recall[k] = tp[from] / P;
    ascending[k] = thresholds[from];
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds: ascending };
}
