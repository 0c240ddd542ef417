import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { readImageRgb, rgbToGray, type RgbImage } from '../../src/datasets/image-io.js';
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

/** Colour, contrast and texture of one image: mean R, G, B, gray std, gray neighbour energy. */
function describe(image: RgbImage): number[] {
  const gray = rgbToGray(image).data;
  const n = gray.length;
  const rgb = [0, 1, 2].map(
    (c) => image.data.reduce((a, v, i) => (i % 3 === c ? a + v : a), 0) / n,
  );
  const m = gray.reduce((a, v) => a + v, 0) / n;
  const std = Math.sqrt(gray.reduce((a, v) => a + (v - m) ** 2, 0) / n);
  let energy = 0;
  for (let i = 1; i < n; i++) if (i % image.width) energy += (gray[i] - gray[i - 1]) ** 2;
  return [...rgb, std, Math.sqrt(energy / n)];
}

/** Orientation (degrees, mod 180) of the dark object on a light background, from its second moments. */
function orientation(image: RgbImage): number {
  const { width: w, height: h } = image;
  const gray = rgbToGray(image).data;
  let [n, sx, sy] = [0, 0, 0];
  for (let i = 0; i < gray.length; i++)
    if (gray[i] < 170) [n, sx, sy] = [n + 1, sx + (i % w), sy + Math.floor(i / w)];
  const [cx, cy] = [sx / n, sy / n];
  let [xx, yy, xy] = [0, 0, 0];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (gray[y * w + x] < 170) {
        xx += (x - cx) ** 2;
        yy += (y - cy) ** 2;
        xy += (x - cx) * (y - cy);
      }
  return (((Math.atan2(2 * xy, xx - yy) / 2) * 180) / Math.PI + 180) % 180;
}

/** Mean background (light) level of the right half minus the left half: the lighting gradient. */
function lightTilt(image: RgbImage): number {
  const gray = rgbToGray(image).data;
  const sums = [0, 0];
  const counts = [0, 0];
  gray.forEach((v, i) => {
    if (v < 170) return;
    const half = i % image.width < image.width / 2 ? 0 : 1;
    sums[half] += v;
    counts[half]++;
  });
  return sums[1] / counts[1] - sums[0] / counts[0];
}

test('good images vary (pose, lighting) but stay in family: each is nearest to its own product', () => {
  const samples = SYNTH_PRODUCTS.flatMap((product) =>
    [0, 1, 2, 3].map((index) => ({
      product,
      image: renderSynthSample(product, 'good', 'train', index, 0, 64).image,
    })),
  );
  // Pose: the screw lies at a different angle in each image; lighting: the background level moves.
  const angles = samples.filter((s) => s.product === 'screw').map((s) => orientation(s.image));
  const spread = (v: number[]) => Math.max(...v) - Math.min(...v);
  assert.ok(spread(angles) > 20, `screw orientations ${angles.map((a) => a.toFixed(0))}`);
  const tilts = samples.filter((s) => s.product === 'screw').map((s) => lightTilt(s.image));
  assert.ok(
    spread(tilts) > 3,
    `screw background left-right tilt ${tilts.map((t) => t.toFixed(1))}`,
  );
  // Family: in standardised colour/contrast/texture space, every image's nearest neighbour
  // among the others is an image of the same product.
  const features = samples.map((s) => describe(s.image));
  const scale = features[0].map((_, k) => {
    const column = features.map((f) => f[k]);
    const m = column.reduce((a, v) => a + v, 0) / column.length;
    return Math.sqrt(column.reduce((a, v) => a + (v - m) ** 2, 0) / column.length) || 1;
  });
  const distance = (a: number[], b: number[]) =>
    Math.hypot(...a.map((v, k) => (v - b[k]) / scale[k]));
  samples.forEach((s, i) => {
    let best = -1;
    features.forEach((f, j) => {
      if (j !== i && (best < 0 || distance(features[i], f) < distance(features[i], features[best])))
        best = j;
    });
    assert.equal(
      samples[best].product,
      s.product,
      `good ${s.product} #${i % 4} looks like ${samples[best].product}`,
    );
  });
  assert.notDeepEqual(samples[0].image.data, samples[1].image.data);
});

test('unknown product and bad counts are user errors', async () => {
  await assert.rejects(
    generateSynthDataset('/nonexistent', { products: ['carpet', 'toaster'] }),
    (e: unknown) =>
      e instanceof UserError && /toaster/.test(e.message) && /carpet, wood/.test(e.hint ?? ''),
  );
  await assert.rejects(generateSynthDataset('/nonexistent', { size: 8 }), UserError);
});
