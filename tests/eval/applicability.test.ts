import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyDatasetApplicability,
  IMAGE_METRICS,
  PIXEL_METRICS,
  undefinedOnDataset,
} from '../../src/eval/applicability.js';
import { evaluateProduct, METRICS, type ProductMetrics } from '../../src/eval/evaluate.js';
import { collectPixels } from '../../src/eval/pixels.js';

/** One product of 2×2 maps: `labels` per image, `masks` per image (null: all-zero mask). */
function product(
  name: string,
  labels: number[],
  masks: (number[] | null)[],
  scores: number[],
): ProductMetrics {
  const maps = scores.map((s, i) => Float32Array.from([s, s / 2, i / 10, 0.05]));
  const pixels = collectPixels(
    maps,
    masks.map((m) => Uint8Array.from(m ?? [0, 0, 0, 0])),
    2,
    2,
  );
  return evaluateProduct({ product: name, pixels, imageScores: scores, imageLabels: labels });
}

const allAnomalous = [
  product(
    'a',
    [1, 1, 1],
    [
      [1, 0, 0, 0],
      [1, 1, 0, 0],
      [0, 0, 1, 0],
    ],
    [0.9, 0.4, 0.7],
  ),
  product(
    'b',
    [1, 1],
    [
      [0, 1, 0, 0],
      [1, 0, 0, 1],
    ],
    [0.2, 0.8],
  ),
];
const imageOnly = [
  product('a', [0, 1, 1], [null, null, null], [0.1, 0.9, 0.4]),
  product('b', [1, 0], [null, null], [0.6, 0.3]),
];
const both = [product('a', [0, 1, 1], [null, [1, 0, 0, 0], [0, 1, 1, 0]], [0.1, 0.9, 0.4])];

test('all-anomalous set: image metrics undefined, never NaN; pixel metrics kept', () => {
  // Per product, AP and F1-max are 1 whatever the scores (sklearn) and AUROC is null.
  assert.equal(allAnomalous[0].imageAp, 1);
  const [skip] = undefinedOnDataset(allAnomalous);
  assert.deepEqual(skip.metrics, [...IMAGE_METRICS]);
  assert.match(skip.reason, /every image is anomalous \(5 of 5\)/);
  const applied = applyDatasetApplicability(allAnomalous);
  for (const p of applied.products) {
    for (const m of IMAGE_METRICS) {
      assert.equal(p[m], null);
      assert.match(p.reasons[m]!, /not defined on this dataset: every image is anomalous/);
    }
    assert.equal(typeof p.pixelAp, 'number');
  }
  for (const m of METRICS) assert.ok(!Number.isNaN(applied.mean.mean[m]), m);
  assert.equal(applied.mean.mean.imageAp, null);
  assert.equal(applied.mean.skipped.imageAp, 2);
  assert.equal(
    applied.mean.mean.pixelAp,
    (allAnomalous[0].pixelAp! + allAnomalous[1].pixelAp!) / 2,
  );
  assert.equal(allAnomalous[0].imageAp, 1, 'inputs unchanged');
});

test('image-only set: pixel metrics undefined with the reason; image metrics kept', () => {
  const [skip] = undefinedOnDataset(imageOnly);
  assert.deepEqual(skip.metrics, [...PIXEL_METRICS]);
  assert.match(skip.reason, /image-level labels only: 3 anomalous images/);
  const applied = applyDatasetApplicability(imageOnly);
  for (const m of PIXEL_METRICS) assert.equal(applied.mean.mean[m], null);
  assert.equal(applied.products[0].pixelF1Threshold, null);
  assert.equal(applied.mean.mean.imageAuroc, 1); // both products separate their images
});

test('a set with normal images and masks loses nothing', () => {
  assert.deepEqual(undefinedOnDataset(both), []);
  const applied = applyDatasetApplicability(both);
  assert.deepEqual(applied.products, both);
});
