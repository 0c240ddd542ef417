/**
 * Issue 12, the mechanisms under cases 2, 4, 6 and 13, one by one: the content hashes of
 * checkpoints and feature-cache entries (a damaged shape in a header included), the logged
 * marker that makes a checkpoint reusable, the run lock's staleness rules, and how a full
 * disk is recognised (ENOSPC from Node, sharp's message, SQLite's answer through MLflow, which
 * is not retried for a minute).
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { diskFullReason, isDiskFull, UserError } from '../../src/errors.js';
import {
  CHECKPOINT_FORMAT,
  CorruptCheckpointError,
  loadCheckpoint,
  writeCheckpointFiles,
  type CheckpointConfig,
} from '../../src/model/checkpoint.js';
import { encodeSafetensors } from '../../src/io/safetensors.js';
import { FeatureCache } from '../../src/model/feature-cache.js';
import { markLogged, reusableCheckpoint } from '../../src/runner/checkpoint-reuse.js';
import { acquireRunLock, isStale, processStartTime } from '../../src/runner/run-lock.js';
import { MlflowClient } from '../../src/tracking/client.js';
import { MlflowApiError } from '../../src/tracking/http.js';

const work = mkdtempSync(join(tmpdir(), 'vcp-integrity-'));
after(() => rmSync(work, { recursive: true, force: true }));

const config = (): CheckpointConfig => ({
  format: CHECKPOINT_FORMAT,
  method: 'vcp-clip',
  config: {},
  clip: { sha256: 'x', name: 'tiny' },
  vcp_exp_version: 'test',
  created: new Date(0).toISOString(),
});
const tensors = () =>
  new Map([
    ['a', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['b', { shape: [4], data: Float32Array.from([7, 8, 9, 10]) }],
  ]);

function overwrite(file: string, at: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

test('case 4: a checkpoint records the sha256 of its weights; a changed or truncated file is a CorruptCheckpointError', async () => {
  const dir = join(work, 'ckpt');
  await writeCheckpointFiles(dir, tensors(), config());
  const saved = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as CheckpointConfig;
  assert.match(saved.weights_sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.deepEqual([...(await loadCheckpoint(dir)).tensors.get('b')!.data], [7, 8, 9, 10]);

  const weights = join(dir, 'model.safetensors');
  const size = statSync(weights).size;
  overwrite(weights, size - 8, Buffer.from(new Float32Array([0.5, 0.5]).buffer)); // same size, valid floats
  await assert.rejects(loadCheckpoint(dir), (e: unknown) => {
    assert.ok(e instanceof CorruptCheckpointError);
    assert.match(
      e.message,
      /model\.safetensors: sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in config\.json: the file was changed or damaged after it was written/,
    );
    return true;
  });
  truncateSync(weights, 20);
  await assert.rejects(loadCheckpoint(dir), CorruptCheckpointError);
});

test('case 13: a checkpoint is reusable only once marked logged, and only while its files match the marker', async () => {
  const dir = join(work, 'reuse');
  assert.deepEqual(await reusableCheckpoint(dir), { reuse: false }, 'none yet');
  await writeCheckpointFiles(dir, tensors(), config());
  const unlogged = await reusableCheckpoint(dir);
  assert.equal(unlogged.reuse, false);
  assert.match(String((unlogged as { discard?: string }).discard), /saved but never logged/);
  await markLogged(dir, 'run-1');
  assert.deepEqual(await reusableCheckpoint(dir), { reuse: true, runId: 'run-1' });
  const text = readFileSync(join(dir, 'config.json'), 'utf8');
  writeFileSync(join(dir, 'config.json'), text.replace('"tiny"', '"tinY"')); // one letter
  const changed = await reusableCheckpoint(dir);
  assert.match(
    String((changed as { discard?: string }).discard),
    /^config\.json has sha256 .* \(changed or damaged on disk\)$/,
  );
  // Saving again replaces the directory, marker included: not reusable until logged again.
  await writeCheckpointFiles(dir, tensors(), config());
  assert.equal((await reusableCheckpoint(dir)).reuse, false);
});

test('case 4: a feature-cache entry whose header shape was changed (same length, valid JSON) is corrupt, not served', async () => {
  const cache = new FeatureCache({ dir: join(work, 'features') });
  await cache.put(
    'k',
    new Map([['dense', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]),
  );
  const file = join(cache.dir, 'k.safetensors');
  const bytes = readFileSync(file);
  const at = bytes.indexOf('"shape":[2,3]');
  assert.ok(at > 0);
  bytes.write('"shape":[3,2]', at, 'latin1');
  writeFileSync(file, bytes);
  const fresh = new FeatureCache({ dir: cache.dir });
  assert.equal(await fresh.get('k'), undefined);
  assert.equal(fresh.stats().corrupt, 1);
  // An entry of the older format (data-only checksum) is recomputed, without calling it damaged.
  const old = encodeSafetensors(
    new Map([['dense', { shape: [1], data: Float32Array.from([1]) }]]),
    {
      metadata: { format: 'vcp-exp feature cache v1', checksum: '0'.repeat(64) },
    },
  );
  writeFileSync(join(cache.dir, 'old.safetensors'), old);
  assert.equal(await fresh.get('old'), undefined);
  assert.deepEqual([fresh.stats().corrupt, fresh.stats().misses], [1, 2]);
});

test('case 2: the run lock: a live holder refuses with its pid, host and command; a dead or reused pid is stale', () => {
  const stateDir = join(work, 'lock-state');
  const log: string[] = [];
  const first = acquireRunLock({
    stateDir,
    experiment: 'e/1',
    command: 'vcp-exp run a.yaml',
    log: (l) => log.push(l),
  });
  assert.throws(
    () =>
      acquireRunLock({
        stateDir,
        experiment: 'e/1',
        command: 'vcp-exp run a.yaml',
        log: (l) => log.push(l),
      }),
    (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(
        e.message,
        new RegExp(
          `another vcp-exp runner holds experiment "e/1" in \\S+: pid ${process.pid} on ${hostname()}, since \\S+ \\(vcp-exp run a\\.yaml\\)`,
        ),
      );
      return true;
    },
  );
  // Another experiment is another lock.
  acquireRunLock({ stateDir, experiment: 'e_1', command: 'x', log: () => undefined }).release();
  first.release();
  acquireRunLock({ stateDir, experiment: 'e/1', command: 'again', log: () => undefined }).release();
  assert.deepEqual(log, []);

  const parent = { pid: process.ppid, host: hostname(), since: '', command: '' };
  assert.equal(
    isStale({ ...parent, processStart: processStartTime(process.ppid) }),
    false,
    'alive',
  );
  assert.equal(
    isStale({ ...parent, processStart: 'not-its-start' }),
    true,
    'pid reused by another process',
  );
  assert.equal(isStale({ ...parent, pid: 2 ** 22 + 999 }), true, 'dead');
  assert.equal(
    isStale({ ...parent, host: 'another-host', pid: 2 ** 22 + 999 }),
    false,
    'another host: never',
  );
});

test('case 6: a full disk is recognised from Node, sharp and SQLite-through-MLflow errors', async () => {
  const node = Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    path: '/s/features/k.tmp-1',
  });
  assert.equal(
    diskFullReason(node),
    'disk full at /s/features/k.tmp-1: ENOSPC (no space left on device)',
  );
  const sharp = new Error('/s/trials/r/a.png: write error\nsystem error: No space left on device');
  assert.equal(
    diskFullReason(sharp),
    'disk full at /s/trials/r/a.png: ENOSPC (no space left on device)',
  );
  const wrapped = new UserError('could not save', { cause: node });
  assert.ok(isDiskFull(wrapped));
  assert.equal(isDiskFull(new Error('ECONNREFUSED')), false);

  // An MLflow whose SQLite store is full answers 500: reported at once, not retried for ~30 s.
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    res.writeHead(500, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        error_code: 'INTERNAL_ERROR',
        message: '(sqlite3.OperationalError) database or disk is full',
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}`, env: {} });
    await assert.rejects(client.getRun('x'), (e: unknown) => {
      assert.ok(e instanceof MlflowApiError);
      assert.equal(
        diskFullReason(e),
        "disk full at the MLflow server's store: MLflow GET /api/2.0/mlflow/runs/get failed: INTERNAL_ERROR (HTTP 500): (sqlite3.OperationalError) database or disk is full",
      );
      return true;
    });
    assert.equal(requests, 1);
  } finally {
    server.close();
  }
});
