/**
 * Area under the ROC curve with scikit-learn's `roc_auc_score` semantics: thresholds at the
 * distinct scores (ties collapse into one point), trapezoid rule from (0,0) to (1,1).
 */
import { curvePoints, splitSorted, summariseCurve, type SortedScores } from './curve.js';

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
    throw new RangeError(
      `AUROC is undefined with only one class (${positives.length} positives, ${negatives.length} negatives)`,
    );
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
  if (P === 0 || N === 0)
    throw new RangeError(`the ROC curve needs both classes (${P} positives, ${N} negatives)`);
  const { thresholds, tp, fp } = curvePoints(positives, negatives);
  const m = thresholds.length;
  const fpr = new Float64Array(m + 1);
  const tpr = new Float64Array(m + 1);
  const allThresholds = new Float64Array(m + 1);
  allThresholds[0] = Number.POSITIVE_INFINITY;
  for (let k = 0; k < m; k++) {
    fpr[k + 1] = fp[k] / N;
    tpr[k + 1] = tp[k] / P;
    allThresholds[k + 1] = thresholds[k];
  }
  return { fpr, tpr, thresholds: allThresholds };
}
