// Unit tests of the pure parts of tracking: batch limits and splitting, validation, backoff,
// artifact URIs and the journal's bookkeeping. No server needed.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifactLocation } from '../../src/tracking/artifacts.js';
import { LIMITS, splitBatch, truncateTagValue, validateBatch } from '../../src/tracking/batch.js';
import { backoffDelay } from '../../src/tracking/http.js';
import { RunJournal } from '../../src/tracking/journal.js';
import type { Batch } from '../../src/tracking/types.js';

const metric = (i: number) => ({ key: `m${i % 3}`, value: i, step: i, timestamp: i });

test('splitBatch packs within 1000 items, 100 params, 100 tags and keeps each kind in order', () => {
  const batch: Batch = {
    metrics: Array.from({ length: 2500 }, (_, i) => metric(i)),
    params: Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: String(i) })),
    tags: Array.from({ length: 130 }, (_, i) => ({ key: `t${i}`, value: String(i) })),
  };
  const chunks = splitBatch(batch);
  for (const c of chunks) {
    assert.ok(c.metrics.length <= LIMITS.metricsPerBatch);
    assert.ok(c.params.length <= LIMITS.paramsPerBatch);
    assert.ok(c.tags.length <= LIMITS.tagsPerBatch);
    assert.ok(c.metrics.length + c.params.length + c.tags.length <= LIMITS.entitiesPerBatch);
  }
  assert.equal(chunks.length, 3); // 2880 items: three full-ish requests
  assert.deepEqual(
    chunks.flatMap((c) => c.metrics),
    batch.metrics,
  );
  assert.deepEqual(
    chunks.flatMap((c) => c.params),
    batch.params,
  );
  assert.deepEqual(
    chunks.flatMap((c) => c.tags),
    batch.tags,
  );
  assert.deepEqual(splitBatch({ metrics: [], params: [], tags: [] }), []);
});

test('splitBatch keeps each request under the 1 MB body limit', () => {
  const tags = Array.from({ length: 100 }, (_, i) => ({
    key: `t${i}`,
    value: 'x'.repeat(LIMITS.tagValueLength),
  }));
  const params = Array.from({ length: 100 }, (_, i) => ({
    key: `p${i}`,
    value: 'y'.repeat(LIMITS.paramValueLength),
  }));
  const chunks = splitBatch({ metrics: [], params, tags });
  assert.ok(chunks.length >= 2);
  for (const c of chunks) assert.ok(JSON.stringify(c).length < 1_000_000);
  assert.equal(
    chunks.reduce((s, c) => s + c.tags.length + c.params.length, 0),
    200,
  );
});

test('validateBatch rejects what MLflow would, naming the entry', () => {
  const ok = {
    metrics: [metric(1)],
    params: [{ key: 'model.layers', value: '[6,12]' }],
    tags: [{ key: 'a/b:c d-e_f', value: '' }],
  };
  validateBatch(ok);
  const bad = (b: Partial<Batch>) => () =>
    validateBatch({ metrics: [], params: [], tags: [], ...b });
  assert.throws(
    bad({ params: [{ key: 'p', value: 'v'.repeat(6001) }] }),
    /param "p" is 6001 characters.*at most 6000/,
  );
  assert.throws(bad({ tags: [{ key: 't', value: 'v'.repeat(8001) }] }), /tag "t" is 8001/);
  assert.throws(bad({ params: [{ key: 'a,b', value: '1' }] }), /key "a,b" is invalid/);
  assert.throws(bad({ params: [{ key: '../x', value: '1' }] }), /invalid/);
  assert.throws(bad({ params: [{ key: 'k'.repeat(251), value: '1' }] }), /invalid/);
  assert.throws(
    bad({ metrics: [{ key: 'm', value: 1, step: 0.5, timestamp: 0 }] }),
    /must be integers/,
  );
  assert.equal(truncateTagValue('short'), 'short');
  const cut = truncateTagValue('z'.repeat(9000));
  assert.equal(cut.length, LIMITS.tagValueLength);
  assert.match(cut, /\[truncated\]$/);
});

test('backoff grows exponentially with jitter and stays under the cap', () => {
  const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(
    backoffDelay(policy, 0, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(policy, 0, () => 1),
    100,
  );
  assert.equal(
    backoffDelay(policy, 2, () => 1),
    400,
  );
  assert.equal(
    backoffDelay(policy, 8, () => 1),
    1000,
  );
  assert.equal(
    backoffDelay(policy, 8, () => 0),
    500,
  );
});

test('artifact URIs map to the mlflow-artifacts proxy path or a local directory', () => {
  assert.deepEqual(artifactLocation('mlflow-artifacts:/3/abc/artifacts'), {
    kind: 'proxy',
    root: '3/abc/artifacts',
  });
  assert.deepEqual(artifactLocation('mlflow-artifacts://127.0.0.1:5000/3/abc/artifacts'), {
    kind: 'proxy',
    root: '3/abc/artifacts',
  });
  assert.deepEqual(artifactLocation('file:///tmp/ml%20runs/1/abc/artifacts'), {
    kind: 'file',
    root: '/tmp/ml runs/1/abc/artifacts',
  });
  assert.deepEqual(artifactLocation('/srv/mlruns/1/abc/artifacts'), {
    kind: 'file',
    root: '/srv/mlruns/1/abc/artifacts',
  });
  assert.throws(() => artifactLocation('s3://bucket/x'), /not supported/);
});

test('the journal returns unacknowledged entries in order and survives a torn last line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vcp-journal-'));
  try {
    const j = new RunJournal(dir, 'run1');
    assert.equal(j.isEmpty, true);
    j.add([
      { t: 'batch', batch: { metrics: [metric(1)], params: [], tags: [] } },
      { t: 'batch', batch: { metrics: [metric(2)], params: [], tags: [] } },
    ]);
    j.add([{ t: 'end', status: 'FINISHED', endTime: 5 }]);
    j.ack(0);
    j.markUncertain(1);
    appendFileSync(j.path, '{"t":"ack","se'); // a crash in the middle of a write
    const again = new RunJournal(dir, 'run1'); // as a new process would see it
    assert.deepEqual(
      again.pending().map((e) => [e.seq, e.t, e.t === 'batch' ? Boolean(e.uncertain) : null]),
      [
        [1, 'batch', true],
        [2, 'end', null],
      ],
    );
    again.add([{ t: 'batch', batch: { metrics: [], params: [], tags: [] } }]);
    assert.equal(again.pending().at(-1)!.seq, 3);
    assert.deepEqual(RunJournal.runIds(dir), ['run1']);
    for (const e of again.pending()) again.ack(e.seq);
    again.removeIfDone();
    assert.deepEqual(RunJournal.runIds(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
