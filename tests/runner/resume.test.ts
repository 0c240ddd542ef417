import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extendSeeds } from '../../src/runner/reruns.js';
import { isOrphan, selectTrials, type TrialHistory } from '../../src/runner/resume.js';
import type { Trial } from '../../src/runner/spec-types.js';
import type { Run, RunStatus } from '../../src/tracking/types.js';

const run = (status: RunStatus, tags: Record<string, string>): Run => ({
  info: { run_id: 'r', experiment_id: '1', status, artifact_uri: '', lifecycle_stage: 'active' },
  data: {
    metrics: [],
    params: [],
    tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
  },
});

test('a RUNNING run is an orphan only when its runner on this host is gone', () => {
  const alive = (pid: number) => pid === 42;
  assert.equal(
    isOrphan(run('RUNNING', { 'vcp.host': 'h', 'vcp.runner_pid': '41' }), 'h', alive),
    true,
  );
  assert.equal(
    isOrphan(run('RUNNING', { 'vcp.host': 'h', 'vcp.runner_pid': '42' }), 'h', alive),
    false,
  );
  assert.equal(
    isOrphan(run('RUNNING', { 'vcp.host': 'other', 'vcp.runner_pid': '41' }), 'h', alive),
    false,
  );
  assert.equal(isOrphan(run('RUNNING', {}), 'h', alive), false);
  assert.equal(
    isOrphan(run('FINISHED', { 'vcp.host': 'h', 'vcp.runner_pid': '41' }), 'h', alive),
    false,
  );
});

test('selection: FINISHED skipped; KILLED, FAILED and new trials all run', () => {
  const trials = ['done', 'killed', 'failed', 'new'].map((id) => ({ id }) as Trial);
  const history: TrialHistory = {
    finished: new Set(['done']),
    latest: new Map([
      ['done', { status: 'FINISHED', runId: '1' }],
      ['killed', { status: 'KILLED', runId: '2' }],
      ['failed', { status: 'FAILED', runId: '3' }],
    ]),
  };
  const selection = selectTrials(trials, history);
  assert.deepEqual(
    selection.toRun.map((t) => t.id),
    ['killed', 'failed', 'new'],
  );
  assert.deepEqual(
    selection.finished.map((t) => t.id),
    ['done'],
  );
});

test('rerun seeds: a count continues consecutively, a list adds first + 1000·k', () => {
  assert.equal(extendSeeds([333, 334], 2, 4), 4);
  assert.equal(extendSeeds([333], undefined, 3), 3);
  assert.deepEqual(extendSeeds([7, 11], [7, 11], 4), [7, 11, 2007, 3007]);
  assert.deepEqual(extendSeeds([0, 1000], [0, 1000], 3), [0, 1000, 2000]);
});

test('rerun --seeds 3 on the quickstart keeps every existing trial id and adds one seed per point', async () => {
  const { loadSpec } = await import('../../src/runner/spec.js');
  const { loadSpecWithSeeds } = await import('../../src/runner/reruns.js');
  const file = new URL('../../experiments/quickstart.yaml', import.meta.url).pathname;
  const original = await loadSpec(file);
  const { spec, added } = await loadSpecWithSeeds(file, original.seeds.length + 1);
  assert.deepEqual(added, [original.seeds.at(-1)! + 1]);
  assert.equal(spec.file, original.file);
  const ids = new Set(spec.trials.map((t) => t.id));
  for (const t of original.trials) assert.ok(ids.has(t.id), `trial ${t.id} keeps its id`);
  assert.equal(
    spec.trials.length,
    (original.trials.length / original.seeds.length) * (original.seeds.length + 1),
  );
});
