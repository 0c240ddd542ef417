/**
 * The Wilcoxon signed-rank test for paired samples, exactly as scipy.stats.wilcoxon(x, y) with
 * its defaults computes it (zero_method 'wilcox': zero differences are dropped before ranking;
 * no continuity correction; two-sided; method 'auto'):
 * - n > 50 pairs: normal approximation;
 * - otherwise, no ties and no zero differences: the exact null distribution of R⁺;
 * - otherwise n ≤ 13: the exact sign-flip permutation test (all 2ⁿ sign patterns);
 * - otherwise: normal approximation.
 * The normal approximation uses the tie-corrected variance. Tested against scipy by
 * python/golden/make_wilcoxon_golden.py.
 */

export type WilcoxonMethod = 'exact' | 'permutation' | 'normal approximation';

export interface WilcoxonResult {
  /** min(R⁺, R⁻): the sums of the ranks of |d| over positive and negative differences d = x − y. */
  statistic: number;
  rPlus: number;
  rMinus: number;
  /** Two-sided p-value; null when every difference is zero and n > 13 (scipy: NaN). */
  pValue: number | null;
  method: WilcoxonMethod;
  /** Pairs. */
  n: number;
  /** Pairs with a zero difference (dropped from the ranks). */
  zeros: number;
}

export function wilcoxonSignedRank(x: readonly number[], y: readonly number[]): WilcoxonResult {
  if (x.length !== y.length)
    throw new RangeError(`wilcoxon: ${x.length} and ${y.length} values are not pairs`);
  const n = x.length;
  if (n === 0) throw new RangeError('wilcoxon: no pairs');
  const d = x.map((v, i) => v - y[i]);
  if (d.some((v) => !Number.isFinite(v))) throw new RangeError('wilcoxon: non-finite values');
  const { ranks, tieGroups } = averageRanks(d.map(Math.abs), (i) => d[i] !== 0);
  let rPlus = 0;
  let rMinus = 0;
  d.forEach((v, i) => {
    if (v > 0) rPlus += ranks[i];
    else if (v < 0) rMinus += ranks[i];
  });
  const zeros = d.filter((v) => v === 0).length;
  const hasTies = tieGroups.some((t) => t > 1);
  const result = (pValue: number | null, method: WilcoxonMethod): WilcoxonResult => ({
    statistic: Math.min(rPlus, rMinus),
    rPlus,
    rMinus,
    pValue,
    method,
    n,
    zeros,
  });
  if (n <= 50 && !hasTies && zeros === 0) return result(exactPValue(rPlus, n), 'exact');
  if (n <= 50 && n <= 13) return result(permutationPValue(d, ranks, rPlus), 'permutation');
  const count = n - zeros;
  const mean = (count * (count + 1)) / 4;
  const tieCorrection = tieGroups.reduce((a, t) => a + t ** 3 - t, 0);
  const se = Math.sqrt((count * (count + 1) * (2 * count + 1) - tieCorrection / 2) / 24);
  if (!(se > 0)) return result(null, 'normal approximation');
  const z = (rPlus - mean) / se;
  return result(2 * normalCdf(-Math.abs(z)), 'normal approximation');
}

/**
 * Average ranks (1-based) of the values whose index passes `include`, and the sizes of their
 * groups of equal values; excluded entries get rank 0.
 */
function averageRanks(
  values: readonly number[],
  include: (i: number) => boolean,
): { ranks: number[]; tieGroups: number[] } {
  const order = values
    .map((_, i) => i)
    .filter(include)
    .sort((a, b) => values[a] - values[b]);
  const ranks = new Array<number>(values.length).fill(0);
  const tieGroups: number[] = [];
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 … end
    for (let k = start; k < end; k++) ranks[order[k]] = rank;
    tieGroups.push(end - start);
    start = end;
  }
  return { ranks, tieGroups };
}

/** P(R⁺ = r), r = 0 … n(n+1)/2, under the null (each sign ±, independent): scipy's recursion. */
function nullDistribution(n: number): Float64Array {
  let c = new Float64Array([1]);
  for (let k = 1; k <= n; k++) {
    const prev = c;
    c = new Float64Array((k * (k + 1)) / 2 + 1);
    const m = prev.length;
    for (let i = 0; i < m; i++) c[i] = prev[i] * 0.5;
    for (let i = 0; i < m; i++) c[c.length - m + i] += prev[i] * 0.5;
  }
  return c;
}

function sum(values: Float64Array, from: number, to: number): number {
  let s = 0;
  for (let i = Math.max(from, 0); i < Math.min(to, values.length); i++) s += values[i];
  return s;
}

/** Two-sided p of the exact test: 2·min(P(R⁺ ≥ ⌊r⌋), P(R⁺ ≤ ⌈r⌉)), at most 1. */
function exactPValue(rPlus: number, n: number): number {
  const pmf = nullDistribution(n);
  const mean = (n * (n + 1)) / 4;
  // scipy sums the shorter tail and takes the complement for the other half.
  const cdf = (k: number) => (k <= mean ? sum(pmf, 0, k + 1) : 1 - sum(pmf, k + 1, pmf.length));
  const sf = (k: number) => (k <= mean ? sum(pmf, k, pmf.length) : 1 - sum(pmf, 0, k));
  return Math.min(Math.max(2 * Math.min(sf(Math.floor(rPlus)), cdf(Math.ceil(rPlus))), 0), 1);
}

/**
 * Two-sided p of the exact sign-flip permutation test (scipy.stats.permutation_test with all
 * 2ⁿ patterns): the share of patterns whose R⁺ is ≤ (resp. ≥) the observed one, with scipy's
 * relative tolerance of 100 ε, doubled, at most 1.
 */
function permutationPValue(
  d: readonly number[],
  ranks: readonly number[],
  observed: number,
): number {
  const n = d.length;
  const total = 2 ** n;
  const gamma = Math.abs(100 * Number.EPSILON * observed);
  let less = 0;
  let greater = 0;
  for (let mask = 0; mask < total; mask++) {
    let r = 0;
    for (let i = 0; i < n; i++) {
      const flipped = (mask >> i) & 1 ? -d[i] : d[i];
      if (flipped > 0) r += ranks[i];
    }
    if (r <= observed + gamma) less++;
    if (r >= observed - gamma) greater++;
  }
  return Math.min(Math.max(2 * Math.min(less / total, greater / total), 0), 1);
}

/**
 * Standard normal CDF Φ(z) to ~1e-15 relative, via erfc: the series
 * erf(x) = 2/√π · e^(−x²) · Σ (2x²)ᵏ x / (1·3·…·(2k+1)) (positive terms) for x < 2, Lentz's
 * continued fraction for erfc(x) beyond.
 */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const x = Math.abs(z) / Math.SQRT2;
  const tail = 0.5 * erfc(x); // P(Z > |z|)
  return z < 0 ? tail : 1 - tail;
}

function erfc(x: number): number {
  if (x < 2) {
    let term = x;
    let total = x;
    for (let k = 1; k < 200 && term > total * 1e-17; k++) {
      term *= (2 * x * x) / (2 * k + 1);
      total += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * total;
  }
  // erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), modified Lentz.
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let dd = 0;
  for (let k = 1; k < 500; k++) {
    const a = k / 2;
    dd = x + a * dd;
    dd = 1 / (Math.abs(dd) < tiny ? tiny : dd);
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}
