/**
 * Issue 12, case 6: a full disk. The state directory is a small tmpfs, really filled up (a
 * file takes the space), so every write the runner and its trial process make meets the same
 * ENOSPC a full disk gives; MLflow's own store is elsewhere (the test server). Mounting needs
 * root with CAP_SYS_ADMIN: without it the test is skipped with that reason (allowed in CI,
 * tests/requirements.ts).
 *  - Below VCP_EXP_MIN_FREE_MB before the sweep: nothing runs, one clear message.
 *  - ENOSPC inside a trial: that trial ends FAILED "disk full at <path>", no further trial
 *    starts, the runner prints its summary and exits non-zero; nothing is left RUNNING.
 *  - Space freed: the same command finishes the sweep, and no trial work directory remains.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { MlflowClient } from '../../src/tracking/client.js';
import { unavailable } from '../requirements.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';
import {
  assertOneFinishedEach,
  experimentRuns,
  runCli,
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
let mount: string;
let mountError: string | undefined;
let client: MlflowClient;

before(async () => {
  dir = await tinyProject('disk');
  mount = join(dir, 'small-disk');
  mkdirSync(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount], { stdio: 'pipe' });
  } catch (error) {
    const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    mountError = unavailable('tmpfs-mount', `mount -t tmpfs: ${why}`);
    return;
  }
  server = await startTestServer('reliability-disk');
  if (server.ok) client = server.client();
});

after(async () => {
  if (server?.ok) await server.cleanup();
  if (!mountError) execFileSync('umount', ['-l', mount]);
  rmSync(dir, { recursive: true, force: true });
});

const free = () => {
  const s = statfsSync(mount);
  return s.bavail * s.bsize;
};

/** Fills the tmpfs until `left` bytes are free. */
function fillTo(left: number): string {
  const filler = join(mount, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, free() - left)));
  return filler;
}

test(
  'case 6: a full disk: checked before the sweep, ENOSPC ends a trial FAILED "disk full at", the runner stops with its summary',
  { timeout: 300_000 },
  async (t) => {
    if (mountError) return t.skip(mountError);
    if (!server.ok) return t.skip(server.reason);
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
      /2 of 2 trial\(s\) unfinished: 1 failed or killed, 1 not started \(disk full at /,
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
  },
);
