/**
 * The measured effect of float16 feature-cache storage (execution.feature_cache.dtype) on the
 * metrics, as docs/performance.md states it: the shipped tiny CLIP at the quickstart's config,
 * an untrained VCP-CLIP, synthetic MVTec-layout data, evaluated once on features computed in
 * float32 and once on the same features stored and read back as float16. The differences are
 * printed as diagnostics; the bound is what the docs promise at this scale.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openDataset } from '../../src/datasets/open.js';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { METRICS } from '../../src/eval/evaluate.js';
import { initBackend } from '../../src/model/backend.js';
import { FeatureCache } from '../../src/model/feature-cache.js';
import { FeatureExtractor } from '../../src/model/features.js';
import { evaluateDataset } from '../../src/model/infer.js';
import { loadMethod } from '../../src/model/load.js';

const dir = mkdtempSync(join(tmpdir(), 'vcp-fp16-'));
before(async () => {
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['bottle', 'grid'],
    size: 64,
    trainGood: 0,
    testGood: 4,
    testDefect: 2,
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The largest metric change fp16 storage may cause at this scale (percentage points / 100). */
const BOUND = 0.005;

test('float16 feature storage changes the metrics by less than half a point (tiny CLIP, synthetic data)', async (t) => {
  await initBackend('auto');
  const { backbone, method } = await loadMethod('vcp-clip', {
    backbone: 'tiny-clip',
    activation: 'quick_gelu',
    image_size: 64,
    layers: [1, 2, 3],
    n_ctx: 2,
    deep_prompt_len: 1,
    pre_vcp: false,
    topk: 100,
    sigma: 2,
  });
  try {
    const dataset = await openDataset({ root: join(dir, 'synth'), format: 'mvtec' });
    const extractor = (dtype?: 'float16') =>
      new FeatureExtractor({
        clip: backbone.clip,
        weightsHash: backbone.sha256,
        request: method.features,
        cache: dtype ? new FeatureCache({ dir: join(dir, 'cache'), dtype }) : undefined,
      });
    const exact = await evaluateDataset({ method, extractor: extractor(), dataset });
    const half = extractor('float16');
    await evaluateDataset({ method, extractor: half, dataset }); // stores float16 entries
    const rounded = await evaluateDataset({ method, extractor: half, dataset }); // reads them
    assert.ok(half.stats.hits > 0 && half.stats.encoded === rounded.images);
    let largest = 0;
    for (const name of METRICS) {
      const a = exact.mean.mean[name];
      const b = rounded.mean.mean[name];
      if (a === null || b === null) continue;
      const diff = Math.abs(a - b);
      t.diagnostic(`${name}: float32 ${(100 * a).toFixed(3)} %, float16 ${(100 * b).toFixed(3)} %`);
      largest = Math.max(largest, diff);
    }
    t.diagnostic(`largest change: ${(100 * largest).toFixed(4)} points`);
    assert.ok(largest < BOUND, `fp16 changed a metric by ${(100 * largest).toFixed(3)} points`);
  } finally {
    method.dispose();
    backbone.clip.dispose();
  }
});
