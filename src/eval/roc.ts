/**
 * Area under the ROC curve with scikit-learn's `roc_auc_score` semantics: thresholds at the
 * distinct scores (ties collapse into one point), trapezoid rule from (0,0) to (1,1).
 */
import { splitSorted, summariseCurve, type SortedScores } from './curve.js';

/**
 * AUROC of scores against binary labels (nonzero = positive).
 * @param scores [n] any finite numbers; constant scores give 0.5
 * @param labels [n]
 * @throws RangeError when only one class is present (sklearn raises ValueError too)
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const { positives, negatives } = splitSorted(scores, labels);
  return rocAucSorted(positives, negatives);
}

/** AUROC from class scores already sorted ascending (the streaming pixel path). */
export function rocAucSorted(positives: SortedScores, negatives: SortedScores): number {
  if (positives.length === 0 || negatives.length === 0) {
    throw new RangeError(`AUROC is undefined with only one class (${positives.length} positives, ${negatives.length} negatives)`);
  }
  return summariseCurve(positives, negatives).auroc as number;
}

export interface RocCurve {
  /** [m+1] false-positive rates, starting at 0. */
  fpr: Float64Array;
  /** [m+1] true-positive rates, starting at 0. */
  tpr: Float64Array;
  /** [m+1] decreasing; thresholds[0] = +Infinity as in sklearn >= 1.3. */
  thresholds: Float64Array;
}

/**
 * The full ROC curve at every distinct score (sklearn `roc_curve(drop_intermediate=False)`).
 * For small inputs (image level, plots); pixel-level code uses the streaming summary.
 */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): RocCurve {
  const { positives, negatives } = splitSorted(scores, labels);
  const P = positives.length;
  const N = negatives.length;
  if (P === 0 || N === 0) throw new RangeError(`the ROC curve needs both classes (${P} positives, ${N} negatives)`);
  const fpr = [0];
  const tpr = [0];
  const thresholds = [Number.POSITIVE_INFINITY];
  let i = N - 1;
  let j = P - 1;
  let tp = 0;
  let fp = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? positives[j] : j < 0 ? negatives[i] : Math.max(positives[j], negatives[i]);
    while (j >= 0 && positives[j] === t) (tp++, j--);
    while (i >= 0 && negatives[i] === t) (fp++, i--);
    fpr.push(fp / N);
    tpr.push(tp / P);
    thresholds.push(t);
  }
  return { fpr: Float64Array.from(fpr), tpr: Float64Array.from(tpr), thresholds: Float64Array.from(thresholds) };
}
