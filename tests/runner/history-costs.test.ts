/**
 * Per-image costs from earlier runs' records (src/runner/history-costs.ts): what a trial
 * process costs besides its training and evaluation is its run's wall time less those two
 * (start-up, loading, the inference timing and the uploads all count), taken from runs that
 * had a process of their own: the other member of an evaluation group shares the process
 * whose training its wall also holds. Each member of a group records the group's evaluation
 * time, of which its share is 1/size.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costsFromRuns } from '../../src/runner/history-costs.js';
import type { Run } from '../../src/tracking/types.js';

function run(wallS: number, metrics: Record<string, number>, epochs = 2): Run {
  return {
    info: {
      run_id: `r${wallS}`,
      experiment_id: '1',
      status: 'FINISHED',
      start_time: 1_000_000,
      end_time: 1_000_000 + wallS * 1000,
      artifact_uri: '',
      lifecycle_stage: 'active',
    },
    data: {
      metrics: Object.entries(metrics).map(([key, value]) => ({
        key,
        value,
        timestamp: 0,
        step: 0,
      })),
      params: [{ key: 'train.epochs', value: String(epochs) }],
      tags: [],
    },
  };
}

// One evaluation group of two (the first trains), from a process that took 10 s.
const group = [
  run(9.5, {
    'eval.images': 20,
    'eval.encoded': 20,
    'eval.products': 2,
    'eval.group_size': 2,
    'model.trained': 1,
    'train.images': 10,
    'time.startup_s': 1.5,
    'time.load_s': 0.5,
    'time.train_s': 4,
    'time.eval_s': 3,
    'time.samples_s': 1,
    'time.total_s': 9.2,
  }),
  run(10, {
    'eval.images': 20,
    'eval.encoded': 20,
    'eval.products': 2,
    'eval.group_size': 2,
    'model.trained': 0,
    'time.startup_s': 1.5,
    'time.load_s': 0.5,
    'time.train_s': 0,
    'time.eval_s': 3,
    'time.samples_s': 1,
    'time.total_s': 9.8,
  }),
];

test('the rest of a trial process is its wall time less training and evaluation', () => {
  const c = costsFromRuns(group);
  assert.equal(c.runs, 2);
  assert.equal(c.startupS, 9.5 - 4 - 3, "the trained run's: the member's wall holds the training");
  assert.equal(c.trainImageS, 4 / (10 * 2));
  // Each member records the group's evaluation (one forward, both read-outs): half is its own.
  assert.equal(c.evalEncodeImageS, (3 - 1) / 20 / 2);
  assert.equal(c.samplesProductS, 1 / 2 / 2);
});

test('runs of a group that reused its training all count; a run alone counts as its own', () => {
  const reused = group.map((r) =>
    run((r.info.end_time! - r.info.start_time!) / 1000, {
      ...Object.fromEntries(r.data.metrics.map((m) => [m.key, m.value])),
      'model.trained': 0,
      'time.train_s': 0,
    }),
  );
  assert.equal(costsFromRuns(reused).startupS, (9.5 - 3 + (10 - 3)) / 2);
  const alone = run(6, { 'eval.images': 4, 'time.eval_s': 1, 'time.total_s': 5.5 });
  assert.equal(costsFromRuns([...reused, alone]).startupS, 6 - 1);
});
