import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  evaluateProduct,
  meanOverProducts,
  METRICS,
  type ProductMetrics,
} from '../../src/eval/evaluate.js';
import { mapMaximum } from '../../src/eval/image.js';
import { collectPixels } from '../../src/eval/pixels.js';
import { fixture, near, unstack, type StoredArray } from './golden.js';

interface ProductCase {
  name: string;
  maps: StoredArray;
  masks: StoredArray;
  expected: Partial<Record<string, number | null>>;
}

const { cases } = fixture<{ cases: ProductCase[] }>('products.json');

function evaluateCase(c: ProductCase, pro: 'paper' | 'exact'): ProductMetrics {
  const maps = unstack(c.maps).images as Float32Array[];
  const { images: masks, h, w } = unstack(c.masks);
  return evaluateProduct(
    {
      product: c.name,
      pixels: collectPixels(maps, masks as Uint8Array[], h, w),
      imageScores: maps.map(mapMaximum),
      imageLabels: masks.map((m) => (m.some((v) => v !== 0) ? 1 : 0)),
    },
    { pro },
  );
}

for (const c of cases) {
  test(`every metric matches the Python reference: ${c.name}`, () => {
    const got = evaluateCase(c, 'paper');
    const exact = evaluateCase(c, 'exact');
    for (const name of METRICS) {
      const key = name === 'pro' ? 'proPaper' : name;
      const expected = c.expected[key];
      if (expected === undefined || expected === null) {
        if (name === 'pro' && expected === null) continue; // degenerate: see pro.test.ts
        assert.equal(got[name], null, `${name} should be null`);
        assert.ok(got.reasons[name], `${name} null needs a reason`);
      } else {
        near(got[name], expected, 1e-12, name);
      }
    }
    if (c.expected.pixelF1Threshold !== undefined)
      assert.equal(got.pixelF1Threshold, c.expected.pixelF1Threshold);
    if (c.expected.proExact !== undefined)
      near(exact.pro, c.expected.proExact as number, 1e-6, 'exact pro (MVTec AD evaluation code)');
  });
}

test('all-normal product: pixel metrics null with a reason; mean skips and counts it', () => {
  const normal = evaluateCase(
    cases.find((c) => c.name === 'all-normal product') as ProductCase,
    'paper',
  );
  assert.equal(normal.pixelAuroc, null);
  assert.equal(normal.reasons.pro, 'no anomalous pixels (all-normal product)');
  assert.equal(normal.imageAuroc, null);
  assert.match(normal.reasons.imageAuroc ?? '', /no anomalous images among 3/);
  const other = evaluateCase(cases[0], 'paper');
  const { mean, counted, skipped } = meanOverProducts([other, normal]);
  assert.equal(mean.pixelAuroc, other.pixelAuroc);
  assert.equal(counted.pixelAuroc, 1);
  assert.equal(skipped.pixelAuroc, 1);
  assert.deepEqual(meanOverProducts([normal]).mean.pro, null);
});

test('constant maps: AUROC 0.5, AP = positive rate, paper PRO 0 with a note', () => {
  const got = evaluateCase(cases.find((c) => c.name === 'constant maps') as ProductCase, 'paper');
  assert.equal(got.pixelAuroc, 0.5);
  near(got.pixelAp, got.anomalousPixels / got.pixels, 1e-15, 'ap');
  assert.equal(got.pro, 0);
  assert.match(got.notes.join(), /PRO: constant anomaly maps/);
});

test('a product where every pixel is anomalous has AP 1 and no AUROC/PRO', () => {
  const pixels = collectPixels([new Float32Array([0.2, 0.4])], [new Uint8Array([1, 1])], 1, 2);
  const got = evaluateProduct({ product: 'x', pixels, imageScores: [0.4], imageLabels: [1] });
  assert.equal(got.pixelAp, 1);
  assert.equal(got.pixelAuroc, null);
  assert.match(got.reasons.pro ?? '', /no normal pixels/);
  assert.throws(
    () => evaluateProduct({ product: 'x', pixels, imageScores: [], imageLabels: [] }),
    /1 images but 0 image scores/,
  );
});
