/**
 * Issue 12, case 5: the managed MLflow server under faults. Its main process killed alone
 * leaves a uvicorn worker serving the port: `mlflow status` must say so and `mlflow stop` stop
 * the whole process group. Killed in the middle of a sweep, the runner restarts it on the
 * same port; trials started afterwards wait for it instead of failing, the running one
 * journals and delivers, and every trial ends with exactly one FINISHED run.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  isAlive,
  isHealthy,
  readServerState,
  serverGroupMembers,
  startLocalServer,
} from '../../src/tracking/server.js';
import { unavailable } from '../requirements.js';
import { python, VENV_BIN } from '../tracking/helpers.js';
import {
  runCli,
  startCli,
  tinyProject,
  tinySpec,
  trialIds,
  writeSpec,
  type CliOptions,
} from './helpers.js';

let dir: string;
let cli: CliOptions;
const skip = existsSync(join(VENV_BIN, 'mlflow'))
  ? undefined
  : unavailable('mlflow', `${VENV_BIN}/mlflow is missing`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  dir = await tinyProject('mlflow');
  cli = { cwd: dir, stateDir: join(dir, 'state') };
});

after(async () => {
  runCli(['mlflow', 'stop'], cli);
  rmSync(dir, { recursive: true, force: true });
});

async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 30_000) {
  for (const start = Date.now(); !(await predicate()); await sleep(100))
    if (Date.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
}

/** Trial id → statuses of its runs, read from the server's SQLite store (no server needed). */
function statusesInStore(stateDir: string): Record<string, string[]> {
  const rows = JSON.parse(
    python(
      `import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(json.dumps(db.execute("select t.value, r.status from runs r join tags t on t.run_uuid = r.run_uuid and t.key = 'vcp.trial_id' order by r.start_time").fetchall()))`,
      [join(stateDir, 'mlflow.db')],
    ),
  ) as [string, string][];
  const out: Record<string, string[]> = {};
  for (const [id, status] of rows) (out[id] ??= []).push(status);
  return out;
}

test(
  'case 5: a server whose main process died alone: status names its live worker, stop ends the whole group',
  { timeout: 180_000, skip },
  async () => {
    const server = await startLocalServer({
      stateDir: cli.stateDir,
      env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    });
    await until(() => serverGroupMembers(server.pid).length >= 2, 'the uvicorn worker');
    process.kill(server.pid, 'SIGKILL');
    await until(() => !isAlive(server.pid), 'the main process to die');
    assert.ok(await isHealthy(server.url), 'the orphaned worker still serves the port');

    const status = runCli(['mlflow', 'status'], cli);
    assert.equal(status.status, 0, status.output);
    assert.match(
      status.stdout,
      new RegExp(
        `its main process ${server.pid} is gone, but its worker process \\d+ still serves ${server.url}; stop it with vcp-exp mlflow stop`,
      ),
    );
    const stop = runCli(['mlflow', 'stop'], cli);
    assert.match(stop.stdout, /stopped the MLflow server of /, stop.output);
    await until(async () => !(await isHealthy(server.url, 500)), 'the port to be released', 15_000);
    assert.deepEqual(serverGroupMembers(server.pid), []);
  },
);

test(
  'case 5: the managed server killed mid-sweep is restarted on its port; every trial FINISHED once',
  { timeout: 300_000, skip },
  async () => {
    const spec = writeSpec(
      dir,
      'supervised.yaml',
      tinySpec({ name: 'rel-supervised', sweep: '  grid:\n    heads: [1, 2, 4]' }),
    );
    const ids = await trialIds(dir, spec);
    const runner = startCli(['run', spec, '--progress', 'plain'], cli);
    await runner.waitFor(
      (l) => l.some((x) => / train: \d+ images/.test(x)),
      'the first trial training',
    );
    const state = readServerState(cli.stateDir)!;
    process.kill(state.pid, 'SIGKILL'); // its main process alone, as an OOM killer would
    const code = await runner.exited;
    const output = runner.output();
    assert.equal(code, 0, output);
    assert.match(
      output,
      new RegExp(
        `the MLflow server died \\(its process ${state.pid} is gone\\): restarting it on port ${state.port}`,
      ),
    );
    assert.match(
      output,
      new RegExp(`MLflow server back at http://127\\.0\\.0\\.1:${state.port} \\(pid \\d+\\)`),
    );
    assert.match(output, /3 finished, 0 failed, 0 killed/);
    const byTrial = statusesInStore(cli.stateDir);
    assert.deepEqual(
      Object.fromEntries(ids.map((id) => [id, byTrial[id]])),
      Object.fromEntries(ids.map((id) => [id, ['FINISHED']])),
      'one FINISHED run per trial, nothing else',
    );
    assert.deepEqual(serverGroupMembers(state.pid), [], 'nothing of the dead server is left');
  },
);
