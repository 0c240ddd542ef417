// The positional-grid resize against torch.nn.functional.interpolate(align_corners=False)
// in its three modes (goldens from python/golden/make_resize_golden.py, and the older bicubic /
// bilinear cases of python/golden/make_clip_fixture.py), and the class token kept as is.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  interpolationMatrix,
  resizeGrid,
  resizePosEmbed,
} from '../../../src/model/clip/pos-embed.js';
import { readSafetensors } from '../../../src/io/safetensors.js';

const DIR = 'tests/fixtures/clip';
const meta = JSON.parse(readFileSync(`${DIR}/golden.json`, 'utf8')) as {
  resize_cases: { name: string; channels: number; from: number; to: number }[];
};
const { tensors: golden } = await readSafetensors(`${DIR}/golden.safetensors`);
const resizeMeta = JSON.parse(readFileSync(`${DIR}/resize-golden.json`, 'utf8')) as {
  cases: { name: string; channels: number; from: [number, number]; to: [number, number] }[];
};
const { tensors: resizeGolden } = await readSafetensors(`${DIR}/resize-golden.safetensors`);
const MODES = ['bicubic_antialias', 'bicubic', 'bilinear'] as const;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

for (const { name, channels, from, to } of meta.resize_cases) {
  for (const mode of ['bicubic', 'bilinear'] as const) {
    test(`${mode} ${from}×${from} → ${to}×${to} equals torch (${name})`, () => {
      const input = golden.get(`resize.${name}.input`)!.data as Float32Array;
      const expected = golden.get(`resize.${name}.${mode}`)!.data;
      const err = maxAbsDiff(resizeGrid(input, from, to, channels, mode), expected);
      assert.ok(err <= 1e-5, `max abs error ${err.toExponential(2)}`);
    });
  }
}

for (const { name, channels, from, to } of resizeMeta.cases) {
  for (const mode of MODES) {
    test(`${mode} ${from.join('×')} → ${to.join('×')} equals torch F.interpolate (${name})`, () => {
      const input = resizeGolden.get(`resize.${name}.input`)!.data as Float32Array;
      const expected = resizeGolden.get(`resize.${name}.${mode}`)!.data;
      const err = maxAbsDiff(resizeGrid(input, from, to, channels, mode), expected);
      assert.ok(err <= 1e-5, `max abs error ${err.toExponential(2)}`);
    });
  }
}

test('antialiased bicubic is not plain bicubic, even when upsampling 24 → 37', () => {
  const input = resizeGolden.get('resize.up24to37.input')!.data as Float32Array;
  const plain = resizeGrid(input, 24, 37, 2, 'bicubic');
  const antialiased = resizeGrid(input, 24, 37, 2, 'bicubic_antialias');
  assert.ok(maxAbsDiff(plain, antialiased) > 1e-2);
});

test('interpolation rows sum to one and the identity size is the identity', () => {
  for (const mode of MODES) {
    for (const [n, m] of [
      [24, 37],
      [7, 5],
      [14, 20],
    ]) {
      const r = interpolationMatrix(n, m, mode);
      for (let i = 0; i < m; i++) {
        const sum = r.subarray(i * n, (i + 1) * n).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-12, `${mode} ${n}→${m} row ${i} sums to ${sum}`);
      }
    }
    const id = interpolationMatrix(5, 5, mode);
    for (let i = 0; i < 5; i++)
      for (let j = 0; j < 5; j++) assert.equal(id[i * 5 + j], i === j ? 1 : 0);
  }
});

test('resizePosEmbed keeps the class token and resizes the grid', () => {
  const width = 3;
  const positions = Float32Array.from({ length: (1 + 16) * width }, (_, i) => Math.sin(i));
  const out = resizePosEmbed(positions, width, 4, 6, 'bicubic');
  assert.equal(out.length, (1 + 36) * width);
  assert.deepEqual(Array.from(out.subarray(0, width)), Array.from(positions.subarray(0, width)));
  assert.deepEqual(
    Array.from(out.subarray(width)),
    Array.from(resizeGrid(positions.subarray(width), 4, 6, width, 'bicubic')),
  );
  assert.deepEqual(resizePosEmbed(positions, width, 4, 4, 'bilinear'), positions);
});
