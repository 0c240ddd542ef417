// Nothing logged is lost: the server killed mid-run, and trial processes killed or crashing.
// Against a real `mlflow server` started once for this file (and restarted by one test).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MlflowClient } from '../../src/tracking/client.js';
import { replayJournals } from '../../src/tracking/delivery.js';
import { RunLogger } from '../../src/tracking/run-logger.js';
import { isAlive, startLocalServer, type LocalServer } from '../../src/tracking/server.js';
import { asRecord } from '../../src/tracking/wire.js';
import { FAST_RETRY, startTestServer } from './helpers.js';

const env = await startTestServer('resilience');
let server: LocalServer | undefined = env.ok ? env.server : undefined;
after(async () => {
  if (env.ok) {
    await server?.stop();
    await env.cleanup();
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('server SIGKILLed while 1000 points are logged, restarted on the same port and database: all arrive, in order, once', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = new MlflowClient({ trackingUri: env.server.url, env: {}, retry: FAST_RETRY });
  const experimentId = await client.getOrCreateExperiment('server-crash');
  const run = await client.createRun({ experimentId, runName: 'crash' });
  const journalDir = join(env.stateDir, 'journal');
  const messages: string[] = [];
  const logger = new RunLogger({
    client,
    runId: run.info.run_id,
    journalDir,
    flushEvery: 25,
    onJournal: (m) => messages.push(m),
  });
  logger.logParams({ lr: 0.01 });

  const killAt = 300;
  for (let step = 0; step < 1000; step++) {
    logger.logMetric('loss', 1 / (step + 1), step);
    if (step === killAt - 50) await logger.flush(); // the first 250 points are on the server for sure
    if (step > killAt - 50 && step % 25 === 24) await sleep(2); // later batches are in flight when the kill comes
    if (step === killAt) {
      process.kill(-server!.pid, 'SIGKILL');
      for (let i = 0; i < 100 && isAlive(server!.pid); i++) await sleep(50);
      assert.equal(isAlive(server!.pid), false);
    }
  }
  await logger.flush(); // server down: everything after the kill goes to the journal
  assert.ok(existsSync(logger.journal.path), 'nothing was journaled while the server was down');
  const journaled = logger.journal.pending().length;
  // 41 batches in all; the first 10 (and the params) were delivered before the kill
  assert.ok(journaled >= 1 && journaled <= 30, `${journaled} batches journaled`);
  assert.ok(messages.some((m) => m.includes('journaling')));

  server = await startLocalServer({ stateDir: env.stateDir, port: env.server.port });
  assert.equal(server.reused, false);
  assert.deepEqual(await logger.end('FINISHED'), { delivered: true });
  assert.equal(existsSync(logger.journal.path), false, 'the journal is removed once delivered');
  assert.ok(messages.some((m) => m.includes('delivered')));

  const history = await client.getMetricHistory(run.info.run_id, 'loss');
  assert.deepEqual(
    history.map((m) => m.step),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(
    history.map((m) => m.value),
    Array.from({ length: 1000 }, (_, i) => 1 / (i + 1)),
  );
  const back = await client.getRun(run.info.run_id);
  assert.equal(back.info.status, 'FINISHED');
  assert.equal(asRecord(back.data.params).lr, '0.01');
  console.log(
    `# ${journaled} batches journaled while the server was down, delivered after restart`,
  );
});

test('a run that ends while the server is down is completed later by replayJournals', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const upClient = new MlflowClient({ trackingUri: server!.url, env: {}, retry: FAST_RETRY });
  const experimentId = await upClient.getOrCreateExperiment('offline-end');
  const run = await upClient.createRun({ experimentId });
  const journalDir = join(env.stateDir, 'journal-offline');
  // A client pointed at a closed port stands for a server that is down.
  const down = new MlflowClient({
    trackingUri: 'http://127.0.0.1:9',
    env: {},
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  });
  const logger = new RunLogger({
    client: down,
    runId: run.info.run_id,
    journalDir,
    onJournal: () => {},
  });
  logger.logParams({ seed: 3 });
  for (let step = 0; step < 40; step++) logger.logMetric('acc', step / 40, step);
  const result = await logger.end('FINISHED');
  assert.equal(result.delivered, false);
  assert.equal(result.journal, logger.journal.path);
  assert.equal((await upClient.getRun(run.info.run_id)).info.status, 'RUNNING');

  assert.deepEqual(await replayJournals(upClient, journalDir), [run.info.run_id]);
  const back = await upClient.getRun(run.info.run_id);
  assert.equal(back.info.status, 'FINISHED');
  assert.equal(asRecord(back.data.params).seed, '3');
  assert.equal((await upClient.getMetricHistory(run.info.run_id, 'acc')).length, 40);
  assert.deepEqual(await replayJournals(upClient, journalDir), []); // nothing left, nothing resent
});

function runChild(uri: string, runId: string, journalDir: string, mode: 'run' | 'throw') {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'child-logger.ts'), uri, runId, journalDir, mode],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setInterval(
      () => stdout.includes('ready') && (clearInterval(timer), resolve()),
      20,
    );
    child.once(
      'exit',
      () => (clearInterval(timer), reject(new Error(`child exited before ready: ${stderr}`))),
    );
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exit, stderr: () => stderr };
}

test('a trial process stopped with SIGTERM ends KILLED, keeping every point it logged', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = new MlflowClient({ trackingUri: server!.url, env: {} });
  const experimentId = await client.getOrCreateExperiment('signals');
  const run = await client.createRun({ experimentId, runName: 'sigterm' });
  const proc = runChild(server!.url, run.info.run_id, join(env.stateDir, 'journal'), 'run');
  await proc.ready;
  await sleep(400);
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exit, 128 + 15, proc.stderr());

  const back = await client.getRun(run.info.run_id);
  assert.equal(back.info.status, 'KILLED');
  assert.equal(asRecord(back.data.tags)['vcp.failure_reason'], 'received SIGTERM');
  const steps = (await client.getMetricHistory(run.info.run_id, 'progress')).map((m) => m.step);
  assert.ok(steps.length > 10, `only ${steps.length} points arrived`);
  assert.deepEqual(
    steps,
    Array.from({ length: steps.length }, (_, i) => i),
  );
});

test('a trial process that throws ends FAILED with the error in vcp.failure_reason', async (t) => {
  if (!env.ok) return t.skip(env.reason);
  const client = new MlflowClient({ trackingUri: server!.url, env: {} });
  const experimentId = await client.getOrCreateExperiment('signals');
  const run = await client.createRun({ experimentId, runName: 'throws' });
  const proc = runChild(server!.url, run.info.run_id, join(env.stateDir, 'journal'), 'throw');
  await proc.ready;
  assert.equal(await proc.exit, 1);
  assert.match(proc.stderr(), /simulated trial failure/);

  const back = await client.getRun(run.info.run_id);
  assert.equal(back.info.status, 'FAILED');
  assert.match(
    asRecord(back.data.tags)['vcp.failure_reason'],
    /^Error: simulated trial failure: NaN loss at step 10\n\s+at /,
  );
  assert.deepEqual(
    (await client.getMetricHistory(run.info.run_id, 'progress')).map((m) => m.step),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
});
