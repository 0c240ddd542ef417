/**
 * The Slurm executor against a real Slurm cluster (scripts/slurm/start-cluster.sh in CI) and a
 * real MLflow server listening on a non-loopback address of this machine, with the tiny CLIP
 * and a tiny synthetic dataset:
 * - the quickstart sweep itself (experiments/quickstart.yaml) through Slurm: 12 trials, each
 *   FINISHED exactly once;
 * - a quickstart-like grid through Slurm: every trial FINISHED exactly once, Slurm job ids on the
 *   runs, evaluations after their trainings (aftercorr), a requeued task keeps its run;
 * - scancel of a running and of a pending array task: both recorded, a rerun completes them
 *   without touching the finished trial;
 * - --detach, status --once, then status after Slurm forgot the jobs (MinJobAge): every
 *   outcome (finished, failed, cancelled) still right;
 * - a task finding its disk full: the run fails "disk full at", the pending tasks are
 *   cancelled, a rerun with space completes the sweep;
 * - sbatch's rejection and missing partition/gres as clear errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { quickstartSpecText } from '../../src/commands/quickstart.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import type { MlflowClient } from '../../src/tracking/client.js';
import type { Run } from '../../src/tracking/types.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';
import {
  queue,
  scancel,
  scontrol,
  slurmCluster,
  stopAll,
  tinySweep,
  vcpExp,
  waitFor,
  type Cluster,
} from './cluster.js';

let cluster: Cluster;
let server: TestServer | undefined;
let url = '';
const dirs: string[] = [];
const jobs: string[] = [];

before(async () => {
  cluster = slurmCluster();
  if (!cluster.ok) return;
  server = await startTestServer('slurm', { host: cluster.host });
  if (server.ok) url = server.server.url;
});

after(async () => {
  stopAll();
  scancel(jobs);
  if (server?.ok) await server.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function skipReason(): string | undefined {
  if (!cluster.ok) return cluster.reason;
  if (!server?.ok) return server?.reason ?? 'no MLflow server';
  return undefined;
}

const tag = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;

async function runsOf(client: MlflowClient, experiment: string): Promise<Run[]> {
  const e = await client.getExperimentByName(experiment);
  if (!e) return [];
  return client.searchRuns({ experimentIds: [e.experiment_id] });
}

/** Each run's dataset input contexts (training, evaluation), sorted: the REST answer as is. */
async function datasetContexts(url: string, experimentId: string): Promise<Map<string, string[]>> {
  const response = await fetch(`${url}/api/2.0/mlflow/runs/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ experiment_ids: [experimentId], max_results: 1000 }),
  });
  const { runs } = (await response.json()) as {
    runs: {
      info: { run_id: string };
      inputs?: { dataset_inputs?: { tags?: { key: string; value: string }[] }[] };
    }[];
  };
  return new Map(
    runs.map((r) => [
      r.info.run_id,
      (r.inputs?.dataset_inputs ?? [])
        .map((i) => i.tags?.find((t) => t.key === 'mlflow.data.context')?.value ?? '?')
        .sort(),
    ]),
  );
}

const trialRuns = (runs: Run[]) => runs.filter((r) => tag(r, 'vcp.run_kind') === 'trial');
const param = (run: Run, key: string) => run.data.params.find((p) => p.key === key)?.value;
/** A trial of the `bad` variant (the test kills its process while it runs, as an OOM killer would). */
const isBad = (run: Run) => param(run, 'model.n_ctx') === '3';

/**
 * SIGKILLs the trial process of a run's array task (found by its job file on this one-node
 * cluster); true when one was found. The run stays RUNNING: only Slurm and the output know.
 */
function killTrialProcess(run: Run): boolean {
  const job = tag(run, 'vcp.slurm_log')?.replace(/\.out$/, '.json');
  if (!job) return false;
  const found = spawnSync('pgrep', ['-f', job], { encoding: 'utf8' });
  const pids = found.stdout
    .split('\n')
    .map(Number)
    .filter((p) => p > 0);
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  return pids.length > 0;
}

/** The array job ids a runner printed ("submitted Slurm job array <id>: …"). */
function submitted(lines: string[]): string[] {
  return lines.flatMap((l) => /submitted Slurm job array (\d+)/.exec(l)?.[1] ?? []);
}

async function submission(cli: { lines: string[] }, arrays: number): Promise<string[]> {
  const ids = await waitFor(`${arrays} job array(s) submitted`, () => {
    const ids = submitted(cli.lines);
    return ids.length >= arrays ? ids : undefined;
  });
  jobs.push(...ids);
  return ids;
}

test(
  'the quickstart sweep (experiments/quickstart.yaml, 12 trials) through Slurm into the real MLflow server: every trial FINISHED exactly once, job ids on the runs',
  { timeout: 1_800_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    const dir = mkdtempSync(join(tmpdir(), 'vcp-slurm-qs-'));
    dirs.push(dir);
    // What `vcp-exp quickstart` writes (its synthetic data generated under the state
    // directory on the first run), with the Slurm executor instead of the local one.
    const local = /^execution: \{ executor: local.*$/m;
    const text = quickstartSpecText(join('state', 'data', 'synth'));
    assert.match(text, local);
    writeFileSync(
      join(dir, 'spec.yaml'),
      text
        .replace(/^name: quickstart$/m, 'name: sl-quickstart-spec')
        .replace(
          local,
          'execution:\n  executor: slurm\n  workers: 2\n  shared_dir: ./shared\n  slurm: { time: "00:30:00", cpus_per_task: 1, mem_gb: 3, poll_seconds: 2 }',
        ),
    );
    const cli = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
    const [trainings, evaluations] = await submission(cli, 2);
    assert.equal(await cli.exited, 0, cli.output());
    assert.match(cli.output(), /12 finished, 0 failed, 0 killed, 0 skipped/);
    const runs = await runsOf(client, 'sl-quickstart-spec');
    const trials = trialRuns(runs);
    assert.equal(trials.length, 12, 'exactly one run per trial');
    const contexts = await datasetContexts(url, runs[0].info.experiment_id);
    assert.equal(new Set(trials.map((r) => tag(r, 'vcp.trial_id'))).size, 12);
    for (const r of trials) {
      assert.equal(r.info.status, 'FINISHED');
      assert.match(
        tag(r, 'vcp.slurm_job_id') ?? '',
        new RegExp(`^(${trainings}|${evaluations})_\\d+$`),
      );
      assert.equal(tag(r, 'vcp.slurm_recorded'), 'true');
      // Its datasets as MLflow inputs (the UI's Dataset column), as on the local executor.
      assert.deepEqual(
        contexts.get(r.info.run_id),
        ['evaluation', 'training'],
        tag(r, 'vcp.trial_id'),
      );
    }
    const trained = trials.filter((r) => tag(r, 'vcp.trained') === 'true');
    assert.equal(trained.length, 6, '6 trainings (heads × seeds), each evaluation reuses one');
    // Each run's logs/trial.log (streamed by the runner from the task's output) holds the
    // trial's own progress, without TensorFlow's start-up lines.
    const store = new ArtifactStore(client);
    for (const r of [trained[0], trials.find((x) => tag(x, 'vcp.trained') !== 'true')!]) {
      const local = join(dir, `trial-${r.info.run_id}.log`);
      await store.download(r.info.run_id, 'logs/trial.log', local);
      const log = readFileSync(local, 'utf8');
      assert.match(log, /^\[[\d:]+\] evaluate synth\/(grid|pill) \(\d\/2\): /m, log);
      if (tag(r, 'vcp.trained') === 'true')
        assert.match(log, /^\[[\d:]+\] epoch 5\/5: loss /m, log);
      assert.doesNotMatch(log, /absl::InitializeLog|oneDNN custom operations/, log);
    }
    const sweep = runs.find((r) => tag(r, 'vcp.run_kind') === 'sweep')!;
    assert.equal(sweep.info.status, 'FINISHED');
  },
);

test(
  'quickstart grid through Slurm: one FINISHED run per trial, job ids tagged, evaluations after their training, a requeued task keeps its run',
  { timeout: 600_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    const dir = await tinySweep(
      'sl-quickstart',
      'sweep:\n  grid:\n    heads: [1, 2]\n    alpha: [0.5, 0.75]\nseeds: 1',
    );
    dirs.push(dir);
    const cli = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
    const [trainings, evaluations] = await submission(cli, 2);

    // Requeue a training task while its trial runs (as preemption or a node failure would).
    const requeued = await waitFor('a level-0 trial running', async () => {
      const running = trialRuns(await runsOf(client, 'sl-quickstart')).find(
        (r) =>
          r.info.status === 'RUNNING' && tag(r, 'vcp.slurm_job_id')?.startsWith(`${trainings}_`),
      );
      return running && tag(running, 'vcp.slurm_job_id');
    });
    scontrol(['requeue', requeued]);
    // A requeued job waits ~2 min (BeginTime) before it may start again: let it start now.
    await waitFor('the requeued task pending again', () => {
      const row = queue([trainings]).find((r) => r.jobId === requeued);
      if (row?.state !== 'PENDING') return false;
      scontrol(['update', `JobId=${requeued}`, 'StartTime=now']);
      return true;
    });

    const code = await cli.exited;
    assert.equal(code, 0, cli.output());
    assert.match(cli.output(), /4 finished, 0 failed, 0 killed/);

    const runs = await runsOf(client, 'sl-quickstart');
    const trials = trialRuns(runs);
    assert.equal(trials.length, 4, 'one run per trial: the requeued task made no second one');
    assert.ok(
      trials.every((r) => r.info.status === 'FINISHED'),
      cli.output(),
    );
    assert.equal(new Set(trials.map((r) => tag(r, 'vcp.trial_id'))).size, 4);
    const byLevel = (array: string) =>
      trials.filter((r) => tag(r, 'vcp.slurm_job_id')?.startsWith(`${array}_`));
    assert.equal(byLevel(trainings).length, 2, 'two trainings in the first array');
    assert.equal(byLevel(evaluations).length, 2, 'two evaluations in the second array');
    for (const r of trials) {
      assert.match(tag(r, 'vcp.slurm_job_id') ?? '', /^\d+_\d+$/);
      assert.equal(tag(r, 'vcp.slurm_state'), 'COMPLETED');
      assert.equal(tag(r, 'vcp.slurm_recorded'), 'true');
      assert.equal(tag(r, 'vcp.failure_reason'), undefined, 'no stale failure reason');
      assert.ok(tag(r, 'vcp.slurm_node'), 'the node is tagged');
      const log = tag(r, 'vcp.slurm_log')!;
      assert.ok(existsSync(log), `the Slurm output stays under the state directory: ${log}`);
      assert.ok(!existsSync(log.replace(/task-(\d+)\.out$/, 'work-$1')), 'the scratch is removed');
    }
    // Each evaluation shares its training key with a training of the first array, which finished first.
    for (const e of byLevel(evaluations)) {
      assert.equal(tag(e, 'vcp.trained'), 'false', 'an evaluation reuses the checkpoint');
      const training = byLevel(trainings).find(
        (r) => tag(r, 'vcp.training_key') === tag(e, 'vcp.training_key'),
      );
      assert.ok(training, 'its training ran in the first array');
      assert.ok(
        training.info.end_time! <= e.info.end_time!,
        'the evaluation ended after its training',
      );
    }
    const again = trials.find((r) => tag(r, 'vcp.slurm_job_id') === requeued)!;
    assert.equal(tag(again, 'vcp.slurm_restarts'), '1', 'the requeued attempt is the second');

    const store = new ArtifactStore(client);
    const files = (await store.listFiles(again.info.run_id)).map((f) => f.path);
    const log = `logs/slurm-${requeued}.out`;
    assert.ok(files.includes(log), `artifact ${log} in ${files.join(', ')}`);
    assert.ok(files.includes('slurm/job.sbatch'), files.join(', '));
    const local = join(dir, 'dl.out');
    await store.download(again.info.run_id, log, local);
    const text = readFileSync(local, 'utf8');
    assert.match(text, /DUE TO JOB REQUEUE/, 'the first attempt was stopped by the requeue');
    assert.match(text, /restart 1/, 'the second attempt ran in the same output');
    const evaluation = byLevel(evaluations)[0];
    const script = join(dir, 'dl.sbatch');
    await store.download(evaluation.info.run_id, 'slurm/job.sbatch', script);
    assert.match(
      readFileSync(script, 'utf8'),
      new RegExp(`#SBATCH --dependency=aftercorr:${trainings}`),
    );
    const sweep = runs.find((r) => tag(r, 'vcp.run_kind') === 'sweep')!;
    assert.equal(sweep.info.status, 'FINISHED');
  },
);

test(
  'scancel of a running and of a pending array task: both recorded, a rerun completes them and leaves the finished trial alone',
  { timeout: 600_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    // Four seeds = four trainings in one array, one task at a time (%1). Task 2 is cancelled
    // while still pending inside the array record (which holds tasks 2 and 3); a task that is
    // alone in the record is the record itself and would stay visible as CANCELLED.
    const dir = await tinySweep('sl-scancel', 'seeds: 4', { workers: 1 });
    dirs.push(dir);
    const cli = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
    const [array] = await submission(cli, 1);
    const runOfTask = (runs: Run[], task: number) =>
      trialRuns(runs).find((r) => tag(r, 'vcp.slurm_job_id') === `${array}_${task}`);
    await waitFor('task 0 finished and task 1 running its trial', async () => {
      const runs = await runsOf(client, 'sl-scancel');
      return (
        runOfTask(runs, 0)?.info.status === 'FINISHED' &&
        runOfTask(runs, 1)?.info.status === 'RUNNING'
      );
    });
    const rows = queue([array]);
    assert.equal(rows.find((r) => r.jobId === `${array}_1`)?.state, 'RUNNING');
    assert.equal(rows.find((r) => r.jobId === `${array}_2`)?.state, 'PENDING');
    scancel([`${array}_1`, `${array}_2`]);
    assert.equal(
      queue([array]).find((r) => r.jobId === `${array}_2`),
      undefined,
      'Slurm keeps no trace of the task cancelled while pending',
    );

    const code = await cli.exited;
    assert.notEqual(code, 0, cli.output());
    assert.match(cli.output(), /2 finished, 0 failed, 2 killed/);
    const before = await runsOf(client, 'sl-scancel');
    const [done, running, pending, last] = [0, 1, 2, 3].map((i) => runOfTask(before, i)!);
    assert.equal(done.info.status, 'FINISHED');
    assert.equal(last.info.status, 'FINISHED');
    assert.equal(running.info.status, 'KILLED');
    assert.equal(tag(running, 'vcp.slurm_state'), 'CANCELLED');
    assert.match(tag(running, 'vcp.failure_reason') ?? '', /scancel while running/);
    assert.equal(pending.info.status, 'KILLED');
    assert.equal(tag(pending, 'vcp.slurm_state'), 'VANISHED');
    assert.match(tag(pending, 'vcp.failure_reason') ?? '', /cancelled while pending/);

    const rerun = vcpExp(dir, [
      'run',
      'spec.yaml',
      '--progress',
      'plain',
      '--tracking-uri',
      url,
      '--workers',
      '2',
    ]);
    jobs.push(...submitted(rerun.lines));
    const code2 = await rerun.exited;
    jobs.push(...submitted(rerun.lines));
    assert.equal(code2, 0, rerun.output());
    assert.match(rerun.output(), /2 finished, 0 failed, 0 killed, 2 skipped/);
    const after = trialRuns(await runsOf(client, 'sl-scancel'));
    const finished = after.filter((r) => r.info.status === 'FINISHED');
    assert.equal(finished.length, 4);
    assert.equal(new Set(finished.map((r) => tag(r, 'vcp.trial_id'))).size, 4, 'one per trial');
    for (const old of [done, last]) {
      const kept = after.find((r) => r.info.run_id === old.info.run_id)!;
      assert.equal(kept.info.status, 'FINISHED');
      assert.equal(kept.info.end_time, old.info.end_time, 'a finished trial is not touched');
    }
    assert.equal(after.length, 6, 'only the two cancelled trials got new runs');
  },
);

test(
  '--detach, status --once, then status after Slurm forgot the jobs: finished, failed and cancelled all recorded right',
  { timeout: 600_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    const dir = await tinySweep(
      'sl-detach',
      [
        'sweep:',
        '  variants:',
        '    - { name: good, set: { alpha: 0.5 } }',
        '    - { name: bad, set: { n_ctx: 3 } }',
        'seeds: 2',
      ].join('\n'),
    );
    dirs.push(dir);
    const detached = vcpExp(dir, [
      'run',
      'spec.yaml',
      '--detach',
      '--progress',
      'plain',
      '--tracking-uri',
      url,
    ]);
    assert.equal(await detached.exited, 0, detached.output());
    const [array] = submitted(detached.lines);
    assert.ok(array, detached.output());
    jobs.push(array);
    assert.match(detached.output(), /detached: 4 trial\(s\) in Slurm/);

    const once = vcpExp(dir, ['status', 'spec.yaml', '--once', '--tracking-uri', url]);
    assert.equal(await once.exited, 3, `exit 3 while trials are in Slurm:\n${once.output()}`);
    assert.match(once.output(), /(PENDING|RUNNING) +Slurm task \d+_\d/);

    // Cancel a good trial while it runs; the other one finishes; the process of each bad one
    // is killed while it runs (its run stays RUNNING: the task FAILED in Slurm only).
    let victim: string | undefined;
    const killed = new Set<string>();
    await waitFor(
      'a good trial cancelled and both bad trials killed, each while running',
      async () => {
        for (const r of trialRuns(await runsOf(client, 'sl-detach'))) {
          const job = tag(r, 'vcp.slurm_job_id');
          if (r.info.status !== 'RUNNING' || !job) continue;
          if (isBad(r) && !killed.has(job) && killTrialProcess(r)) killed.add(job);
          if (!isBad(r) && !victim) {
            victim = job;
            scancel([victim]);
          }
        }
        return killed.size === 2 && victim !== undefined;
      },
      300_000,
      300,
    );
    await waitFor(
      'every task to end and leave Slurm (MinJobAge)',
      () => queue([array]).length === 0,
      300_000,
      1_000,
    );
    const unrecorded = trialRuns(await runsOf(client, 'sl-detach'));
    assert.ok(unrecorded.every((r) => tag(r, 'vcp.slurm_recorded') === undefined));

    const status = vcpExp(dir, [
      'status',
      'spec.yaml',
      '--progress',
      'plain',
      '--tracking-uri',
      url,
    ]);
    assert.equal(
      await status.exited,
      1,
      `exit 1: some trials failed or were cancelled\n${status.output()}`,
    );
    const runs = await runsOf(client, 'sl-detach');
    const trials = trialRuns(runs);
    assert.equal(trials.length, 4);
    assert.ok(trials.every((r) => tag(r, 'vcp.slurm_recorded') === 'true'));
    const cancelled = trials.find((r) => tag(r, 'vcp.slurm_job_id') === victim)!;
    assert.equal(cancelled.info.status, 'KILLED');
    assert.equal(tag(cancelled, 'vcp.slurm_state'), 'CANCELLED', 'learnt from the Slurm output');
    assert.match(
      tag(cancelled, 'vcp.failure_reason') ?? '',
      /scancel while running.*from the Slurm output/s,
    );
    const good = trials.filter((r) => r !== cancelled && !isBad(r));
    assert.equal(good.length, 1);
    assert.equal(good[0].info.status, 'FINISHED');
    assert.equal(tag(good[0], 'vcp.slurm_state'), 'VANISHED', 'Slurm had forgotten it');
    const bad = trials.filter(isBad);
    assert.equal(bad.length, 2);
    for (const r of bad) {
      assert.equal(r.info.status, 'FAILED');
      assert.equal(tag(r, 'vcp.slurm_state'), 'VANISHED', 'Slurm had forgotten it');
      assert.match(
        tag(r, 'vcp.failure_reason') ?? '',
        /the Slurm task ended without ending its run, and Slurm no longer holds its record/,
        'judged from the run left RUNNING and the task gone',
      );
    }
    const store = new ArtifactStore(client);
    for (const r of trials) {
      const files = (await store.listFiles(r.info.run_id)).map((f) => f.path);
      assert.ok(files.includes(`logs/slurm-${tag(r, 'vcp.slurm_job_id')}.out`), files.join(', '));
    }
    const sweep = runs.find((r) => tag(r, 'vcp.run_kind') === 'sweep')!;
    assert.equal(sweep.info.status, 'FAILED', 'the sweep run ends once every trial is recorded');

    const last = vcpExp(dir, ['status', 'spec.yaml', '--once', '--tracking-uri', url]);
    assert.equal(await last.exited, 1, last.output());
    assert.match(last.output(), /4 trial\(s\): 1 finished, 2 failed, 1 killed, 0 in Slurm/);
  },
);

test(
  'a task that finds its disk full fails "disk full at <dir>", the pending tasks are cancelled, a rerun with space completes the sweep',
  { timeout: 600_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    // The runner's own check passes; the tasks, through the job script's setup line, demand
    // far more free space than any disk has (the node-side check of slurm-task.ts).
    const resources = 'time: "00:15:00", cpus_per_task: 1, mem_gb: 2, poll_seconds: 1';
    const dir = await tinySweep('sl-diskfull', 'seeds: 4', {
      workers: 1,
      slurm: `${resources}, setup: ["export VCP_EXP_MIN_FREE_MB=1000000000000"]`,
    });
    dirs.push(dir);
    const cli = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
    await submission(cli, 1);
    const code = await cli.exited;
    assert.equal(code, 1, cli.output());
    assert.match(cli.output(), /cancelling the \d trial\(s\) still pending in Slurm \(scancel\)/);
    assert.match(
      cli.output(),
      /4 of 4 trials unfinished: 4 failed or killed, the rest stopped \(disk full at \//,
    );
    const first = trialRuns(await runsOf(client, 'sl-diskfull'));
    assert.equal(first.length, 4);
    const full = first.filter((r) => r.info.status === 'FAILED');
    const cancelled = first.filter((r) => r.info.status === 'KILLED');
    assert.ok(
      full.length >= 1 && cancelled.length >= 1,
      'some ran out of space, the rest were stopped',
    );
    assert.equal(full.length + cancelled.length, 4);
    for (const r of full)
      assert.match(
        tag(r, 'vcp.failure_reason') ?? '',
        new RegExp(`^disk full at ${join(dir, 'shared')}: ENOSPC`),
      );
    for (const r of cancelled)
      assert.match(tag(r, 'vcp.failure_reason') ?? '', /cancelled while pending|scancel/);

    writeFileSync(
      join(dir, 'spec.yaml'),
      readFileSync(join(dir, 'spec.yaml'), 'utf8').replace(/, setup: \[[^\]]*\]/, ''),
    );
    const rerun = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
    await submission(rerun, 1);
    assert.equal(await rerun.exited, 0, rerun.output());
    assert.match(rerun.output(), /4 finished, 0 failed, 0 killed/);
    const after = trialRuns(await runsOf(client, 'sl-diskfull'));
    assert.equal(after.filter((r) => r.info.status === 'FINISHED').length, 4);
    assert.equal(after.length, 8, 'every trial ran again, once');
  },
);

test(
  'clear errors: sbatch rejects (its message shown, nothing left behind), unknown partition, missing gres',
  { timeout: 300_000 },
  async (t) => {
    const skip = skipReason();
    if (skip) return t.skip(skip);
    const client = (server as Extract<TestServer, { ok: true }>).client();
    const cases: { slurm: string; expect: RegExp; name: string }[] = [
      {
        name: 'sl-reject',
        slurm: 'mem_gb: 60000, poll_seconds: 1',
        expect:
          /sbatch rejected the job .*job\.sbatch:\n.*Memory specification can not be satisfied/,
      },
      {
        name: 'sl-partition',
        slurm: 'partition: nope',
        expect:
          /execution\.slurm\.partition "nope" does not exist on this cluster[\s\S]*partitions here: /,
      },
      {
        name: 'sl-gres',
        slurm: 'gpus: 1',
        expect: /no node of partition \S+ has gres gpu:1 \(execution\.slurm\.gpus\)/,
      },
    ];
    for (const c of cases) {
      const dir = await tinySweep(c.name, 'seeds: 1', { slurm: c.slurm });
      dirs.push(dir);
      const cli = vcpExp(dir, ['run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url]);
      assert.equal(await cli.exited, 1, cli.output());
      assert.match(cli.output(), c.expect);
      assert.doesNotMatch(cli.output(), /\n\s+at /, 'no stack trace');
      const left = trialRuns(await runsOf(client, c.name));
      assert.equal(left.length, 0, `${c.name}: no trial run left behind`);
    }
  },
);
