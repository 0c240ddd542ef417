/**
 * Per-region overlap (PRO) scores of a product's pixels.
 *
 * Paper variant (default, `proPaper`): the public VCP-CLIP / APRIL-GAN `cal_pro_score`. The
 * thresholds are `np.arange(min, max, (max - min) / 200)` computed exactly as numpy does for
 * float32 maps (step and count in float32, values in float64: 200 or 201 thresholds); at each,
 * a pixel is detected when score > threshold; PRO = mean over every 8-connected ground-truth
 * region of every image of (detected pixels / region area); FPR = detected normal pixels /
 * normal pixels. Thresholds with FPR < 0.3 are kept, their FPRs rescaled to [0, 1] by their own
 * min and max, and the area under PRO(FPR) taken with the trapezoid rule (sklearn `auc`).
 *
 * Exact variant (`auproExact`): the PRO(FPR) curve at every distinct score (detected: score >=
 * threshold, ties move together), integrated from FPR 0 to 0.3 with linear interpolation at
 * 0.3 and divided by 0.3 — the MVTec AD reference `calculate_au_pro`, which anomalib's AUPRO
 * approximates by resampling.
 */
import type { ProductPixels } from './pixels.js';

export interface ProResult {
  value: number;
  /** Why the value is a convention rather than an area (degenerate inputs), if it is. */
  note?: string;
}

function requireRegionsAndNormals(pixels: ProductPixels): void {
  if (pixels.regionAreas.length === 0)
    throw new RangeError('PRO is undefined without anomalous regions');
  if (pixels.negatives.length === 0)
    throw new RangeError('PRO is undefined without normal pixels (FPR is 0/0)');
}

/**
 * The thresholds of `np.arange(lo, hi, (hi - lo) / steps)` for float32 lo < hi, as numpy 2
 * computes them from float32 scalars: step and length in float32, second value float32, the
 * rest start + i·(second − start) in float64.
 */
export function paperThresholds(lo: number, hi: number, steps = 200): Float64Array {
  const f = Math.fround;
  const delta = f(f(hi - lo) / steps);
  const length = Math.ceil(f(f(hi - lo) / delta));
  const out = new Float64Array(length);
  out[0] = lo;
  if (length > 1) out[1] = f(lo + delta);
  const step = out[1] - out[0];
  for (let i = 2; i < length; i++) out[i] = lo + i * step;
  return out;
}

/** Number of entries of an ascending array that are <= t. */
function countAtMost(sorted: Float32Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * PRO as the public implementation computes it (see the module comment).
 * @param pixels from `PixelAccumulator.finish()`; needs at least one region and one normal pixel
 * @returns 0 with a note for constant maps (numpy's arange fails there) and when fewer than
 *   two thresholds have FPR < 0.3 or their FPRs are all equal (the public code raises or
 *   returns NaN from the 0/0 rescaling): an empty FPR range has no area.
 */
export function proPaper(
  pixels: ProductPixels,
  options: { steps?: number; fprLimit?: number } = {},
): ProResult {
  requireRegionsAndNormals(pixels);
  const steps = options.steps ?? 200;
  const limit = options.fprLimit ?? 0.3;
  if (!(pixels.max > pixels.min))
    return { value: 0, note: 'constant anomaly maps: no thresholds between min and max' };
  const thresholds = paperThresholds(pixels.min, pixels.max, steps);
  const { positives, positiveRegion, negatives, regionAreas } = pixels;
  const R = regionAreas.length;
  const N = negatives.length;
  const missed = new Uint32Array(R);
  const fprs: number[] = [];
  const pros: number[] = [];
  let p = 0;
  for (const t of thresholds) {
    while (p < positives.length && positives[p] <= t) missed[positiveRegion[p++]]++;
    let sum = 0;
    for (let r = 0; r < R; r++) sum += (regionAreas[r] - missed[r]) / regionAreas[r];
    const fpr = (N - countAtMost(negatives, t)) / N;
    if (fpr < limit) {
      fprs.push(fpr);
      pros.push(sum / R);
    }
  }
  if (fprs.length < 2)
    return {
      value: 0,
      note: `only ${fprs.length} of ${thresholds.length} thresholds have FPR < ${limit}`,
    };
  const fMin = Math.min(...fprs);
  const fMax = Math.max(...fprs);
  if (!(fMax > fMin))
    return {
      value: 0,
      note: `every threshold with FPR < ${limit} has FPR ${fMin}: the rescaled FPR range is empty`,
    };
  const x = fprs.map((v) => (v - fMin) / (fMax - fMin));
  return { value: trapezoidAuc(x, pros) };
}

/** sklearn `auc`: trapezoid area, sign-corrected when x is non-increasing. */
function trapezoidAuc(x: readonly number[], y: readonly number[]): number {
  let decreasing = false;
  let increasing = false;
  for (let i = 1; i < x.length; i++) {
    if (x[i] < x[i - 1]) decreasing = true;
    if (x[i] > x[i - 1]) increasing = true;
  }
  if (decreasing && increasing) throw new RangeError('auc: x is neither increasing nor decreasing');
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return decreasing ? -area : area;
}

/**
 * Exact AUPRO up to `fprLimit` (default 0.3), normalised by the limit (see the module comment).
 * @param pixels needs at least one region and one normal pixel
 * @returns for constant maps the curve is the segment (0,0)–(1,1): fprLimit / 2
 */
export function auproExact(pixels: ProductPixels, options: { fprLimit?: number } = {}): ProResult {
  requireRegionsAndNormals(pixels);
  const limit = options.fprLimit ?? 0.3;
  const { positives, positiveRegion, negatives, regionAreas } = pixels;
  const R = regionAreas.length;
  const N = negatives.length;
  const weight = Float64Array.from(regionAreas, (a) => 1 / a);
  let i = N - 1;
  let j = positives.length - 1;
  let fp = 0;
  let overlap = 0; // Σ_r detected_r / area_r
  let f0 = 0;
  let p0 = 0;
  let area = 0;
  while (i >= 0 || j >= 0) {
    const t = i < 0 ? positives[j] : j < 0 ? negatives[i] : Math.max(positives[j], negatives[i]);
    while (j >= 0 && positives[j] === t) overlap += weight[positiveRegion[j--]];
    while (i >= 0 && negatives[i] === t) {
      fp++;
      i--;
    }
    const f = fp / N;
    const p = overlap / R;
    if (f > limit) {
      const pAtLimit = p0 + ((p - p0) * (limit - f0)) / (f - f0);
      area += ((limit - f0) * (p0 + pAtLimit)) / 2;
      break;
    }
    area += ((f - f0) * (p + p0)) / 2;
    f0 = f;
    p0 = p;
  }
  return { value: area / limit };
}
