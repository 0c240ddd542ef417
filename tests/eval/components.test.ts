import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelComponents } from '../../src/eval/components.js';
import { decode, fixture, type StoredArray } from './golden.js';

interface Case {
  name: string;
  mask: StoredArray;
  labels: StoredArray;
  count: number;
}

const { cases } = fixture<{ cases: Case[] }>('components.json');

for (const c of cases) {
  test(`8-connected labels equal skimage.measure.label: ${c.name}`, () => {
    const [h, w] = c.mask.shape;
    const got = labelComponents(decode(c.mask), h, w);
    assert.equal(got.count, c.count);
    assert.deepEqual(Array.from(got.labels), Array.from(decode(c.labels)));
    const areas = new Array<number>(c.count + 1).fill(0);
    for (const l of got.labels) if (l) areas[l]++;
    assert.deepEqual(Array.from(got.areas).slice(1), areas.slice(1));
  });
}

test('diagonal neighbours join, 4-gaps do not', () => {
  // 1 0 1
  // 0 1 0
  // 0 0 0 1
  const mask = new Uint8Array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
  const got = labelComponents(mask, 3, 4);
  assert.equal(got.count, 2);
  assert.deepEqual(Array.from(got.labels), [1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2]);
  assert.throws(() => labelComponents(mask, 3, 3), /mask has 12 values, expected 3×3/);
});
