/**
 * Issue 12, cases 2, 3, 4, 13 and 14, end to end with the real CLI against a real MLflow
 * server (one for the file), on the tiny sweep: two runners of one spec, the runner SIGKILLed
 * (its trial process survives it), a trial process SIGKILLed, and checkpoints damaged on disk
 * or left unlogged. The outcome is asserted in MLflow: FINISHED runs per trial id, statuses
 * and reasons of the others, exit codes and messages.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  openSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import type { Run } from '../../src/tracking/types.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';
import {
  assertOneFinishedEach,
  experimentRuns,
  runCli,
  startCli,
  statusesByTrial,
  tag,
  tinyProject,
  tinySpec,
  trialIds,
  trialRuns,
  writeSpec,
  type CliOptions,
} from './helpers.js';

let server: TestServer;
let dir: string;
let client: MlflowClient;
/** CLI options with a state directory of its own (checkpoints are not shared between tests). */
const cliFor = (name: string): CliOptions => ({
  cwd: dir,
  stateDir: join(dir, `state-${name}`),
  env: { MLFLOW_TRACKING_URI: server.ok ? server.server.url : '' },
});

before(async () => {
  server = await startTestServer('reliability-runner');
  dir = await tinyProject('runner');
  if (server.ok) client = server.client();
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PLAIN = ['--progress', 'plain'];

/** Waits until no trial run of the experiment is RUNNING (the trial process ends its own run). */
async function settled(name: string, timeoutMs = 60_000): Promise<Run[]> {
  for (const started = Date.now(); ; await sleep(500)) {
    const runs = trialRuns(await experimentRuns(client, name));
    if (!runs.some((r) => r.info.status === 'RUNNING') || Date.now() - started > timeoutMs)
      return runs;
  }
}

test(
  'case 2: a second runner of the same spec stops at once naming the first; a stale lock is taken over',
  { timeout: 240_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const cli = cliFor('two');
    const spec = writeSpec(
      dir,
      'two.yaml',
      tinySpec({ name: 'rel-two', sweep: '  grid:\n    alpha: [0.5]' }),
    );
    const first = startCli(['run', spec, ...PLAIN], cli);
    await first.waitFor((l) => l.some((x) => / start \(/.test(x)), 'a trial start');
    const second = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(second.status, 1, second.output);
    assert.match(
      second.output,
      new RegExp(
        `another vcp-exp runner holds experiment "rel-two" in \\S+: pid ${first.pid} on ${hostname()}, since \\S+ \\(vcp-exp run two\\.yaml\\)`,
      ),
    );
    assert.equal(await first.exited, 0, first.output());
    const ids = await trialIds(dir, spec);
    const runs = await experimentRuns(client, 'rel-two');
    assertOneFinishedEach(runs, ids);
    assert.equal(trialRuns(runs).length, 1, 'the second runner started no run');

    // A lock left by a runner that died (its pid no longer runs) is taken over, with a message.
    const lock = join(cli.stateDir, 'locks', 'rel-two.lock');
    const dead = 2 ** 22 + 12345; // above pid_max's default: never a live process
    writeFileSync(
      lock,
      JSON.stringify({
        pid: dead,
        host: hostname(),
        since: '2020-01-01T00:00:00.000Z',
        command: 'vcp-exp run two.yaml',
      }),
    );
    const third = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(third.status, 0, third.output);
    assert.match(
      third.output,
      new RegExp(
        `taking over the lock of experiment "rel-two" from pid ${dead} \\(vcp-exp run two\\.yaml, since 2020-01-01T00:00:00\\.000Z\\), which is no longer running`,
      ),
    );
    assert.match(third.output, /nothing to run: 1 of 1 trials already FINISHED/);
    assert.deepEqual(readdirSync(join(cli.stateDir, 'locks')), [], 'the lock is released');
  },
);

test(
  'case 3: the runner SIGKILLed mid-trial: its trial process ends the run KILLED; the rerun runs every unfinished trial',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const cli = cliFor('kill');
    const spec = writeSpec(
      dir,
      'kill.yaml',
      tinySpec({ name: 'rel-kill', sweep: '  grid:\n    heads: [1, 2]' }),
    );
    const ids = await trialIds(dir, spec);
    const first = startCli(['run', spec, ...PLAIN], cli);
    await first.waitFor((l) => l.some((x) => / train: \d+ images/.test(x)), 'a trial training');
    process.kill(first.pid, 'SIGKILL'); // the runner alone: its trial process lives on
    await first.exited;
    const orphaned = await settled('rel-kill');
    assert.equal(orphaned.length, 1, 'one trial was running');
    assert.equal(
      orphaned[0].info.status,
      'KILLED',
      `not ${orphaned[0].info.status}: ${tag(orphaned[0], 'vcp.failure_reason')}`,
    );
    assert.match(
      tag(orphaned[0], 'vcp.failure_reason') ?? '',
      new RegExp(`its runner \\(pid ${first.pid}\\) went away`),
    );

    const second = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(second.status, 0, second.output);
    assert.match(
      second.output,
      new RegExp(`taking over the lock of experiment "rel-kill" from pid ${first.pid}`),
    );
    assert.match(second.output, /ended KILLED; running it again/);
    assert.match(second.output, /2 finished, 0 failed, 0 killed/);
    const runs = await experimentRuns(client, 'rel-kill');
    assertOneFinishedEach(runs, ids, second.output);
    const statuses = Object.values(statusesByTrial(runs)).flat();
    assert.deepEqual(
      statuses.filter((s) => s !== 'FINISHED'),
      ['KILLED'],
      'no FAILED run anywhere',
    );
  },
);

test(
  'case 3: a trial process SIGKILLed fails its trial; the exit is non-zero while it is unfinished; the next run runs it',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const cli = cliFor('crash');
    const spec = writeSpec(
      dir,
      'crash.yaml',
      tinySpec({ name: 'rel-crash', sweep: '  grid:\n    heads: [1, 2]' }),
    );
    const ids = await trialIds(dir, spec);
    const first = startCli(['run', spec, ...PLAIN], cli);
    await first.waitFor((l) => l.some((x) => / train: \d+ images/.test(x)), 'a trial training');
    const child = Number(
      execFileSync('ps', ['-o', 'pid=', '--ppid', String(first.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')[0],
    );
    process.kill(child, 'SIGKILL');
    const code = await first.exited;
    assert.equal(code, 1, first.output());
    assert.match(first.output(), /1 of 2 trial\(s\) unfinished: 1 failed or killed/);
    assert.match(
      first.output(),
      /hint: fix the cause, then run the same command again: every trial without a FINISHED run runs again/,
    );
    assert.doesNotMatch(first.output(), /--retry-failed/);
    const second = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(second.status, 0, second.output);
    assert.match(second.output, /ended FAILED; running it again/);
    const runs = await experimentRuns(client, 'rel-crash');
    assertOneFinishedEach(runs, ids);
    assert.equal(trialRuns(runs).length, 3);
  },
);

test(
  'cases 4, 13, 14: a damaged, truncated or unlogged checkpoint is discarded and trained again; lineage points at runs with the artifact',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const cli = cliFor('ckpt');
    const alphas = ['0.5'];
    const run = () => {
      writeSpec(
        dir,
        'ckpt.yaml',
        tinySpec({ name: 'rel-ckpt', sweep: `  grid:\n    alpha: [${alphas.join(', ')}]` }),
      );
      return runCli(['run', 'ckpt.yaml', ...PLAIN], cli);
    };
    const first = run();
    assert.equal(first.status, 0, first.output);
    const [key] = readdirSync(join(cli.stateDir, 'checkpoints'));
    const ckpt = join(cli.stateDir, 'checkpoints', key);
    const weights = join(ckpt, 'model.safetensors');

    const newest = async () => {
      const runs = trialRuns(await experimentRuns(client, 'rel-ckpt'));
      return runs.sort((a, b) => (b.info.start_time ?? 0) - (a.info.start_time ?? 0))[0];
    };
    const expectRetrained = async (output: string, why: RegExp) => {
      assert.match(
        output,
        new RegExp(`checkpoint \\S+${key} discarded: ${why.source}; training again`),
      );
      const latest = await newest();
      assert.equal(latest.info.status, 'FINISHED');
      assert.equal(tag(latest, 'vcp.trained'), 'true');
      assert.match(tag(latest, 'vcp.checkpoint_discarded') ?? '', why);
    };

    // Case 4: same size, bytes overwritten (before: reused silently, AUROC 0.5).
    const fd = openSync(weights, 'r+');
    writeSync(fd, Buffer.alloc(64, 0x41), 0, 64, Math.floor(statSync(weights).size / 2));
    closeSync(fd);
    alphas.push('0.6');
    const damaged = run();
    assert.equal(damaged.status, 0, damaged.output);
    await expectRetrained(
      damaged.output,
      /model\.safetensors has sha256 \S+, not the \S+ it was logged with \(changed or damaged on disk\)/,
    );

    // Case 14: truncated (before: FAILED, and the hint's --retry-failed reused it again).
    truncateSync(weights, Math.floor(statSync(weights).size / 2));
    alphas.push('0.9');
    const truncated = run();
    assert.equal(truncated.status, 0, truncated.output);
    await expectRetrained(
      truncated.output,
      /model\.safetensors has sha256 \S+, not the \S+ it was logged with \(changed or damaged on disk\)/,
    );

    // Case 13: the state a trial stopped between saving and logging its checkpoint leaves.
    rmSync(join(ckpt, 'logged.json'));
    alphas.push('0.4');
    const unlogged = run();
    assert.equal(unlogged.status, 0, unlogged.output);
    await expectRetrained(
      unlogged.output,
      /it was saved but never logged to MLflow \(its trial stopped in between\)/,
    );

    alphas.push('0.3');
    const reuse = run();
    assert.equal(reuse.status, 0, reuse.output);
    assert.equal(
      tag(await newest(), 'vcp.trained'),
      'false',
      'a logged, intact checkpoint is reused',
    );

    const runs = await experimentRuns(client, 'rel-ckpt');
    assertOneFinishedEach(runs, await trialIds(dir, 'ckpt.yaml'));
    const store = new ArtifactStore(client);
    for (const r of trialRuns(runs).filter((x) => tag(x, 'vcp.trained') === 'false')) {
      const from = tag(r, 'vcp.checkpoint_from')!;
      const files = (await store.listFiles(from)).map((f) => f.path);
      assert.ok(
        files.includes('checkpoint/model.safetensors'),
        `run ${from} (lineage of ${r.info.run_id}) has the checkpoint: ${files.join(', ')}`,
      );
    }
  },
);
