/**
 * Issue 12, cases 2, 3, 4, 6, 9, 13 and 14, end to end with the real CLI against a real MLflow
 * server (one for the file), on the tiny sweep: two runners of one spec, the runner SIGKILLed
 * (its trial process survives it), a trial process SIGKILLed, checkpoints damaged on disk or
 * left unlogged, product names MLflow would reject, and a full disk. The outcome is asserted
 * in MLflow: FINISHED runs per trial id, statuses and reasons of the others, exit codes and
 * messages.
 *
 * The full disk is real: the state directory is a small tmpfs filled up by a file, so every
 * write the runner and its trial process make meets the ENOSPC a full disk gives; MLflow's own
 * store is elsewhere (the test server). Mounting needs root with CAP_SYS_ADMIN: without it that
 * test is skipped with the reason (allowed in CI, tests/requirements.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import type { Run } from '../../src/tracking/types.js';
import { unavailable } from '../requirements.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';
import {
  assertOneFinishedEach,
  experimentRuns,
  metric,
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
    assert.match(first.output(), /1 of 2 trials unfinished: 1 failed or killed/);
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

test(
  'case 9: a product named "grid+(1) é" is logged as grid__1___; colliding names are refused at plan time',
  { timeout: 240_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const cli = cliFor('names');
    cpSync(join(dir, 'synth'), join(dir, 'names'), { recursive: true });
    renameSync(join(dir, 'names', 'bottle'), join(dir, 'names', 'grid+(1) é'));
    const check = runCli(['data', 'check', 'names'], cli);
    assert.equal(check.status, 0, check.output);
    assert.match(check.stdout, /note: product "grid\+\(1\) é" is logged in MLflow as "grid__1___"/);

    const spec = writeSpec(
      dir,
      'names.yaml',
      tinySpec({ name: 'rel-names', sweep: '  grid:\n    alpha: [0.75]', evalRoot: './names' }),
    );
    const plan = runCli(['plan', spec], cli);
    assert.equal(plan.status, 0, plan.output);
    assert.match(
      plan.stderr,
      /note: product "grid\+\(1\) é" of \S+names is logged in MLflow as "grid__1___"/,
    );
    const run = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(run.status, 0, run.output);
    const [trial] = trialRuns(await experimentRuns(client, 'rel-names'));
    assert.equal(trial.info.status, 'FINISHED');
    for (const key of [
      'synth.grid__1___.pixel_auroc',
      'synth.carpet.pixel_auroc',
      'synth.pixel_auroc',
    ])
      assert.ok(metric(trial, key) !== undefined, `metric ${key}`);
    const files = (await new ArtifactStore(client).listFiles(trial.info.run_id)).map((f) => f.path);
    assert.ok(
      files.some((f) => f.startsWith('samples/synth/grid__1___/')),
      files.join(', '),
    );

    // Two products that would share one key: refused before anything runs.
    cpSync(join(dir, 'synth', 'carpet'), join(dir, 'names', 'grid+(1)_é'), { recursive: true });
    const clash = runCli(['plan', spec], cli);
    assert.equal(clash.status, 2, clash.output);
    assert.match(
      clash.stderr,
      /products "grid\+\(1\) é" and "grid\+\(1\)_é" would all be logged as "grid__1___"/,
    );
  },
);

test(
  'case 6: a full disk: checked before the sweep, ENOSPC ends a trial FAILED "disk full at", the runner stops with its summary',
  { timeout: 300_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    const mount = join(dir, 'small-disk');
    mkdirSync(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount], { stdio: 'pipe' });
    } catch (error) {
      const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
      return t.skip(unavailable('tmpfs-mount', `mount -t tmpfs: ${why}`));
    }
    try {
      await diskFull(mount);
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  },
);

/** Case 6 on the tmpfs at `mount`. */
async function diskFull(mount: string): Promise<void> {
  const free = () => {
    const s = statfsSync(mount);
    return s.bavail * s.bsize;
  };
  /** Fills the tmpfs until `left` bytes are free. */
  const fillTo = (left: number): string => {
    const filler = join(mount, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, free() - left)));
    return filler;
  };
  const stateDir = join(mount, 'state');
  const cli = (minFreeMb: string): CliOptions => ({
    cwd: dir,
    stateDir,
    env: {
      MLFLOW_TRACKING_URI: server.ok ? server.server.url : '',
      VCP_EXP_MIN_FREE_MB: minFreeMb,
    },
  });
  const spec = writeSpec(
    dir,
    'disk.yaml',
    tinySpec({ name: 'rel-disk', sweep: '  grid:\n    heads: [1, 2]' }),
  );
  const ids = await trialIds(dir, spec);

  // Below the floor before anything starts: nothing runs.
  const filler = fillTo(2 * 1024 * 1024);
  const refused = runCli(['run', spec, '--progress', 'plain'], cli('8'));
  assert.equal(refused.status, 1, refused.output);
  assert.match(
    refused.output,
    new RegExp(
      `disk full at ${stateDir}: \\d\\.\\d MB free, at least 8\\.0 MB needed before a trial starts \\(VCP_EXP_MIN_FREE_MB\\); nothing was run`,
    ),
  );
  assert.equal(trialRuns(await experimentRuns(client, 'rel-disk')).length, 0);

  // The check off and 300 kB free: the first trial runs out of disk while it works.
  rmSync(filler);
  fillTo(300 * 1024);
  const full = runCli(['run', spec, '--progress', 'plain'], cli('0'));
  assert.equal(full.status, 1, full.output);
  assert.match(
    full.output,
    /FAILED [0-9a-f]{12} \(run [0-9a-f]{32}\): disk full at \/\S+: ENOSPC \(no space left on device\)/,
  );
  assert.match(full.output, /stopped starting trials: disk full at /);
  assert.match(
    full.output,
    /0 finished, 1 failed, 0 killed, 1 skipped \(0 already finished, 1 not started\)/,
  );
  assert.match(
    full.output,
    /2 of 2 trials unfinished: 1 failed or killed, 1 not started \(disk full at /,
  );
  const afterFull = trialRuns(await experimentRuns(client, 'rel-disk'));
  assert.equal(afterFull.length, 1, 'the second trial never started');
  assert.equal(afterFull[0].info.status, 'FAILED');
  assert.match(tag(afterFull[0], 'vcp.failure_reason') ?? '', /^disk full at \//);

  // Space freed: the same command finishes the sweep and leaves no work directory behind.
  rmSync(join(mount, 'filler'));
  const again = runCli(['run', spec, '--progress', 'plain'], cli('1'));
  assert.equal(again.status, 0, again.output);
  const runs = await experimentRuns(client, 'rel-disk');
  assertOneFinishedEach(runs, ids, again.output);
  assert.deepEqual(Object.values(statusesByTrial(runs)).flat().sort(), [
    'FAILED',
    'FINISHED',
    'FINISHED',
  ]);
  assert.deepEqual(
    readdirSync(join(stateDir, 'trials')),
    [],
    'trial work directories are removed once logged',
  );
}
