import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Group, TrialResult } from '../../src/reports/aggregate.js';
import {
  buildHeadToHead,
  COST_KEYS,
  formatP,
  headToHeadCsv,
  headToHeadMarkdown,
} from '../../src/reports/head-to-head.js';
import { wilcoxonSignedRank } from '../../src/reports/wilcoxon.js';

/** Two variants, 3 seeds, products p1..p4 of dataset D: B beats A by 2 points except on p4. */
function groups(): Group[] {
  const result = (variant: 'A' | 'B', seed: number): TrialResult => {
    const metrics: Record<string, number> = {};
    ['p1', 'p2', 'p3', 'p4'].forEach((p, i) => {
      const base = 0.6 + i * 0.05 + seed * 0.001;
      const gain = variant === 'B' ? (p === 'p4' ? -0.01 : 0.02) : 0;
      metrics[`D.${p}.pixel_auroc`] = base + gain;
      metrics[`D.${p}.image_auroc`] = 0.7; // equal everywhere: ties, zero differences
    });
    metrics['D.pixel_auroc'] = 0.7;
    metrics[COST_KEYS.parameters] = variant === 'A' ? 1000 : 2500;
    metrics[COST_KEYS.trained] = seed === 1 ? 1 : 0;
    metrics[COST_KEYS.trainSeconds] = seed === 1 ? (variant === 'A' ? 10 : 30) : 0;
    metrics[COST_KEYS.inferMs] = variant === 'A' ? 5 + seed : 8 + seed;
    return {
      trialId: `${variant}${seed}`,
      runId: `r${variant}${seed}`,
      seed,
      metrics,
      tags: { 'vcp.backend': 'wasm' },
    };
  };
  return (['A', 'B'] as const).map((v, index) => ({
    index,
    point: { variant: v },
    labels: { variant: v },
    results: [1, 2, 3].map((s) => result(v, s)),
  }));
}

const spec = {
  name: 'h2h',
  compare: ['A', 'B'] as [string, string],
  metrics: ['pixel_auroc', 'image_auroc'] as ('pixel_auroc' | 'image_auroc')[],
};

test('per-product winners, paired Wilcoxon over seeds × products, costs', () => {
  const model = buildHeadToHead(spec, ['variant'], groups(), ['D']);
  assert.deepEqual(model.seeds, [1, 2, 3]);
  const pixel = model.rows.filter((r) => r.metric === 'pixel_auroc');
  assert.deepEqual(
    pixel.map((r) => [r.product, r.winner]),
    [
      ['p1', 'B'],
      ['p2', 'B'],
      ['p3', 'B'],
      ['p4', 'A'],
    ],
  );
  assert.ok(Math.abs(pixel[0].margin! + 2) < 1e-9, 'A − B = −2 points');
  const t = model.tests[0];
  assert.equal(t.pairs, 12);
  assert.equal(t.seeds, 3);
  assert.equal(t.products, 4);
  assert.deepEqual(t.wins, [1, 3]);
  // The same numbers through the test directly: x = A, y = B, in percent.
  const xs: number[] = [];
  const ys: number[] = [];
  for (const p of ['p1', 'p2', 'p3', 'p4'])
    for (const s of [1, 2, 3]) {
      const g = groups();
      xs.push(g[0].results[s - 1].metrics[`D.${p}.pixel_auroc`] * 100);
      ys.push(g[1].results[s - 1].metrics[`D.${p}.pixel_auroc`] * 100);
    }
  assert.deepEqual(t.test, wilcoxonSignedRank(xs, ys));
  // Equal image AUROC everywhere: all ties; scipy's permutation branch gives p = 1 (n ≤ 13).
  const image = model.tests[1];
  assert.deepEqual([image.wins, image.ties], [[0, 0], 4]);
  assert.equal(image.test!.pValue, 1);
  assert.deepEqual(
    model.costs.map((c) => [c.label, c.parameters, c.trainSeconds?.mean, c.trainSeconds?.n]),
    [
      ['A', 1000, 10, 1],
      ['B', 2500, 30, 1],
    ],
  );
  assert.equal(model.costs[1].inferMs!.mean, 10);
  const md = headToHeadMarkdown(model);
  assert.match(md, /3 seeds \(1, 2, 3\)/);
  assert.match(
    md,
    /Wilcoxon signed-rank test, two-sided, paired over 12 \(seed, product\) pairs \(3 seeds × 4 products\)/,
  );
  assert.match(md, /\| D \| p4 \| A \+1\.00 \| tie \(70\.00\) \|/);
  assert.match(md, /\| B \| 2,500 \| 30\.0 ± – \| 10\.0 ± 1\.0 \|/);
  assert.match(md, /12 zero differences dropped\), exact sign-flip permutation/);
  assert.match(md, /mean A − B = −1\.25 points\./);
  assert.match(md, /mean A − B = 0\.00 points\./);
  assert.deepEqual(
    model.costs.map((c) => c.backends),
    [['wasm'], ['wasm']],
  );
  assert.match(md, /per test image at batch 1\. Backend: wasm\.$/m);
  assert.match(
    headToHeadMarkdown(model, { workers: 2 }),
    /Backend: wasm; 2 trials ran at once on the machine, so the times are comparable between the methods but not a benchmark\./,
  );
  assert.match(
    headToHeadCsv(model),
    /^dataset,product,metric,A mean,B mean,winner,margin\nD,p1,pixel_auroc,/,
  );
});

test('only seeds finished on both sides are compared; unknown labels are refused', () => {
  const g = groups();
  g[1].results.pop();
  const model = buildHeadToHead(spec, ['variant'], g, ['D']);
  assert.deepEqual(model.seeds, [1, 2]);
  assert.equal(model.tests[0].pairs, 8);
  assert.match(model.notes.join(), /only the 2 seeds finished for both sides/);
  assert.throws(
    () => buildHeadToHead({ ...spec, compare: ['A', 'C'] }, ['variant'], groups(), ['D']),
    /"C" names 0 sweep points \(they are: A; B\)/,
  );
});

test('p-values in words', () => {
  assert.equal(formatP(0.04321), '0.0432');
  assert.equal(formatP(0.000123), '1.23e-4');
  assert.equal(formatP(1e-15), '< 1e-12');
});
