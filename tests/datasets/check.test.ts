import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { checkDataset, openCheckedDataset } from '../../src/datasets/check.js';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { UserError } from '../../src/errors.js';

async function brokenDataset(): Promise<{
  root: string;
  truncated: string;
  unmasked: string;
  mismatched: string;
}> {
  const root = mkdtempSync(join(tmpdir(), 'vcp-check-'));
  await generateSynthDataset(root, {
    products: ['grid', 'bottle'],
    size: 48,
    trainGood: 2,
    testGood: 1,
    testDefect: 1,
    seed: 2,
  });
  const truncated = join(root, 'grid', 'train', 'good', '001.png');
  writeFileSync(truncated, readFileSync(truncated).subarray(0, 200));
  const unmasked = join(root, 'grid', 'test', 'hole', '000.png');
  rmSync(join(root, 'grid', 'ground_truth', 'hole', '000_mask.png'));
  const mismatched = join(root, 'bottle', 'ground_truth', 'stain', '000_mask.png');
  await sharp({ create: { width: 40, height: 48, channels: 3, background: '#ffffff' } })
    .png()
    .toFile(mismatched + '.new.png');
  writeFileSync(mismatched, readFileSync(mismatched + '.new.png'));
  rmSync(mismatched + '.new.png');
  return { root, truncated, unmasked, mismatched };
}

test('a clean generated dataset passes with per-product counts', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-check-'));
  await generateSynthDataset(root, {
    products: ['wood', 'screw'],
    size: 48,
    trainGood: 3,
    testGood: 2,
    testDefect: 1,
    seed: 4,
  });
  const { counts, problems } = await checkDataset({ root });
  assert.deepEqual(problems, []);
  assert.deepEqual(counts, [
    { product: 'screw', train: { good: 3, anomalous: 0 }, test: { good: 2, anomalous: 5 } },
    { product: 'wood', train: { good: 3, anomalous: 0 }, test: { good: 2, anomalous: 4 } },
  ]);
});

test('broken dataset: one UserError naming the truncated PNG, the missing mask and the size mismatch; nothing runs', async () => {
  const { root, truncated, unmasked, mismatched } = await brokenDataset();
  let ran = false;
  await assert.rejects(
    openCheckedDataset({ root }).then(() => {
      ran = true;
    }),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /3 problems/);
      for (const path of [truncated, unmasked, mismatched])
        assert.ok(e.message.includes(path), `message names ${path}:\n${e.message}`);
      assert.match(e.message, /unreadable image/);
      assert.match(e.message, /missing mask for an anomalous image/);
      assert.match(e.message, /mask is 40×48 but its image .* is 48×48/);
      return true;
    },
  );
  assert.equal(ran, false);
});

test('header-only scan misses the truncation but still finds the mask problems', async () => {
  const { root, truncated } = await brokenDataset();
  const { problems } = await checkDataset({ root, decode: false });
  assert.equal(problems.length, 2);
  assert.ok(!problems.some((p) => p.path === truncated));
});

test('empty product and unknown product in a filter are reported together', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-check-'));
  await generateSynthDataset(root, {
    products: ['pill'],
    size: 48,
    trainGood: 1,
    testGood: 1,
    testDefect: 1,
    seed: 2,
  });
  mkdirSync(join(root, 'ghost', 'test', 'good'), { recursive: true });
  const { problems } = await checkDataset({ root, products: ['pill', 'ghost', 'nope'] });
  assert.deepEqual(
    problems.map((p) => p.problem.replace(/ \(.*/, '')),
    ['unknown product "nope"', 'empty product: no images found'],
  );
  assert.match(problems[0].problem, /available: ghost, pill/);
});

test('CLI: vcp-exp data check prints every problem and exits non-zero', async () => {
  const { root, truncated, unmasked, mismatched } = await brokenDataset();
  const cli = new URL('../../bin/vcp-exp.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [cli, 'data', 'check', root], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stdout, /product\s+train good/);
  for (const path of [truncated, unmasked, mismatched])
    assert.ok(r.stderr.includes(path), r.stderr);
  const ok = spawnSync(process.execPath, [cli, 'data', 'check', root, '--products', 'nope'], {
    encoding: 'utf8',
  });
  assert.equal(ok.status, 1);
  assert.match(ok.stderr, /unknown product "nope" \(available: bottle, grid\)/);
});

test('image labels only (no anomalous image has a mask): fine to evaluate, a problem to train on', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-check-'));
  await generateSynthDataset(root, {
    products: ['pill'],
    size: 48,
    trainGood: 1,
    testGood: 1,
    testDefect: 1,
    seed: 2,
  });
  rmSync(join(root, 'pill', 'ground_truth'), { recursive: true });
  const forEval = await checkDataset({ root });
  assert.deepEqual(forEval.problems, []);
  assert.equal(forEval.imageLabelsOnly, true);
  assert.ok(forEval.counts[0].test.anomalous > 0);
  await assert.rejects(openCheckedDataset({ root, requireMasks: true }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /image labels only .* not trained on/);
    return true;
  });
  const cli = new URL('../../bin/vcp-exp.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [cli, 'data', 'check', root], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /image labels only .*evaluation skips the pixel metrics/);
  // The same set with its masks is not image-labels-only.
  const mixed = mkdtempSync(join(tmpdir(), 'vcp-check-'));
  await generateSynthDataset(mixed, {
    products: ['pill'],
    size: 48,
    trainGood: 1,
    testGood: 1,
    testDefect: 1,
    seed: 2,
  });
  const { problems: none, imageLabelsOnly } = await checkDataset({ root: mixed });
  assert.deepEqual([none, imageLabelsOnly], [[], false]);
});
