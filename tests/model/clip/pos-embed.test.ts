// The positional-grid resize against torch.nn.functional.interpolate(align_corners=False)
// (goldens from python/golden/make_clip_fixture.py), and the class token kept as is.
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

test('interpolation rows sum to one and the identity size is the identity', () => {
  for (const mode of ['bicubic', 'bilinear'] as const) {
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
