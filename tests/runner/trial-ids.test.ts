/**
 * Trial ids, training keys and feature keys of fixed specs, pinned.
 *
 * A trial's id is how `vcp-exp run` recognises a FINISHED run in the user's MLflow: if the
 * canonical form of a trial (src/runner/canonical.ts, assignKeys in src/runner/expand.ts, the
 * method defaults, TRAIN_DEFAULTS / EVAL_DEFAULTS) changes, every finished trial of every user
 * silently runs again. So this test fails on any change of these hashes. A DELIBERATE change
 * (a new config field that changes results, a default that changes results) must come with a
 * migration note for users' existing MLflow runs (README / release notes: which runs re-run,
 * or how to re-tag them with `vcp.trial_id`), and then the new values below, which the failure
 * message prints ready to paste.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSpec } from '../../src/runner/spec.js';

type Keys = [id: string, trainingKey: string, featureKey: string];

const PINNED: Record<string, Keys[]> = {
  // grid n_ctx × alpha × seeds [1, 2]: alpha is evaluation-only, so pairs share a training key.
  'tests/fixtures/specs/pinned/grid.yaml': [
    ['c6828267a11c', '8d647183e9ab', '8908bcb27b58'],
    ['fffb785ff9f6', '882592ee1a35', '8908bcb27b58'],
    ['79fa3b204c57', '8d647183e9ab', '8908bcb27b58'],
    ['00ba6009e503', '882592ee1a35', '8908bcb27b58'],
    ['2a1f0b0fd44a', 'a654de3badd1', '8908bcb27b58'],
    ['18e4b1d4c5ff', '7fa1d9b94578', '8908bcb27b58'],
    ['1650b77cd874', 'a654de3badd1', '8908bcb27b58'],
    ['6929afa3dadf', '7fa1d9b94578', '8908bcb27b58'],
  ],
  // variants × a zipped backbone/size/layers group, one seed: two feature keys.
  'tests/fixtures/specs/pinned/variants.yaml': [
    ['411ecc6aeaf1', '91831ecf6bcd', 'bee6952902e3'],
    ['bc270b6e5804', 'd547061dfe5d', 'cc0fd08d052d'],
    ['c4c900a19247', '84963fd7a87c', 'bee6952902e3'],
    ['506ea8810122', 'c82c29f8b768', 'cc0fd08d052d'],
    ['514679475e65', '11b75158fe8a', 'bee6952902e3'],
    ['d8c7eaec7062', '97a4cd63ceb2', 'cc0fd08d052d'],
  ],
};

test('trial ids, training keys and feature keys of the pinned specs never change by accident', async () => {
  const actual: Record<string, Keys[]> = {};
  for (const file of Object.keys(PINNED)) {
    const spec = await loadSpec(file);
    actual[file] = spec.trials.map((t) => [t.id, t.trainingKey, t.featureKey.id]);
  }
  const table = Object.entries(actual)
    .map(
      ([file, rows]) =>
        `  '${file}': [\n${rows.map((r) => `    ['${r.join("', '")}'],`).join('\n')}\n  ],`,
    )
    .join('\n');
  assert.deepEqual(
    actual,
    PINNED,
    `trial ids changed: every finished trial in users' MLflow would run again. If deliberate, ` +
      `write the migration note (see this file's header) and pin the new values:\n${table}`,
  );
});
