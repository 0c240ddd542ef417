import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collectPixels } from '../../src/eval/pixels.js';
import { auproExact, paperThresholds, proPaper } from '../../src/eval/pro.js';
import { decode, fixture, near, unstack, type StoredArray } from './golden.js';

interface ProductCase {
  name: string;
  maps: StoredArray;
  masks: StoredArray;
  proPaperError?: string;
  expected: { proPaper?: number | null; proExact?: number };
}

const { cases, reference } = fixture<{
  cases: ProductCase[];
  reference: { proExact: string; sha256: Record<string, string> };
}>('products.json');
const { arange } = fixture<{ arange: { lo: number; hi: number; thresholds: StoredArray }[] }>(
  'smoothing.json',
);

test('the exact-AUPRO goldens come from the MVTec AD evaluation code', () => {
  assert.match(reference.proExact, /^MVTec AD evaluation code/);
  assert.deepEqual(Object.keys(reference.sha256).sort(), ['generic_util.py', 'pro_curve_util.py']);
  assert.ok(cases.filter((c) => c.expected.proExact !== undefined).length >= 6);
});

test('paper thresholds equal np.arange on float32 min/max (200 or 201 of them)', () => {
  let seen201 = false;
  for (const c of arange) {
    const expected = decode(c.thresholds);
    const got = paperThresholds(c.lo, c.hi);
    seen201 ||= got.length === 201;
    assert.equal(got.length, expected.length, `arange(${c.lo}, ${c.hi})`);
    assert.deepEqual(Array.from(got), Array.from(expected));
  }
  assert.ok(seen201);
});

// proPaper: against metrics_reference.py's port of the public cal_pro_score. proExact: against
// the MVTec AD evaluation code itself (compute_pro + trapezoid, run by make_metrics_golden.py),
// which keeps its FPR curve in float32: hence 1e-6, not 1e-12.
for (const c of cases) {
  test(`PRO matches the public cal_pro_score, exact AUPRO the MVTec AD evaluation code: ${c.name}`, () => {
    const maps = unstack(c.maps);
    const masks = unstack(c.masks);
    const pixels = collectPixels(
      maps.images as Float32Array[],
      masks.images as Uint8Array[],
      maps.h,
      maps.w,
    );
    if (c.expected.proExact === undefined) {
      assert.throws(() => proPaper(pixels), /without anomalous regions/);
      assert.throws(() => auproExact(pixels), /without anomalous regions/);
      return;
    }
    near(auproExact(pixels).value, c.expected.proExact, 1e-6, 'exact AUPRO vs MVTec AD evaluation');
    const paper = proPaper(pixels);
    if (c.expected.proPaper === null || c.expected.proPaper === undefined) {
      // the public code raises (constant maps) or returns NaN (empty FPR range): we define 0
      assert.equal(paper.value, 0);
      assert.ok(paper.note, 'degenerate PRO carries a note');
    } else {
      near(paper.value, c.expected.proPaper, 1e-12, 'paper PRO');
      assert.equal(paper.note, undefined);
    }
  });
}

test('hand-computed exact AUPRO: constant maps give fprLimit/2, a perfect map gives 1', () => {
  const mask = new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0, 1]);
  const constant = collectPixels([new Float32Array(9).fill(0.4)], [mask], 3, 3);
  near(auproExact(constant).value, 0.15, 1e-12, 'constant');
  assert.deepEqual(proPaper(constant), {
    value: 0,
    note: 'constant anomaly maps: no thresholds between min and max',
  });
  const perfect = collectPixels([Float32Array.from(mask, (m, k) => m + k / 100)], [mask], 3, 3);
  near(auproExact(perfect).value, 1, 1e-12, 'perfect');
});

test('PRO needs normal pixels', () => {
  const pixels = collectPixels([new Float32Array([0.1, 0.2])], [new Uint8Array([1, 1])], 1, 2);
  assert.throws(() => proPaper(pixels), /without normal pixels/);
});
