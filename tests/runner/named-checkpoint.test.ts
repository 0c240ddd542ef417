/**
 * Specs that evaluate a checkpoint instead of training (train.checkpoint): the checkpoint's
 * config against every trial's (evaluation-only fields may differ), its content as the trial
 * identity, no training in the plan; a missing checkpoint is a warning, a train section with
 * neither dataset nor checkpoint an error.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { importVcpClip } from '../../src/model/methods/vcp-clip/import.js';
import { planSpec } from '../../src/runner/plan.js';
import { SpecError } from '../../src/runner/spec-error.js';
import { loadSpec } from '../../src/runner/spec.js';

const PUBLIC = resolve('tests/fixtures/vcp-clip-public');
const work = mkdtempSync(join(tmpdir(), 'vcp-named-checkpoint-'));
after(() => rmSync(work, { recursive: true, force: true }));

before(async () => {
  await importVcpClip({
    pth: join(PUBLIC, 'public.pth'),
    clip: join(PUBLIC, 'tiny-clip'),
    layers: [1, 2],
    imageSize: 24,
    out: join(work, 'checkpoints', 'released'),
  });
});

function spec(name: string, body: string): string {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\n${body}`);
  return file;
}

const MATCHING = `base:
  backbone: ${join(PUBLIC, 'tiny-clip')}
  image_size: 24
  layers: [1, 2]
  heads: 8
`;
const EVAL = `eval:
  datasets:
    - { name: synth, format: mvtec, root: data/synth }
`;

async function errors(file: string): Promise<string[]> {
  try {
    await loadSpec(file);
  } catch (error) {
    assert.ok(error instanceof SpecError, String(error));
    return error.issues
      .filter((i) => i.severity === 'error')
      .map((i) => `${i.path.join('.')}: ${i.message}`);
  }
  assert.fail(`${file} loaded`);
}

test('a spec evaluates a checkpoint: no dataset, no training, eval-only axes share it', async () => {
  const file = spec(
    'released',
    `${MATCHING}sweep:\n  grid:\n    alpha: [0.75, 0.8]\ntrain:\n  checkpoint: checkpoints/released\n${EVAL}`,
  );
  const loaded = await loadSpec(file);
  assert.equal(loaded.trials.length, 2);
  for (const t of loaded.trials) {
    assert.equal(t.config.train.checkpoint, join(work, 'checkpoints', 'released'));
    assert.equal(t.config.train.dataset, undefined);
  }
  assert.equal(new Set(loaded.trials.map((t) => t.trainingKey)).size, 1);
  assert.equal(new Set(loaded.trials.map((t) => t.id)).size, 2);
  const plan = await planSpec(loaded);
  assert.equal(plan.trainingsToRun, 0);
  assert.equal(plan.trainings, 0);
  assert.equal(plan.evaluationsToRun, 2);

  // The checkpoint's content is the identity, not its path: a copy elsewhere keeps the ids.
  cpSync(join(work, 'checkpoints', 'released'), join(work, 'moved'), { recursive: true });
  const moved = await loadSpec(
    spec(
      'moved',
      `${MATCHING}sweep:\n  grid:\n    alpha: [0.75, 0.8]\ntrain:\n  checkpoint: moved\n${EVAL}`,
    ),
  );
  assert.deepEqual(
    moved.trials.map((t) => t.id),
    loaded.trials.map((t) => t.id),
  );
});

test('a config that differs from the checkpoint is an error at the field, or at the checkpoint for a default', async () => {
  const found = await errors(
    spec(
      'mismatch',
      `base:\n  image_size: 28\n  layers: [1]\ntrain:\n  checkpoint: checkpoints/released\n${EVAL}`,
    ),
  );
  const expect = (pattern: RegExp) =>
    assert.ok(
      found.some((e) => pattern.test(e)),
      found.join('\n'),
    );
  expect(
    /^base\.layers: got layers \[1\], but the checkpoint .* has \[1,2\] \(only evaluation-only fields, alpha, sigma, image_score, topk, may differ/,
  );
  expect(/^base\.image_size: got image_size 28, but the checkpoint .* has 24/);
  expect(
    /^train\.checkpoint: the checkpoint .* has backbone ".*tiny-clip", the trial's \(default\) is "ViT-L-14-336": set base\.backbone: /,
  );
});

test('train needs a dataset or a checkpoint; a missing checkpoint is a warning', async () => {
  const found = await errors(spec('neither', `${MATCHING}train:\n  epochs: 2\n${EVAL}`));
  assert.ok(
    found.some((e) => /^train: missing required key "dataset".*or "checkpoint"/.test(e)),
    found.join('\n'),
  );
  const missing = await loadSpec(
    spec('missing', `${MATCHING}train:\n  checkpoint: nowhere\n${EVAL}`),
  );
  assert.ok(
    missing.warnings.some((w) =>
      /checkpoint .*nowhere does not exist here; .*vcp-exp import vcp-clip/.test(w),
    ),
    missing.warnings.join('\n'),
  );
});
