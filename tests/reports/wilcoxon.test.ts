/** src/reports/wilcoxon.ts against scipy.stats.wilcoxon / scipy.special.ndtr (python/golden/make_wilcoxon_golden.py). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { normalCdf, wilcoxonSignedRank } from '../../src/reports/wilcoxon.js';

interface Golden {
  cases: { name: string; x: number[]; y: number[]; statistic: number; pvalue: number | null }[];
  ndtr: { z: number; ndtr: number }[];
}
const golden = JSON.parse(
  readFileSync('tests/fixtures/reports/wilcoxon-golden.json', 'utf8'),
) as Golden;

function closeRelative(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected);
  assert.ok(
    err <= rel * Math.abs(expected) + 1e-300,
    `${what}: ${actual} vs ${expected} (|Δ| ${err})`,
  );
}

test('statistic and two-sided p-value equal scipy.stats.wilcoxon on every branch of its method "auto"', () => {
  const methods = new Set<string>();
  for (const c of golden.cases) {
    const r = wilcoxonSignedRank(c.x, c.y);
    methods.add(r.method);
    assert.equal(r.statistic, c.statistic, `${c.name}: statistic`);
    if (c.pvalue === null) assert.equal(r.pValue, null, `${c.name}: p undefined`);
    else closeRelative(r.pValue!, c.pvalue, 1e-12, `${c.name}: p`);
  }
  assert.deepEqual([...methods].sort(), ['exact', 'normal approximation', 'permutation']);
});

test('the branch taken follows scipy: exact, permutation (ties/zeros, n ≤ 13), normal approximation', () => {
  const pick = (prefix: string) => golden.cases.filter((c) => c.name.startsWith(prefix));
  for (const c of pick('exact')) assert.equal(wilcoxonSignedRank(c.x, c.y).method, 'exact', c.name);
  for (const c of pick('permutation'))
    assert.equal(wilcoxonSignedRank(c.x, c.y).method, 'permutation', c.name);
  for (const c of pick('asymptotic'))
    assert.equal(wilcoxonSignedRank(c.x, c.y).method, 'normal approximation', c.name);
});

test('normal CDF equals scipy.special.ndtr to 1e-13 relative, tails included', () => {
  for (const { z, ndtr } of golden.ndtr) closeRelative(normalCdf(z), ndtr, 1e-13, `Φ(${z})`);
});

test('bad input is refused', () => {
  assert.throws(() => wilcoxonSignedRank([1, 2], [1]), /not pairs/);
  assert.throws(() => wilcoxonSignedRank([], []), /no pairs/);
  assert.throws(() => wilcoxonSignedRank([NaN], [1]), /non-finite/);
});
