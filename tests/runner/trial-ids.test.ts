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

// Migration (issue 10): pos_embed_resize (default bicubic_antialias, the public code's) changed
// every VCP-CLIP trial's id; trials that set pos_embed_resize: bicubic, what every earlier trial
// used, keep their ids (grid-bicubic.yaml below). README: "Upgrading".
const PINNED: Record<string, Keys[]> = {
  // grid n_ctx × alpha × seeds [1, 2]: alpha is evaluation-only, so pairs share a training key.
  'tests/fixtures/specs/pinned/grid.yaml': [
    ['4deeae8b5f02', '7ca335818b78', 'f1ce8dd75cce'],
    ['d2d161a2c9e4', 'ce5b51ed5612', 'f1ce8dd75cce'],
    ['ba4de78280c7', '7ca335818b78', 'f1ce8dd75cce'],
    ['93eb88d776b2', 'ce5b51ed5612', 'f1ce8dd75cce'],
    ['169d19c430ee', 'd52f5e8cbfbd', 'f1ce8dd75cce'],
    ['2071551e3504', 'ad5e74bca193', 'f1ce8dd75cce'],
    ['ca1a448d5224', 'd52f5e8cbfbd', 'f1ce8dd75cce'],
    ['c1a9b77b82fb', 'ad5e74bca193', 'f1ce8dd75cce'],
  ],
  // grid.yaml with pos_embed_resize: bicubic: the ids and keys grid.yaml had before the field.
  'tests/fixtures/specs/pinned/grid-bicubic.yaml': [
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
    ['9f756a213205', '980327c7b1dc', '9c9c5e70e7c8'],
    ['a418ab7924b6', '6f399bf08b6f', 'f76cb38aec69'],
    ['5aca5f3cab76', '88b5242021ed', '9c9c5e70e7c8'],
    ['f4039766f632', '228b10e0ed16', 'f76cb38aec69'],
    ['7b51e8f00711', 'be52103b2718', '9c9c5e70e7c8'],
    ['01259f719b0b', 'a5573771c2db', 'f76cb38aec69'],
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
