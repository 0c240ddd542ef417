/**
 * End to end with the tiny CLIP fixture (random weights): `vcp-exp train` on synthetic products
 * (carpet, wood, bottle, screw), zero-shot evaluation on DIFFERENT held-out products (grid,
 * pill); the loss falls and the held-out pixel AUROC beats chance. Then `vcp-exp predict` with
 * the checkpoint: overlays, 16-bit raw maps, tensor dumps, scores.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { isolatedCache } from '../isolated-cache.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'bin/vcp-exp.js');
const work = mkdtempSync(join(tmpdir(), 'vcp-train-tiny-'));
after(() => rmSync(work, { recursive: true, force: true }));

const env = { ...process.env, VCP_EXP_CACHE: isolatedCache(join(work, 'cache')) };
const run = (...args: string[]) =>
  execFileSync(process.execPath, [CLI, '--backend', 'tensorflow', ...args], {
    cwd: work,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

test('train on seen products, evaluate zero-shot on unseen ones, predict', async () => {
  await generateSynthDataset(join(work, 'data'), {
    size: 64,
    trainGood: 0,
    testGood: 3,
    testDefect: 3,
    seed: 7,
  });
  await generateSynthDataset(join(work, 'data2'), {
    size: 64,
    trainGood: 0,
    testGood: 3,
    testDefect: 3,
    seed: 8,
    products: ['carpet', 'wood', 'bottle', 'screw'],
  });
  writeFileSync(
    join(work, 'spec.yaml'),
    `name: tiny-train
method: vcp-clip
base:
  backbone: ${join(REPO, 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 64
  layers: [1, 2, 3]
  pre_vcp: false
  heads: 4
  sigma: 2
  topk: 100
  lr: 0.001
seeds: [333]
train:
  dataset: { format: mvtec, root: ./data, products: [carpet, wood, bottle, screw] }
  epochs: 5
  batch_size: 8
  augment: { mosaic: 0.2 }
eval:
  datasets:
    - { name: held-out, format: mvtec, root: ./data, products: [grid, pill] }
    - { name: same-kinds, format: mvtec, root: ./data2, products: [carpet, wood, bottle, screw] }
`,
  );
  const out = join(work, 'out');
  const printed = run('train', 'spec.yaml', '--out', out);
  assert.match(printed, /held-out: metrics/);
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as {
    epochLosses: number[];
    evaluations: { products: { product: string }[]; mean: { mean: { pixelAuroc: number } } }[];
  };
  const losses = metrics.epochLosses;
  console.log(
    `epoch losses ${losses.map((l) => l.toFixed(3)).join(' ')}; held-out pixel AUROC ${metrics.evaluations[0].mean.mean.pixelAuroc.toFixed(4)}; same kinds, new seed ${metrics.evaluations[1].mean.mean.pixelAuroc.toFixed(4)}`,
  );
  assert.ok(losses.at(-1)! < losses[0], `loss did not fall: ${losses.join(', ')}`);
  assert.deepEqual(
    metrics.evaluations[0].products.map((p) => p.product),
    ['grid', 'pill'],
  );
  assert.ok(
    metrics.evaluations[0].mean.mean.pixelAuroc > 0.6,
    `held-out pixel AUROC ${metrics.evaluations[0].mean.mean.pixelAuroc}`,
  );

  const images = [
    join(work, 'data/grid/test/hole/000.png'),
    join(work, 'data/pill/test/good/000.png'),
  ];
  const predicted = run(
    'predict',
    '--checkpoint',
    join(out, 'checkpoint'),
    '--out',
    join(work, 'pred'),
    '--dump',
    join(work, 'dump'),
    '--raw',
    'png16',
    ...images,
  );
  assert.match(predicted, /000\.png\s+score \d/);
  for (const f of ['000_overlay.png', '000_map.png', '000_1_overlay.png'])
    assert.ok(existsSync(join(work, 'pred', f)), f);
  for (const f of [
    'text.npy',
    'layer_map.base.0.npy',
    'layer_map.vcp.2.npy',
    'fused_map.npy',
    'map.vcp.npy',
  ])
    assert.ok(existsSync(join(work, 'dump/000', f)), f);
});
