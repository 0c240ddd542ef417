// Auth headers and the tracking-URI choice. A tiny node:http server records what the client
// sends (the real MLflow server ignores credentials unless run with an auth app).
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { MlflowClient } from '../../src/tracking/client.js';
import { openTracking } from '../../src/tracking/connect.js';
import { authHeaders } from '../../src/tracking/http.js';

async function recordingServer() {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end('{"experiment":{"experiment_id":"7","name":"e","lifecycle_stage":"active"}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('MLFLOW_TRACKING_TOKEN is sent as a Bearer token, USERNAME/PASSWORD as Basic auth', async (t) => {
  const fake = await recordingServer();
  t.after(() => fake.close());
  const bearer = new MlflowClient({
    trackingUri: fake.url,
    env: { MLFLOW_TRACKING_TOKEN: 'tok-123', MLFLOW_TRACKING_USERNAME: 'ignored' },
  });
  assert.equal((await bearer.getExperimentByName('e'))?.experiment_id, '7');
  assert.equal(fake.seen.at(-1)!.authorization, 'Bearer tok-123');

  const basic = new MlflowClient({
    trackingUri: fake.url,
    env: { MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: 'p:ss w' },
  });
  await basic.getExperimentByName('e');
  assert.equal(
    fake.seen.at(-1)!.authorization,
    `Basic ${Buffer.from('alice:p:ss w').toString('base64')}`,
  );
  await basic.logBatch('r1', {
    metrics: [{ key: 'm', value: 1, step: 0, timestamp: 0 }],
    params: [],
    tags: [],
  });
  assert.equal(
    fake.seen.at(-1)!.authorization,
    `Basic ${Buffer.from('alice:p:ss w').toString('base64')}`,
  );
  assert.equal(fake.seen.at(-1)!['content-type'], 'application/json');

  const none = new MlflowClient({ trackingUri: fake.url, env: {} });
  await none.getExperimentByName('e');
  assert.equal(fake.seen.at(-1)!.authorization, undefined);
  assert.deepEqual(authHeaders({}), {});
});

test('MLFLOW_TRACKING_URI picks the server; a non-http URI is refused with what to do', async (t) => {
  const fake = await recordingServer();
  t.after(() => fake.close());
  const tracking = await openTracking({ env: { MLFLOW_TRACKING_URI: fake.url + '/' } });
  assert.equal(tracking.client.trackingUri, fake.url);
  assert.equal(tracking.server, undefined);
  await tracking.close();
  await assert.rejects(
    openTracking({ env: { MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' } }),
    /MLFLOW_TRACKING_URI "file:\/\/\/tmp\/mlruns" is not an http\(s\) MLflow server/,
  );
  assert.throws(
    () => new MlflowClient({ trackingUri: 'databricks', env: {} }),
    /not an http\(s\) URL/,
  );
});

test('a missing MLflow install names the command to run', async () => {
  await assert.rejects(
    openTracking({
      env: {
        VCP_EXP_STATE_DIR: '/tmp/vcp-no-mlflow-state',
        VCP_EXP_MLFLOW: '/nonexistent/bin/mlflow',
      },
    }),
    (e: Error & { hint?: string }) => {
      assert.match(e.message, /MLflow is not installed/);
      assert.match(e.hint ?? '', /npm run setup:mlflow/);
      return true;
    },
  );
});
