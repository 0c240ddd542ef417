import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { preflightDatasets, preflightError } from '../../src/runner/dataset-preflight.js';
import type { Trial } from '../../src/runner/spec-types.js';

/** Only the dataset fields preflight reads. */
function trialUsing(root: string, train: boolean): Trial {
  const dataset = { root, format: 'mvtec' as const };
  return {
    config: {
      train: train ? { dataset } : {},
      eval: { datasets: [{ name: 'labels-only', ...dataset }] },
    },
  } as unknown as Trial;
}

test('preflight: a set with image labels only passes for evaluation and is refused for training', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-preflight-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'vcp-preflight-state-'));
  await generateSynthDataset(root, {
    products: ['pill'],
    size: 48,
    trainGood: 1,
    testGood: 1,
    testDefect: 1,
    seed: 3,
  });
  rmSync(join(root, 'pill', 'ground_truth'), { recursive: true });
  const evalOnly = await preflightDatasets([trialUsing(root, false)], { stateDir });
  assert.deepEqual(
    evalOnly.map((r) => r.problems),
    [[]],
  );
  assert.equal(preflightError(evalOnly, true), undefined);
  const trained = await preflightDatasets([trialUsing(root, true)], { stateDir });
  const error = preflightError(trained, true);
  assert.ok(error);
  assert.match(error.message, /train dataset, eval dataset labels-only at /);
  assert.match(error.message, /image labels only .* not trained on/);
});
