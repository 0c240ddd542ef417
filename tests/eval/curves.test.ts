import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summariseCurve } from '../../src/eval/curve.js';
import { averagePrecision, f1Max, precisionRecallCurve } from '../../src/eval/pr.js';
import { rocAuc, rocCurve } from '../../src/eval/roc.js';
import { decode, fixture, near, type StoredArray } from './golden.js';

interface Case {
  name: string;
  scores: StoredArray;
  labels: StoredArray;
  auroc?: number;
  ap?: number;
  f1?: { f1: number; threshold: number; precision: number; recall: number };
  roc?: { fpr: number[]; tpr: number[]; thresholds: (number | null)[] };
  pr?: { precision: number[]; recall: number[]; thresholds: number[] };
}

const TOL = 1e-12;
const { cases } = fixture<{ cases: Case[] }>('curves.json');

function closeArrays(
  actual: ArrayLike<number>,
  expected: readonly (number | null)[],
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let k = 0; k < expected.length; k++)
    near(actual[k], expected[k] ?? Number.POSITIVE_INFINITY, TOL, `${what}[${k}]`);
}

for (const c of cases) {
  test(`curves match scikit-learn: ${c.name}`, () => {
    const scores = decode(c.scores);
    const labels = decode(c.labels);
    if (c.auroc === undefined) assert.throws(() => rocAuc(scores, labels), /only one class/);
    else near(rocAuc(scores, labels), c.auroc, TOL, 'auroc');
    if (c.ap === undefined) assert.throws(() => averagePrecision(scores, labels), RangeError);
    else near(averagePrecision(scores, labels), c.ap, TOL, 'ap');
    if (c.f1) {
      const got = f1Max(scores, labels);
      near(got.f1, c.f1.f1, TOL, 'f1');
      assert.equal(got.threshold, c.f1.threshold, 'f1 threshold');
      near(got.precision, c.f1.precision, TOL, 'precision at f1');
      near(got.recall, c.f1.recall, TOL, 'recall at f1');
    }
    if (c.roc) {
      const roc = rocCurve(scores, labels);
      closeArrays(roc.fpr, c.roc.fpr, 'fpr');
      closeArrays(roc.tpr, c.roc.tpr, 'tpr');
      closeArrays(roc.thresholds, c.roc.thresholds, 'roc thresholds');
    }
    if (c.pr) {
      const pr = precisionRecallCurve(scores, labels);
      closeArrays(pr.precision, c.pr.precision, 'precision');
      closeArrays(pr.recall, c.pr.recall, 'recall');
      closeArrays(pr.thresholds, c.pr.thresholds, 'pr thresholds');
    }
  });
}

test('hand-computed: ties across classes count half in AUROC, AP is the step sum', () => {
  // thresholds 0.9: tp 1 fp 1; 0.5: tp 2 fp 2; 0.1: tp 2 fp 3 → ROC (0,0) (1/3,1/2) (2/3,1) (1,1)
  const scores = [0.1, 0.5, 0.5, 0.9, 0.9];
  const labels = [0, 1, 0, 1, 0];
  near(rocAuc(scores, labels), (1 / 3) * 0.25 + (1 / 3) * 0.75 + 1 / 3, 1e-15, 'auroc');
  near(averagePrecision(scores, labels), 0.5 * 0.5 + 0.5 * 0.5, 1e-15, 'ap');
  assert.deepEqual(f1Max(scores, labels), { f1: 2 / 3, threshold: 0.5, precision: 0.5, recall: 1 });
});

test('constant scores: AUROC 0.5 and AP equal to the positive rate', () => {
  const labels = [1, 0, 0, 1, 0, 0, 0, 0];
  const scores = new Float32Array(8).fill(0.3);
  assert.equal(rocAuc(scores, labels), 0.5);
  assert.equal(averagePrecision(scores, labels), 0.25);
});

test('one class: AUROC throws, AP is 1 without negatives, precision–recall throws without positives', () => {
  assert.throws(() => rocAuc([0.1, 0.2], [1, 1]), /only one class \(2 positives, 0 negatives\)/);
  assert.equal(averagePrecision([0.1, 0.2], [1, 1]), 1);
  assert.throws(() => averagePrecision([0.1, 0.2], [0, 0]), /without positive samples/);
  assert.throws(() => summariseCurve(new Float32Array(0), new Float32Array([1])), RangeError);
  assert.throws(() => rocAuc([Number.NaN, 1], [0, 1]), /score 0 is NaN/);
});
