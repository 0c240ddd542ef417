/** Grouping and aggregation, t-SNE, LaTeX escaping, axis labels: pure functions, no server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  groupTrials,
  summarize,
  varyingAxes,
  type TrialResult,
} from '../../src/reports/aggregate.js';
import { formatAxisValue } from '../../src/reports/labels.js';
import { latexEscape } from '../../src/reports/render-table.js';
import { jointProbabilities, squaredDistances, tsne } from '../../src/reports/tsne.js';
import { normalizeIds } from '../../src/reports/vega.js';
import type { Trial } from '../../src/runner/spec-types.js';

test('summarize: mean, sample std (ddof = 1), n; std null for one value; none → null', () => {
  assert.deepEqual(summarize([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(5 / 3), n: 4 });
  assert.deepEqual(summarize([7]), { mean: 7, std: null, n: 1 });
  assert.equal(summarize([]), null);
  assert.deepEqual(summarize([2, Number.NaN, 4]), { mean: 3, std: Math.SQRT2, n: 2 });
});

test('groupTrials: trials differing only by seed share a group, in expansion order, results by seed', () => {
  const trial = (index: number, heads: number, seed: number): Trial =>
    ({ id: `t${index}`, index, seed, point: { heads, alpha: 0.5 } }) as unknown as Trial;
  const trials = [trial(0, 2, 1), trial(1, 2, 2), trial(2, 1, 1), trial(3, 1, 2)];
  const result = (id: string, seed: number, v: number): TrialResult => ({
    trialId: id,
    runId: `r-${id}`,
    seed,
    metrics: { 'd.pro': v },
  });
  const results = new Map([
    ['t1', result('t1', 2, 0.4)],
    ['t0', result('t0', 1, 0.2)],
    ['t3', result('t3', 2, 0.9)],
  ]);
  const groups = groupTrials({ axes: ['heads', 'alpha'], trials }, results);
  assert.deepEqual(
    groups.map((g) => g.labels),
    [
      { heads: '2', alpha: '0.5' },
      { heads: '1', alpha: '0.5' },
    ],
  );
  assert.deepEqual(
    groups[0].results.map((r) => r.seed),
    [1, 2],
  );
  assert.deepEqual(
    groups[1].results.map((r) => r.trialId),
    ['t3'],
  );
  assert.deepEqual(varyingAxes(['heads', 'alpha'], groups), ['heads']);
});

test('formatAxisValue: the labels the paper uses', () => {
  assert.equal(formatAxisValue([6, 12, 18]), '6,12,18');
  assert.equal(formatAxisValue([['good', 'damaged']]), 'good/damaged');
  assert.equal(formatAxisValue(['a photo of a {state} {cls}']), 'a photo of a {state} {cls}');
  assert.equal(
    formatAxisValue([{ normal: 'good {cls}', abnormal: 'bad {cls}' }]),
    'good {cls} / bad {cls}',
  );
  assert.equal(formatAxisValue(0.75), '0.75');
  assert.equal(formatAxisValue(false), 'false');
});

test('latexEscape: specials and the report symbols', () => {
  assert.equal(
    latexEscape('a_b & 50% #1 {cls} $x ~ ^'),
    'a\\_b \\& 50\\% \\#1 \\{cls\\} \\$x \\textasciitilde{} \\textasciicircum{}',
  );
  assert.equal(latexEscape('C:\\dir'), 'C:\\textbackslash{}dir');
  assert.equal(latexEscape('α ± Δ –'), '$\\alpha$ $\\pm$ $\\Delta$ --');
});

test('normalizeIds: renumbers vega ids and their references in order of appearance', () => {
  const svg =
    '<linearGradient id="gradient_7"/><clipPath id="clip12"/><rect fill="url(#gradient_7)" clip-path="url(#clip12)"/>';
  assert.equal(
    normalizeIds(svg),
    '<linearGradient id="gradient_1"/><clipPath id="clip2"/><rect fill="url(#gradient_1)" clip-path="url(#clip2)"/>',
  );
});

test('perplexity calibration: P is a symmetric joint distribution', () => {
  const n = 30;
  const x = Float64Array.from(
    { length: n * 3 },
    (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1,
  );
  const dist = squaredDistances(x, n, 3);
  const p = jointProbabilities(dist, n, 5);
  let total = 0;
  for (const v of p) total += v;
  assert.ok(Math.abs(total - 1) < 1e-6, `P sums to ${total}`);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.equal(p[i * n + j], p[j * n + i]);
});

/** Two Gaussian blobs 20 apart in 10-D (deterministic pseudo-noise). */
function blobs(perBlob: number, d: number): Float64Array {
  let s = 12345;
  const noise = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 2;
  return Float64Array.from(
    { length: 2 * perBlob * d },
    (_, i) => (Math.floor(i / d) < perBlob ? 0 : 20) + noise(),
  );
}

test('t-SNE separates two well-separated clusters and is deterministic by seed', () => {
  const [per, d] = [40, 10];
  const x = blobs(per, d);
  const y = tsne(x, 2 * per, d, { seed: 3, iterations: 400 });
  const centroid = (from: number) =>
    [0, 1].map(
      (k) =>
        Array.from({ length: per }, (_, i) => y[2 * (from + i) + k]).reduce((a, b) => a + b) / per,
    );
  const [ca, cb] = [centroid(0), centroid(per)];
  const spread = (from: number, c: number[]) =>
    Math.max(
      ...Array.from({ length: per }, (_, i) =>
        Math.hypot(y[2 * (from + i)] - c[0], y[2 * (from + i) + 1] - c[1]),
      ),
    );
  const between = Math.hypot(ca[0] - cb[0], ca[1] - cb[1]);
  assert.ok(
    between > 2 * Math.max(spread(0, ca), spread(per, cb)),
    `clusters overlap: centroid distance ${between}`,
  );
  // every point is nearer its own centroid
  for (let i = 0; i < 2 * per; i++) {
    const [own, other] = i < per ? [ca, cb] : [cb, ca];
    assert.ok(
      Math.hypot(y[2 * i] - own[0], y[2 * i + 1] - own[1]) <
        Math.hypot(y[2 * i] - other[0], y[2 * i + 1] - other[1]),
    );
  }
  assert.deepEqual(tsne(x, 2 * per, d, { seed: 3, iterations: 400 }), y);
  assert.notDeepEqual(tsne(x, 2 * per, d, { seed: 4, iterations: 400 }), y);
});
