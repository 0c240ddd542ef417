import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runPool, type TrialOutcome } from '../../src/runner/executors/pool.js';
import type { Trial } from '../../src/runner/spec-types.js';

const trial = (id: string, trainingKey: string): Trial =>
  ({ id, trainingKey, index: 0, seed: 0, point: {}, origins: {} }) as unknown as Trial;

/** Runs the pool with trials that take `ms` each and records start/end order and overlap. */
async function simulate(
  trials: Trial[],
  workers: number,
  fail: Set<string> = new Set(),
  failFast = false,
) {
  const events: string[] = [];
  const active = new Set<string>();
  let maxActive = 0;
  const result = await runPool(
    trials.map((t) => [t]),
    { workers, failFast },
    async ([t], worker): Promise<TrialOutcome[]> => {
      for (const other of active)
        assert.notEqual(
          other.split('@')[1],
          t.trainingKey,
          `${t.id} started while ${other} shares its training key`,
        );
      active.add(`${t.id}@${t.trainingKey}`);
      maxActive = Math.max(maxActive, active.size);
      assert.ok(worker >= 0 && worker < workers);
      events.push(`start ${t.id}`);
      await new Promise((r) => setTimeout(r, 5));
      active.delete(`${t.id}@${t.trainingKey}`);
      events.push(`end ${t.id}`);
      if (t.id === 'boom') throw new Error('exploded');
      return [{ trial: t, status: fail.has(t.id) ? 'FAILED' : 'FINISHED', seconds: 0 }];
    },
  );
  return { result, events, maxActive };
}

test('trials sharing a training key never run at once; new trainings go first', async () => {
  const trials = [
    trial('a1', 'A'),
    trial('a2', 'A'),
    trial('a3', 'A'),
    trial('b1', 'B'),
    trial('b2', 'B'),
    trial('c1', 'C'),
  ];
  const { result, events, maxActive } = await simulate(trials, 3);
  assert.equal(result.outcomes.length, 6);
  assert.equal(maxActive, 3);
  // The first three starts are one trial per training key.
  assert.deepEqual(events.filter((e) => e.startsWith('start')).slice(0, 3), [
    'start a1',
    'start b1',
    'start c1',
  ]);
  // Within a key, the expansion order is kept (the first trains, the rest reuse).
  const starts = events.filter((e) => e.startsWith('start')).map((e) => e.slice(6));
  assert.ok(
    starts.indexOf('a1') < starts.indexOf('a2') && starts.indexOf('a2') < starts.indexOf('a3'),
  );
});

test('one worker runs everything in order; a failure does not stop the others', async () => {
  const trials = [trial('a1', 'A'), trial('boom', 'B'), trial('a2', 'A'), trial('c1', 'C')];
  const { result } = await simulate(trials, 1, new Set(['c1']));
  assert.deepEqual(
    result.outcomes.map((o) => `${o.trial.id}:${o.status}`),
    ['a1:FINISHED', 'boom:FAILED', 'c1:FAILED', 'a2:FINISHED'],
  );
  assert.match(result.outcomes[1].reason ?? '', /exploded/);
  assert.equal(result.notStarted.length, 0);
});

test('fail-fast starts nothing after the first failure', async () => {
  const trials = [trial('a1', 'A'), trial('b1', 'B'), trial('c1', 'C'), trial('d1', 'D')];
  const { result } = await simulate(trials, 1, new Set(['b1']), true);
  assert.deepEqual(
    result.outcomes.map((o) => o.trial.id),
    ['a1', 'b1'],
  );
  assert.deepEqual(
    result.notStarted.map((t) => t.id),
    ['c1', 'd1'],
  );
});

test('an aborted signal starts nothing', async () => {
  const controller = new AbortController();
  controller.abort();
  const result = await runPool(
    [[trial('a1', 'A')]],
    { workers: 2, signal: controller.signal },
    async () => assert.fail('must not start'),
  );
  assert.deepEqual(
    result.notStarted.map((t) => t.id),
    ['a1'],
  );
});

test('a job of several trials (an evaluation group) runs once and gives one outcome per trial', async () => {
  const starts: string[] = [];
  const result = await runPool(
    [
      [trial('a1', 'A'), trial('a2', 'A')],
      [trial('a3', 'A')],
      [trial('boom', 'B'), trial('b2', 'B')],
    ],
    { workers: 2 },
    async (job) => {
      starts.push(job.map((t) => t.id).join('+'));
      await new Promise((r) => setTimeout(r, 5));
      if (job[0].id === 'boom') throw new Error('exploded');
      return job.map((t) => ({ trial: t, status: 'FINISHED' as const, seconds: 0 }));
    },
  );
  assert.deepEqual(starts, ['a1+a2', 'boom+b2', 'a3']);
  assert.deepEqual(result.outcomes.map((o) => `${o.trial.id}:${o.status}`).sort(), [
    'a1:FINISHED',
    'a2:FINISHED',
    'a3:FINISHED',
    'b2:FAILED',
    'boom:FAILED',
  ]);
});
