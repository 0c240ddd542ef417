import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { readImageRgb, rgbToGray } from '../../src/datasets/image-io.js';
import {
  generateSynthDataset,
  renderSynthSample,
  SYNTH_PRODUCTS,
  DEFECT_KINDS,
} from '../../src/datasets/synth.js';
import { UserError } from '../../src/errors.js';

function treeHash(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else
        out.set(
          relative(root, path),
          createHash('sha256').update(readFileSync(path)).digest('hex'),
        );
    }
  };
  walk(root);
  return out;
}

const small = {
  products: ['carpet', 'bottle'],
  size: 64,
  trainGood: 2,
  testGood: 1,
  testDefect: 1,
};

test('same seed → byte-identical files; another seed → different images', async () => {
  const base = mkdtempSync(join(tmpdir(), 'vcp-synth-'));
  await generateSynthDataset(join(base, 'a'), { ...small, seed: 7 });
  await generateSynthDataset(join(base, 'b'), { ...small, seed: 7 });
  await generateSynthDataset(join(base, 'c'), { ...small, seed: 8 });
  const [a, b, c] = ['a', 'b', 'c'].map((d) => treeHash(join(base, d)));
  assert.equal(a.size, 2 * (2 + 1) + 4 * 2 * 1 + 5 * 2 * 1); // carpet: 4 defect kinds, bottle: 5
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
  assert.deepEqual([...a.keys()].sort(), [...c.keys()].sort());
  const differing = [...a.keys()].filter((k) => a.get(k) !== c.get(k));
  assert.equal(differing.length, a.size);
});

test('MVTec layout: train/good, test/good, test/<defect>, ground_truth/<defect>/*_mask.png', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-synth-'));
  const summary = await generateSynthDataset(root, { ...small, seed: 1 });
  assert.deepEqual(readdirSync(join(root, 'bottle', 'test')).sort(), [
    'crack',
    'good',
    'hole',
    'missing',
    'scratch',
    'stain',
  ]);
  assert.deepEqual(readdirSync(join(root, 'carpet', 'ground_truth')).sort(), [
    'crack',
    'hole',
    'scratch',
    'stain',
  ]);
  assert.deepEqual(readdirSync(join(root, 'carpet', 'ground_truth', 'hole')), ['000_mask.png']);
  assert.equal(summary.files, 24);
});

test('every defect mask is exactly the changed pixels, and the change is visible', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-synth-'));
  await generateSynthDataset(root, {
    products: [...SYNTH_PRODUCTS],
    size: 96,
    trainGood: 0,
    testGood: 0,
    testDefect: 1,
    seed: 3,
  });
  let checked = 0;
  for (const product of SYNTH_PRODUCTS) {
    for (const kind of DEFECT_KINDS) {
      if (kind === 'missing' && ['carpet', 'wood', 'grid'].includes(product)) continue;
      const { reference } = renderSynthSample(product, kind, 'test', 0, 3, 96);
      const image = await readImageRgb(join(root, product, 'test', kind, '000.png'));
      const mask = rgbToGray(
        await readImageRgb(join(root, product, 'ground_truth', kind, '000_mask.png')),
      ).data;
      let inside = 0;
      let change = 0;
      for (let i = 0; i < mask.length; i++) {
        const diff =
          Math.abs(image.data[i * 3] - reference.data[i * 3]) +
          Math.abs(image.data[i * 3 + 1] - reference.data[i * 3 + 1]) +
          Math.abs(image.data[i * 3 + 2] - reference.data[i * 3 + 2]);
        assert.equal(mask[i] === 255, diff > 0, `${product}/${kind}: pixel ${i}`);
        assert.ok(mask[i] === 0 || mask[i] === 255);
        if (mask[i]) {
          inside++;
          change += diff / 3;
        }
      }
      assert.ok(inside >= 12, `${product}/${kind}: only ${inside} defect pixels`);
      assert.ok(
        change / inside >= 15,
        `${product}/${kind}: mean change ${change / inside} levels is too faint`,
      );
      checked++;
    }
  }
  assert.equal(checked, 3 * 4 + 3 * 5);
});

test('good images vary (pose, lighting) but stay in family', () => {
  const a = renderSynthSample('screw', 'good', 'train', 0, 0, 64).image.data;
  const b = renderSynthSample('screw', 'good', 'train', 1, 0, 64).image.data;
  assert.notDeepEqual(a, b);
});

test('unknown product and bad counts are user errors', async () => {
  await assert.rejects(
    generateSynthDataset('/nonexistent', { products: ['carpet', 'toaster'] }),
    (e: unknown) =>
      e instanceof UserError && /toaster/.test(e.message) && /carpet, wood/.test(e.hint ?? ''),
  );
  await assert.rejects(generateSynthDataset('/nonexistent', { size: 8 }), UserError);
});
