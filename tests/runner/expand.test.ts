import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadSpec } from '../../src/runner/spec.js';

const OK = 'tests/fixtures/specs/ok';

test('grid 3 × 2 with 2 seeds gives 12 trials, seeds innermost, fully resolved', async () => {
  const spec = await loadSpec(`${OK}/grid-block.yaml`);
  assert.equal(spec.trials.length, 12);
  assert.deepEqual(spec.axes, ['n_ctx', 'train.batch_size']);
  assert.deepEqual(
    spec.trials.slice(0, 3).map((t) => [t.point.n_ctx, t.point['train.batch_size'], t.seed]),
    [
      [1, 8, 1],
      [1, 8, 2],
      [1, 16, 1],
    ],
  );
  const t = spec.trials[7]; // n_ctx 2, batch 16, seed 2
  assert.equal(t.config.model.n_ctx, 2);
  assert.equal(t.config.train.batch_size, 16);
  assert.equal(t.config.train.micro_batch, 16);
  assert.equal(t.config.model.seed, 2);
  assert.equal(t.config.model.backbone, 'ViT-L-14-336');
  assert.deepEqual(t.config.model.layers, [6, 12, 18, 24]);
  assert.equal(t.config.train.epochs, 2);
  assert.deepEqual(Object.keys(t.config), ['eval', 'method', 'model', 'train']);
  assert.deepEqual(Object.keys(t.config.model), [...Object.keys(t.config.model)].sort());
  assert.equal(new Set(spec.trials.map((x) => x.id)).size, 12);
  for (const x of spec.trials) assert.match(x.id, /^[0-9a-f]{12}$/);
});

test('trial ids do not depend on key order or YAML style', async () => {
  const [a, b] = await Promise.all([
    loadSpec(`${OK}/grid-block.yaml`),
    loadSpec(`${OK}/grid-flow.yaml`),
  ]);
  assert.deepEqual(
    a.trials.map((t) => t.id),
    b.trials.map((t) => t.id),
  );
  assert.deepEqual(
    a.trials.map((t) => t.trainingKey),
    b.trials.map((t) => t.trainingKey),
  );
});

test('a spec that extends another keeps the ids of the trials it shares', async () => {
  const [base, child] = await Promise.all([
    loadSpec(`${OK}/grid-block.yaml`),
    loadSpec(`${OK}/child.yaml`),
  ]);
  assert.equal(child.trials.length, 18);
  assert.deepEqual(child.chain, [`${OK}/child.yaml`, `${OK}/grid-block.yaml`]);
  const childIds = new Set(child.trials.map((t) => t.id));
  for (const t of base.trials)
    assert.ok(childIds.has(t.id), `seed ${t.seed} trial ${t.id} missing`);
});

test('evaluation-only axes share one training: alpha × pro → 8 trials, 1 training key', async () => {
  const spec = await loadSpec(`${OK}/alpha-only.yaml`);
  assert.equal(spec.trials.length, 8);
  assert.equal(new Set(spec.trials.map((t) => t.id)).size, 8);
  assert.equal(new Set(spec.trials.map((t) => t.trainingKey)).size, 1);
  assert.equal(new Set(spec.trials.map((t) => t.featureKey.id)).size, 1);
});

test('variants × zip groups × seeds; keys follow what each field affects', async () => {
  const spec = await loadSpec(`${OK}/zip-variants.yaml`);
  assert.equal(spec.trials.length, 3 * 3 * 2);
  assert.deepEqual(spec.axes, ['variant', 'backbone', 'image_size', 'layers']);
  const first = spec.trials[0];
  assert.equal(first.variant, 'baseline');
  assert.equal(first.config.model.pre_vcp, false);
  assert.equal(first.config.model.post_vcp, false);
  const full = spec.trials.filter((t) => t.variant === 'full');
  assert.ok(full.every((t) => t.config.train.epochs === 3));
  const b16 = spec.trials.find((t) => t.point.backbone === 'ViT-B-16')!;
  assert.equal(b16.config.model.image_size, 224);
  assert.deepEqual(b16.config.model.layers, [3, 6, 9, 12]);
  assert.deepEqual(b16.featureKey, {
    ...b16.featureKey,
    weights: 'openai/ViT-B-16',
    activation: 'gelu',
    pos_embed_resize: 'bicubic_antialias',
    image_size: 224,
    layers: [3, 6, 9, 12],
  });
  // Feature keys depend on backbone/size/layers only: 3 of them, shared across variants and seeds.
  assert.equal(new Set(spec.trials.map((t) => t.featureKey.id)).size, 3);
  assert.equal(new Set(spec.trials.map((t) => t.trainingKey)).size, 18);
});

test('a checkpoint-directory backbone is resolved relative to the spec and identified by its weights', async () => {
  const spec = await loadSpec('experiments/quickstart.yaml');
  assert.equal(spec.trials.length, 12);
  assert.equal(new Set(spec.trials.map((t) => t.trainingKey)).size, 6);
  const t = spec.trials[0];
  assert.equal(t.config.model.backbone, `${process.cwd()}/assets/clip/tiny-clip`);
  assert.match(t.featureKey.weights, /^sha256:[0-9a-f]{16}$/);
});
