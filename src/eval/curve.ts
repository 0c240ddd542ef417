/**
 * One descending walk over the distinct thresholds of a binary scoring problem, given the
 * scores of each class sorted ascending. Every threshold is a distinct score and predicts
 * "anomalous" for score >= threshold (scikit-learn's convention); tied scores move together,
 * so ties are exact. The walk yields AUROC, AP and F1-max at once without materialising the
 * curve, which is what keeps 27M-pixel products within memory.
 */

export type SortedScores = Float32Array | Float64Array;

export interface CurveSummary {
  positives: number;
  negatives: number;
  /** Trapezoid area under ROC (sklearn `roc_auc_score`); null when there are no negatives. */
  auroc: number | null;
  /** Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct thresholds (sklearn `average_precision_score`). */
  averagePrecision: number;
  /** max over thresholds of 2PR/(P+R) (the appended P=1, R=0 point has F1 = 0 and never wins). */
  f1Max: number;
  /** Lowest threshold reaching f1Max (np.argmax over sklearn's ascending thresholds). */
  f1Threshold: number;
  /** Counts at f1Threshold (prediction: score >= f1Threshold). */
  tpAtF1: number;
  fpAtF1: number;
}

/**
 * Summarises the ROC and precision–recall curves of sorted class scores.
 * @param positives scores of positive (anomalous) samples, ascending, at least one
 * @param negatives scores of negative samples, ascending (may be empty)
 * @throws RangeError without positives: recall, AP and F1 are undefined (sklearn warns and
 *   returns meaningless values there)
 */
export function summariseCurve(positives: SortedScores, negatives: SortedScores): CurveSummary {
  const P = positives.length;
  const N = negatives.length;
  if (P === 0)
    throw new RangeError('precision–recall metrics are undefined without positive samples');
  let j = P - 1;
  let i = N - 1;
  let tp = 0;
  let fp = 0;
  let area2 = 0; // Σ Δfp·(tp + tp_prev): twice the ROC area in counts, exact below 2^53
  let ap = 0;
  let f1Max = -1;
  let f1Threshold = Number.NaN;
  let tpAtF1 = 0;
  let fpAtF1 = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? positives[j] : j < 0 ? negatives[i] : Math.max(positives[j], negatives[i]);
    const tpPrev = tp;
    const fpPrev = fp;
    while (j >= 0 && positives[j] === t) {
      tp++;
      j--;
    }
    while (i >= 0 && negatives[i] === t) {
      fp++;
      i--;
    }
    area2 += (fp - fpPrev) * (tp + tpPrev);
    if (tp === 0) continue; // P = R = 0: F1 is 0/0, skipped as the public code skips non-finite values
    const precision = tp / (tp + fp);
    const recall = tp / P;
    if (tp > tpPrev) ap += (recall - tpPrev / P) * precision;
    const f1 = (2 * precision * recall) / (precision + recall);
    if (f1 >= f1Max) {
      f1Max = f1;
      f1Threshold = t;
      tpAtF1 = tp;
      fpAtF1 = fp;
    }
  }
  return {
    positives: P,
    negatives: N,
    auroc: N === 0 ? null : area2 / (2 * P * N),
    averagePrecision: ap,
    f1Max,
    f1Threshold,
    tpAtF1,
    fpAtF1,
  };
}

/** Splits scores by label (nonzero = positive) into two ascending float64 arrays. */
export function splitSorted(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
): { positives: Float64Array; negatives: Float64Array } {
  if (scores.length !== labels.length)
    throw new RangeError(`${scores.length} scores but ${labels.length} labels`);
  let P = 0;
  for (let k = 0; k < labels.length; k++) if (labels[k] !== 0) P++;
  const positives = new Float64Array(P);
  const negatives = new Float64Array(scores.length - P);
  let p = 0;
  let n = 0;
  for (let k = 0; k < scores.length; k++) {
    const s = scores[k];
    if (Number.isNaN(s)) throw new RangeError(`score ${k} is NaN`);
    if (labels[k] !== 0) positives[p++] = s;
    else negatives[n++] = s;
  }
  return { positives: positives.sort(), negatives: negatives.sort() };
}

export interface CurvePoints {
  /** [m] distinct scores, decreasing. */
  thresholds: Float64Array;
  /** [m] positives with score >= threshold. */
  tp: Float64Array;
  /** [m] negatives with score >= threshold. */
  fp: Float64Array;
}

/** Counts at every distinct threshold, highest first (sklearn `_binary_clf_curve`); small inputs. */
export function curvePoints(positives: SortedScores, negatives: SortedScores): CurvePoints {
  const thresholds: number[] = [];
  const tps: number[] = [];
  const fps: number[] = [];
  let j = positives.length - 1;
  let i = negatives.length - 1;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? positives[j] : j < 0 ? negatives[i] : Math.max(positives[j], negatives[i]);
    for (; j >= 0 && positives[j] === t; j--) tp++;
    for (; i >= 0 && negatives[i] === t; i--) fp++;
    thresholds.push(t);
    tps.push(tp);
    fps.push(fp);
  }
  return {
    thresholds: Float64Array.from(thresholds),
    tp: Float64Array.from(tps),
    fp: Float64Array.from(fps),
  };
}
