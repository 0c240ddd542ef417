import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gaussianFilter, gaussianKernel, minMaxNormalise } from '../../src/eval/smoothing.js';
import { decode, fixture, type StoredArray } from './golden.js';

interface Smoothing {
  gaussian: { sigma: number; input: StoredArray; output: StoredArray }[];
  normalise: { input: StoredArray; output: StoredArray };
}

const golden = fixture<Smoothing>('smoothing.json');

for (const c of golden.gaussian) {
  test(`gaussianFilter equals scipy.ndimage.gaussian_filter: σ=${c.sigma}, ${c.input.shape.join('×')} ${c.input.dtype}`, () => {
    const [h, w] = c.input.shape;
    const input = decode(c.input) as Float32Array | Float64Array;
    const expected = decode(c.output);
    const got = gaussianFilter(input, h, w, c.sigma);
    assert.equal(got.constructor, input.constructor);
    let maxError = 0;
    for (let k = 0; k < got.length; k++)
      maxError = Math.max(maxError, Math.abs(got[k] - expected[k]));
    // float32: one rounding step apart at most; float64: summation-order noise
    assert.ok(maxError <= (c.input.dtype === 'f4' ? 1e-7 : 1e-15), `max |Δ| = ${maxError}`);
  });
}

test('gaussian kernel: radius int(4σ + 0.5), sums to 1, symmetric', () => {
  const k = gaussianKernel(8);
  assert.equal(k.length, 2 * 32 + 1);
  assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-15);
  assert.equal(k[0], k[64]);
  assert.equal(gaussianKernel(0.1).length, 1);
  assert.throws(() => gaussianKernel(0), /sigma must be > 0/);
});

test('a constant map is unchanged by reflect-mode smoothing', () => {
  const got = gaussianFilter(new Float64Array(12).fill(0.25), 3, 4, 2);
  for (const v of got) assert.ok(Math.abs(v - 0.25) < 1e-15);
});

test('minMaxNormalise equals the public float32 normalize over the stacked maps', () => {
  const [n, h, w] = golden.normalise.input.shape;
  const input = decode(golden.normalise.input) as Float32Array;
  const expected = decode(golden.normalise.output);
  const maps = Array.from({ length: n }, (_, i) => input.slice(i * h * w, (i + 1) * h * w));
  const got = minMaxNormalise(maps);
  assert.deepEqual(Array.from(got.flatMap((m) => Array.from(m))), Array.from(expected));
});

test('minMaxNormalise of constant maps is all zeros (numpy gives NaN)', () => {
  const got = minMaxNormalise([new Float32Array(4).fill(3), new Float32Array(2).fill(3)]);
  assert.deepEqual(
    got.map((m) => Array.from(m)),
    [
      [0, 0, 0, 0],
      [0, 0],
    ],
  );
});
