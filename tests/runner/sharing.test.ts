import assert from 'node:assert/strict';
import { test } from 'node:test';
import { featureDifferences, formatSharing, sharingOf } from '../../src/runner/sharing.js';
import type { Trial } from '../../src/runner/spec-types.js';

function trial(
  variant: string,
  seed: number,
  training: string,
  features: Record<string, unknown>,
): Trial {
  return {
    id: `${variant}${seed}`,
    trainingKey: training,
    featureKey: { id: `f-${JSON.stringify(features)}`, ...features } as Trial['featureKey'],
    index: 0,
    seed,
    variant,
    point: { variant },
    config: {} as Trial['config'],
    origins: {},
  };
}

const gelu = { weights: 'w', activation: 'gelu', image_size: 518, layers: [6, 12] };
const quick = { weights: 'w', activation: 'quick_gelu', image_size: 518, layers: [6, 12] };

test('two methods with different CLIP options share neither trainings nor features, and the plan says why', () => {
  const trials = [
    trial('A', 1, 'ta1', gelu),
    trial('A', 2, 'ta2', gelu),
    trial('B', 1, 'tb1', quick),
  ];
  const sharing = sharingOf(trials);
  assert.deepEqual(sharing.points, ['A', 'B']);
  assert.deepEqual(sharing.sharedTrainings, []);
  assert.deepEqual(sharing.sharedFeatures, []);
  assert.deepEqual(featureDifferences(sharing), ['activation gelu / quick_gelu']);
  const lines = formatSharing(sharing);
  assert.equal(lines[0], 'trainings shared between sweep points: none');
  assert.equal(lines[1], 'frozen features shared between sweep points: none');
  assert.match(lines[2], /2 feature keys .* differing in activation gelu \/ quick_gelu/);
});

test('evaluation-only sweeps share trainings and features; one point prints nothing', () => {
  const trials = [trial('A', 1, 't1', gelu), trial('B', 1, 't1', gelu)];
  const lines = formatSharing(sharingOf(trials));
  assert.match(lines[0], /t1 \(A, B\)/);
  assert.match(lines[1], /\(A, B\)/);
  assert.equal(lines.length, 2);
  assert.deepEqual(formatSharing(sharingOf([trial('A', 1, 't1', gelu)])), []);
});
