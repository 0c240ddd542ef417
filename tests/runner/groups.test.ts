/**
 * Evaluation groups: trials of one training key that differ only in post-forward fields (the
 * method schema's x-post-forward) share a job; test-time prompts and anything else that changes
 * the forward pass split them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formGroups, groupKey, postForwardSettings } from '../../src/runner/groups.js';
import { loadSpec } from '../../src/runner/spec.js';

const spec = await loadSpec('tests/fixtures/specs/ok/groups.yaml');

test('α × σ variants of one training and one set of prompts form one group', () => {
  // 2 prompt variants × 2 heads × 2 α × 2 σ × 2 seeds
  assert.equal(spec.trials.length, 32);
  const groups = formGroups(spec.trials);
  // One group per (prompts, heads, seed): 4 members each (α × σ).
  assert.equal(groups.length, 8);
  for (const group of groups) {
    assert.equal(group.length, 4);
    assert.equal(new Set(group.map((t) => t.trainingKey)).size, 1);
    assert.equal(new Set(group.map((t) => JSON.stringify(t.config.eval))).size, 1);
    assert.deepEqual(
      group.map((t) => postForwardSettings(t)).map((s) => [s.alpha, s.sigma]),
      [
        [0.5, 4],
        [0.5, 8],
        [0.75, 4],
        [0.75, 8],
      ],
    );
    assert.deepEqual(Object.keys(postForwardSettings(group[0])).sort(), [
      'alpha',
      'image_score',
      'sigma',
      'topk',
    ]);
  }
  // The two prompt variants share their trainings but not their forward passes.
  const byTraining = new Map<string, Set<string>>();
  for (const t of spec.trials)
    byTraining.set(t.trainingKey, (byTraining.get(t.trainingKey) ?? new Set()).add(groupKey(t)));
  assert.equal(byTraining.size, 4);
  for (const keys of byTraining.values()) assert.equal(keys.size, 2);
});

test('groups keep the expansion order and are cut at the maximum size; 1 = every trial alone', () => {
  const groups = formGroups(spec.trials, 3);
  assert.equal(groups.length, 16);
  assert.deepEqual(groups.map((g) => g.length).sort(), [...Array(8).fill(1), ...Array(8).fill(3)]);
  const order = groups.flat().map((t) => t.index);
  for (const g of groups) for (let i = 1; i < g.length; i++) assert.ok(g[i - 1].index < g[i].index);
  assert.equal(new Set(order).size, spec.trials.length);
  assert.equal(formGroups(spec.trials, 1).length, spec.trials.length);
});
