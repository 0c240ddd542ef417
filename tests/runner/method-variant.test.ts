/**
 * Comparing methods in one spec: a variant naming another method starts from that method's
 * defaults (not the spec method's `base`), gets its own training and feature keys, and the plan
 * says what the methods share (experiments/head-to-head-synthetic.yaml).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlan } from '../../src/commands/plan.js';
import { planSpec } from '../../src/runner/plan.js';
import { loadSpec } from '../../src/runner/spec.js';

test('a variant with method: vip2-clip expands from ViP²-CLIP’s defaults plus its set', async () => {
  const spec = await loadSpec('experiments/head-to-head-synthetic.yaml');
  assert.deepEqual(
    spec.trials.map((t) => [t.variant, t.config.method, t.seed]),
    [
      ['VCP-CLIP', 'vcp-clip', 1],
      ['VCP-CLIP', 'vcp-clip', 2],
      ['VCP-CLIP', 'vcp-clip', 3],
      ['ViP2-CLIP', 'vip2-clip', 1],
      ['ViP2-CLIP', 'vip2-clip', 2],
      ['ViP2-CLIP', 'vip2-clip', 3],
    ],
  );
  const vcp = spec.trials[0].config;
  const vip2 = spec.trials[3].config;
  // base (VCP-CLIP's) applies to VCP-CLIP only; ViP²-CLIP has its defaults and its set.
  assert.equal(vcp.model.n_ctx, 2);
  assert.equal(vip2.model.n_ctx, 7);
  assert.equal(vip2.model.topk, 10);
  assert.equal(vip2.model.normal_state_word, 'damaged');
  assert.equal('alpha' in vip2.model, false);
  assert.deepEqual([vcp.model.activation, vip2.model.activation], ['gelu', 'quick_gelu']);
  assert.deepEqual(
    [vcp.model.pos_embed_resize, vip2.model.pos_embed_resize],
    ['bicubic_antialias', 'bilinear'],
  );
  // Identical data and seeds; each method its own schedule.
  assert.deepEqual(vip2.train.dataset, vcp.train.dataset);
  assert.deepEqual(vip2.eval, vcp.eval);
  assert.equal(vip2.train.augment.mosaic, 0);
  assert.equal(vcp.train.augment.mosaic, 0.2);
  // Features: ViP²-CLIP's forms enter its key; VCP-CLIP's key has none (unchanged ids).
  assert.equal(spec.trials[3].featureKey.tokens, 'projected');
  assert.equal(spec.trials[3].featureKey.global, 'no_ln_post');
  assert.equal('tokens' in spec.trials[0].featureKey, false);
  assert.notEqual(spec.trials[0].featureKey.id, spec.trials[3].featureKey.id);
});

test('the plan shows each trial’s method and feature key, and that nothing is shared', async () => {
  const spec = await loadSpec('experiments/head-to-head-synthetic.yaml');
  const text = formatPlan(await planSpec(spec), false);
  assert.match(text, /#\s+trial\s+method\s+variant\s+seed\s+training\s+features\s+done/);
  assert.match(text, /trainings shared between sweep points: none/);
  assert.match(text, /frozen features shared between sweep points: none/);
  assert.match(
    text,
    /differing in activation gelu \/ quick_gelu; global ln_post \/ no_ln_post; pos_embed_resize bicubic_antialias \/ bilinear; tokens raw \/ projected/,
  );
});

test('the real head-to-head spec loads: same seeds and data, each paper beside ours', async () => {
  const spec = await loadSpec('experiments/head-to-head.yaml');
  assert.deepEqual(new Set(spec.trials.map((t) => t.seed)), new Set([1, 2, 3]));
  assert.equal(spec.report.head_to_head?.compare.join(), 'VCP-CLIP,ViP2-CLIP');
  const values = spec.report.tables[0].reference!.values;
  assert.deepEqual(values['MVTec-AD | ViP2-CLIP'], [90.5, 87.1, null, 43.1, 91.2, 96.0, 92.0]);
});
