// Integration tests of the MLflow client, artifacts, RunLogger and layout against a real
// `mlflow server` (started once for this file through the managed-server code).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import { CREATE_TOKEN_TAG, MlflowClient } from '../../src/tracking/client.js';
import { runLogged } from '../../src/tracking/exit.js';
import { MlflowApiError } from '../../src/tracking/http.js';
import { ExperimentLayout, flattenConfig, TAGS } from '../../src/tracking/layout.js';
import { RunLogger } from '../../src/tracking/run-logger.js';
import { startLocalServer } from '../../src/tracking/server.js';
import type { Metric } from '../../src/tracking/types.js';
import { asRecord } from '../../src/tracking/wire.js';
import { FAST_RETRY, python, startProxy, startTestServer } from './helpers.js';

const env = await startTestServer('client');
after(async () => {
  if (env.ok) await env.cleanup();
});
const scratch = mkdtempSync(join(tmpdir(), 'vcp-mlflow-client-files-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

test("params, metrics with steps, tags and artifacts read back equal; MLflow's Python client agrees", async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = env.client();
  const experimentId = await client.getOrCreateExperiment('readback');
  assert.equal(await client.getOrCreateExperiment('readback'), experimentId);
  const run = await client.createRun({
    experimentId,
    runName: 'readback-run',
    tags: { 'vcp.trial_id': 't-1' },
  });
  assert.equal(run.info.status, 'RUNNING');
  assert.match(run.info.artifact_uri, /^mlflow-artifacts:/);

  const logger = new RunLogger({
    client,
    runId: run.info.run_id,
    journalDir: join(env.stateDir, 'journal'),
    flushEvery: 7,
  });
  const params = {
    lr: 0.001,
    'model.layers': '[6,12,18,24]',
    'train.epochs': 3,
    'train.augment': true,
  };
  logger.logParams(params);
  logger.setTags({ 'vcp.backend': 'wasm', 'vcp.device': 'cpu' });
  const logged: Metric[] = [];
  for (let step = 0; step < 25; step++) {
    const value = Math.exp(-step / 10) + step * 1e-7;
    logger.logMetric('train.loss', value, step, 1_700_000_000_000 + step);
    logged.push({ key: 'train.loss', value, step, timestamp: 1_700_000_000_000 + step });
  }
  logger.logMetric('mvtec.pixel_auroc', 0.9123456789012345, 3);
  logger.logMetric('weird.value', NaN, 0);
  const file = join(scratch, 'config.json');
  writeFileSync(file, JSON.stringify({ hello: 'world', n: [1, 2, 3] }));
  await logger.logArtifact(file, 'config');
  const nested = join(scratch, 'csv');
  mkdirSync(join(nested, 'deep'), { recursive: true });
  writeFileSync(join(nested, 'a.csv'), 'x,y\n1,2\n');
  writeFileSync(join(nested, 'deep', 'b.csv'), 'p,q\n3,4\n');
  await new ArtifactStore(client).logArtifacts(run.info.run_id, nested, 'tables');
  assert.deepEqual(await logger.end('FINISHED'), { delivered: true });

  const back = await client.getRun(run.info.run_id);
  assert.equal(back.info.status, 'FINISHED');
  assert.ok(back.info.end_time! >= back.info.start_time!);
  assert.deepEqual(
    asRecord(back.data.params),
    Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])),
  );
  const tags = asRecord(back.data.tags);
  assert.equal(tags['vcp.backend'], 'wasm');
  assert.equal(tags['vcp.trial_id'], 't-1');
  assert.equal(tags['mlflow.runName'], 'readback-run');
  assert.deepEqual(await client.getMetricHistory(run.info.run_id, 'train.loss'), logged);
  assert.equal(
    back.data.metrics.find((m) => m.key === 'mvtec.pixel_auroc')!.value,
    0.9123456789012345,
  );
  assert.ok(Number.isNaN(back.data.metrics.find((m) => m.key === 'weird.value')!.value));

  const artifacts = new ArtifactStore(client);
  const files = (await artifacts.listFiles(run.info.run_id)).map((f) => [f.path, f.file_size]);
  assert.deepEqual(files.sort(), [
    ['config/config.json', readFileSync(file).length],
    ['tables/a.csv', 8],
    ['tables/deep/b.csv', 8],
  ]);
  const out = join(scratch, 'download');
  await artifacts.downloadDir(run.info.run_id, '', out);
  assert.equal(readFileSync(join(out, 'config/config.json'), 'utf8'), readFileSync(file, 'utf8'));
  assert.equal(readFileSync(join(out, 'tables/deep/b.csv'), 'utf8'), 'p,q\n3,4\n');

  // An independent reader: MLflow's own Python client.
  const code = `
import json, sys, mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
df = mlflow.search_runs(experiment_names=["readback"])
c = MlflowClient()
hist = [[m.step, m.value, m.timestamp] for m in c.get_metric_history(sys.argv[2], "train.loss")]
def clean(v):
    if isinstance(v, float) and v != v: return "NaN"
    return v if isinstance(v, (str, int, float, type(None))) else str(v)
rows = [{k: clean(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
print(json.dumps({"runs": rows, "history": hist,
                  "artifacts": sorted(f.path for f in c.list_artifacts(sys.argv[2], "tables"))}))`;
  const py = JSON.parse(python(code, [env.server.url, run.info.run_id])) as {
    runs: Array<Record<string, unknown>>;
    history: Array<[number, number, number]>;
    artifacts: string[];
  };
  assert.equal(py.runs.length, 1);
  const row = py.runs[0];
  assert.equal(row.run_id, run.info.run_id);
  assert.equal(row.status, 'FINISHED');
  for (const [k, v] of Object.entries(params)) assert.equal(row[`params.${k}`], String(v));
  assert.equal(row['metrics.train.loss'], logged.at(-1)!.value);
  assert.equal(row['metrics.mvtec.pixel_auroc'], 0.9123456789012345);
  assert.equal(row['tags.vcp.backend'], 'wasm');
  assert.equal(row['metrics.weird.value'], 'NaN');
  assert.deepEqual(
    py.history,
    logged.map((m) => [m.step, m.value, m.timestamp]),
  );
  assert.deepEqual(py.artifacts, ['tables/a.csv', 'tables/deep']);
});

test('log-batch splitting: 2500 metrics, 250 params and 250 tags arrive in 1000/100/100-sized requests', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const proxy = await startProxy(env.server.url, () => 'forward');
  t.after(() => proxy.close());
  const client = new MlflowClient({ trackingUri: proxy.url, env: {} });
  const experimentId = await client.getOrCreateExperiment('splitting');
  const run = await client.createRun({ experimentId });
  const metrics = Array.from({ length: 2500 }, (_, i) => ({
    key: `m${i % 5}`,
    value: i / 7,
    step: Math.floor(i / 5),
    timestamp: 1_000 + i,
  }));
  const params = Array.from({ length: 250 }, (_, i) => ({
    key: `p.${i}`,
    value: `v${i}`.repeat(1 + (i % 3)),
  }));
  const tags = Array.from({ length: 250 }, (_, i) => ({ key: `t.${i}`, value: String(i) }));
  await client.logBatch(run.info.run_id, { metrics, params, tags });

  const batches = proxy.seen
    .filter((r) => r.path.endsWith('/runs/log-batch'))
    .map((r) => JSON.parse(r.body) as { metrics: unknown[]; params: unknown[]; tags: unknown[] });
  for (const b of batches) {
    assert.ok(b.metrics.length <= 1000 && b.params.length <= 100 && b.tags.length <= 100);
    assert.ok(b.metrics.length + b.params.length + b.tags.length <= 1000);
  }
  assert.equal(
    batches.reduce((s, b) => s + b.metrics.length, 0),
    2500,
  );
  assert.equal(batches.length, 3); // each request: up to 100 params + 100 tags, then metrics up to 1000 items

  const back = await client.getRun(run.info.run_id);
  assert.deepEqual(asRecord(back.data.params), asRecord(params));
  assert.equal(back.data.tags.filter((x) => x.key.startsWith('t.')).length, 250);
  for (let k = 0; k < 5; k++) {
    const history = await client.getMetricHistory(run.info.run_id, `m${k}`, { pageSize: 128 });
    assert.deepEqual(
      history,
      metrics.filter((m) => m.key === `m${k}`),
    );
  }
});

test('paging: search runs and metric history follow page tokens to the end', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = env.client();
  const experimentId = await client.getOrCreateExperiment('paging');
  for (let i = 0; i < 7; i++)
    await client.createRun({
      experimentId,
      runName: `r${i}`,
      startTime: 10_000 + i,
      tags: { i: String(i) },
    });
  const all = await client.searchRuns({
    experimentIds: [experimentId],
    pageSize: 3,
    orderBy: ['attributes.start_time ASC'],
  });
  assert.deepEqual(
    all.map((r) => r.info.run_name),
    ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6'],
  );
  const some = await client.searchRuns({
    experimentIds: [experimentId],
    pageSize: 2,
    maxResults: 5,
    filter: "tags.i != '3'",
  });
  assert.equal(some.length, 5);
  assert.ok(some.every((r) => asRecord(r.data.tags).i !== '3'));

  const runId = all[0].info.run_id;
  const points = Array.from({ length: 1000 }, (_, i) => ({
    key: 'h',
    value: Math.sin(i),
    step: i,
    timestamp: 5_000 + i,
  }));
  await client.logBatch(runId, { metrics: points, params: [], tags: [] });
  assert.deepEqual(await client.getMetricHistory(runId, 'h', { pageSize: 99 }), points);
  assert.equal(
    (await client.searchExperiments({ pageSize: 1 })).filter((e) => e.name === 'paging').length,
    1,
  );
});

test('server errors surface with their error_code; 5xx is retried, 4xx is not', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  let failures = 2;
  const proxy = await startProxy(env.server.url, (_m, path) => {
    if (path.endsWith('/runs/get') && failures > 0) {
      failures--;
      return { status: 500, body: '{"error_code":"INTERNAL_ERROR","message":"injected"}' };
    }
    return 'forward';
  });
  t.after(() => proxy.close());
  const client = new MlflowClient({ trackingUri: proxy.url, env: {}, retry: FAST_RETRY });
  const experimentId = await client.getOrCreateExperiment('errors');
  const run = await client.createRun({ experimentId });
  assert.equal((await client.getRun(run.info.run_id)).info.run_id, run.info.run_id);
  assert.equal(proxy.seen.filter((r) => r.path.endsWith('/runs/get')).length, 3);

  await client.logBatch(run.info.run_id, {
    metrics: [],
    params: [{ key: 'lr', value: '1' }],
    tags: [],
  });
  const before = proxy.seen.length;
  await assert.rejects(
    client.logBatch(run.info.run_id, {
      metrics: [],
      params: [{ key: 'lr', value: '2' }],
      tags: [],
    }),
    (e: unknown) => {
      assert.ok(e instanceof MlflowApiError);
      assert.equal(e.errorCode, 'INVALID_PARAMETER_VALUE');
      assert.equal(e.status, 400);
      assert.match(e.message, /lr/);
      return true;
    },
  );
  assert.equal(proxy.seen.length, before + 1);
  await assert.rejects(client.getRun('0123456789abcdef0123456789abcdef'), {
    errorCode: 'RESOURCE_DOES_NOT_EXIST',
    status: 404,
  });
  assert.equal(await client.getExperimentByName('no such experiment'), undefined);
  await assert.rejects(
    client.logBatch(run.info.run_id, {
      metrics: [],
      params: [{ key: 'big', value: 'x'.repeat(6001) }],
      tags: [],
    }),
    /6000/,
  );
});

test('an answer lost after the server applied a request is never applied twice', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  let batches = 0;
  let creates = 0;
  const proxy = await startProxy(env.server.url, (_m, path) => {
    if (path.endsWith('/runs/create') && ++creates === 1) return 'drop-answer';
    if (path.endsWith('/runs/log-batch') && ++batches % 3 === 2) return 'drop-answer';
    return 'forward';
  });
  t.after(() => proxy.close());
  const client = new MlflowClient({ trackingUri: proxy.url, env: {}, retry: FAST_RETRY });
  const experimentId = await client.getOrCreateExperiment('exactly-once');
  const run = await client.createRun({ experimentId, runName: 'once' });
  const runs = await env.client().searchRuns({ experimentIds: [experimentId] });
  assert.equal(runs.length, 1, 'the retried runs/create made a second run');
  assert.equal(asRecord(runs[0].data.tags)[CREATE_TOKEN_TAG] !== undefined, true);

  const logger = new RunLogger({
    client,
    runId: run.info.run_id,
    journalDir: join(env.stateDir, 'journal'),
    flushEvery: 50,
    onJournal: () => {},
  });
  for (let step = 0; step < 300; step++)
    logger.logMetric('acc', step / 300, step, 2_000_000 + step);
  await logger.end();
  const forwarded = proxy.seen
    .filter((r) => r.path.endsWith('/runs/log-batch'))
    .flatMap((r) => (JSON.parse(r.body) as { metrics: Metric[] }).metrics.map((m) => `${m.step}`));
  assert.ok(batches >= 6);
  assert.equal(forwarded.length, 300, 'a batch the server had applied was sent again');
  assert.equal(new Set(forwarded).size, 300);
  const history = await client.getMetricHistory(run.info.run_id, 'acc');
  assert.deepEqual(
    history.map((m) => m.step),
    Array.from({ length: 300 }, (_, i) => i),
  );
});

test('layout: sweep and trial runs, flattened params, findFinishedTrial and listTrialRuns; runLogged marks failures', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const layout = new ExperimentLayout(env.client(), { journalDir: join(env.stateDir, 'journal') });
  const experimentId = await layout.experimentFor('spec-quickstart');
  const identity = { specHash: 'sh1', gitCommit: 'abc123', backend: 'wasm', device: 'cpu' };
  const sweep = await layout.startSweepRun({ ...identity, experimentId, runName: 'sweep' });
  const config = {
    model: { backbone: 'ViT-L-14', layers: [6, 12, 18, 24] },
    train: { lr: 0.0001, epochs: 1 },
    seed: 7,
  };
  assert.deepEqual(flattenConfig(config), {
    'model.backbone': 'ViT-L-14',
    'model.layers': '[6,12,18,24]',
    'train.lr': '0.0001',
    'train.epochs': '1',
    seed: '7',
  });
  const ok = await layout.startTrialRun({
    ...identity,
    experimentId,
    parentRunId: sweep.runId,
    trialId: 'trial-a',
    config,
  });
  await runLogged(ok, async (l) => l.logMetric('loss', 0.5, 0));
  const bad = await layout.startTrialRun({
    ...identity,
    experimentId,
    parentRunId: sweep.runId,
    trialId: 'trial-b',
    config,
  });
  await assert.rejects(
    runLogged(bad, async () => Promise.reject(new Error('out of memory in epoch 3'))),
    /out of memory/,
  );
  await sweep.end();

  const found = await layout.findFinishedTrial(experimentId, 'trial-a');
  assert.equal(found?.info.run_id, ok.runId);
  assert.equal(await layout.findFinishedTrial(experimentId, 'trial-b'), undefined);
  const tags = asRecord(found!.data.tags);
  assert.equal(tags[TAGS.parentRunId], sweep.runId);
  assert.deepEqual(
    [tags[TAGS.specHash], tags[TAGS.gitCommit], tags[TAGS.backend], tags[TAGS.device]],
    ['sh1', 'abc123', 'wasm', 'cpu'],
  );
  assert.equal(asRecord(found!.data.params)['model.layers'], '[6,12,18,24]');
  const failed = await layout.listTrialRuns(experimentId, { status: 'FAILED' });
  assert.deepEqual(
    failed.map((r) => r.info.run_id),
    [bad.runId],
  );
  assert.match(asRecord(failed[0].data.tags)[TAGS.failureReason], /out of memory in epoch 3/);
  assert.equal((await layout.listTrialRuns(experimentId)).length, 2);
  assert.equal(
    (await layout.listTrialRuns(experimentId, { parentRunId: sweep.runId, status: 'FINISHED' }))
      .length,
    1,
  );
});

test('runs whose artifact URI is a local file: path get their artifacts by direct copy', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = env.client();
  const root = join(scratch, 'file-store');
  const experimentId = await client.createExperiment('file-artifacts', {
    artifactLocation: `file://${root}`,
  });
  const run = await client.createRun({ experimentId });
  assert.equal(run.info.artifact_uri, `file://${root}/${run.info.run_id}/artifacts`);
  const file = join(scratch, 'weights.bin');
  writeFileSync(file, Buffer.from([1, 2, 3, 250]));
  const store = new ArtifactStore(client);
  assert.equal(await store.logArtifact(run.info.run_id, file, 'ckpt'), 'ckpt/weights.bin');
  assert.deepEqual(
    readFileSync(join(root, run.info.run_id, 'artifacts', 'ckpt', 'weights.bin')),
    readFileSync(file),
  );
  assert.deepEqual(await store.listFiles(run.info.run_id), [
    { path: 'ckpt/weights.bin', is_dir: false, file_size: 4 },
  ]);
  await store.download(run.info.run_id, 'ckpt/weights.bin', join(scratch, 'back.bin'));
  assert.deepEqual(readFileSync(join(scratch, 'back.bin')), readFileSync(file));
});

test('the managed server is reused through its state file, not started twice', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const again = await startLocalServer({ stateDir: env.stateDir });
  assert.equal(again.reused, true);
  assert.equal(again.url, env.server.url);
  assert.equal(again.pid, env.server.pid);
  await again.stop(); // a reused server is left running
  assert.equal(await env.client().isReachable(), true);
});
