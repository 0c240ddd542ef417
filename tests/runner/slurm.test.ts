/**
 * The Slurm executor's pure parts, without a cluster: parsers against output captured from
 * Slurm 22.05.8 (Debian 12's slurm-wlm) on the one-node test cluster, the verdict on a task
 * from its witnesses, the job arrays and scripts, the tracking-URI check, and the CLI's errors
 * when the tracking server is loopback, shared_dir is missing or Slurm is not installed.
 * (tests/slurm/ runs the executor against a real cluster.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isLoopbackAddress, isLoopbackUri } from '../../src/runner/executors/slurm-checks.js';
import { judgeTask, type TaskWitnesses } from '../../src/runner/executors/slurm-outcome.js';
import {
  lastStepdMessage,
  parseGres,
  parseSbatchJobId,
  parseScontrolJobs,
  parseSqueue,
} from '../../src/runner/executors/slurm-parse.js';
import {
  arrayLevels,
  arraySpec,
  batchScript,
  resourceOptions,
  wantsGpu,
  workDirOfLog,
} from '../../src/runner/executors/slurm-script.js';
import { checkTaskSpace, slurmTaskTags } from '../../src/runner/executors/slurm-task.js';
import { describe as describeFailure, failureExitCode } from '../../src/tracking/exit.js';
import type { Trial } from '../../src/runner/spec-types.js';
import { projectRoot } from '../../src/tracking/server.js';

// squeue --noheader --array --states=all --me --format='%F|%K|%A|%T|%r|%N|%M|%l', with array
// 53 = 0-3%2 and array 54 = 0-3 after aftercorr:53 --kill-on-invalid-dep=yes (task 53_1 exits 3).
const SQUEUE = `54|1|56|CANCELLED|DependencyNeverSatisfied||0:00|UNLIMITED
53|0|58|COMPLETED|None|vm|0:06|UNLIMITED
53|1|59|FAILED|NonZeroExitCode|vm|0:06|UNLIMITED
54|3|54|PENDING|Dependency||0:00|UNLIMITED
54|2|57|PENDING|Dependency||0:00|UNLIMITED
54|0|55|PENDING|Resources||0:00|UNLIMITED
53|2|60|RUNNING|None|vm|0:03|UNLIMITED
53|3|53|RUNNING|None|vm|0:03|UNLIMITED
`;
// scontrol --oneliner show job 53_1
const SCONTROL =
  'JobId=59 ArrayJobId=53 ArrayTaskId=1 ArrayTaskThrottle=2 JobName=a.sh UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901731 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:06 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-11-30T00:56:17 EligibleTime=2026-11-30T00:56:18 AccrueTime=2026-11-30T00:56:18 StartTime=2026-11-30T00:56:18 EndTime=2026-11-30T00:56:24 Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-30T00:56:18 Scheduler=Main Partition=debug AllocNode:Sid=localhost:16918 ReqNodeList=(null) ExcNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=11449M,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryCPU=11449M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=/tmp/sx/a.sh WorkDir=/tmp/sx StdErr=/tmp/sx/a-1.out StdIn=/dev/null StdOut=/tmp/sx/a-1.out Power= \n';
// What slurmstepd wrote into output files: scancel, time limit, scontrol requeue.
const STEPD_CANCEL =
  'task 3 job 1 array 1\nslurmstepd-vm: error: *** JOB 1 ON vm CANCELLED AT 2026-11-30T00:08:02 ***\n';
const STEPD_TIMEOUT =
  'task 0 job 11 array 11\nslurmstepd-vm: error: *** JOB 11 ON vm CANCELLED AT 2026-11-30T00:09:44 DUE TO TIME LIMIT ***\n';
const STEPD_REQUEUE =
  'task 0 job 12 array 12 restart none\nslurmstepd-vm: error: *** JOB 12 ON vm CANCELLED AT 2026-11-30T00:08:31 DUE TO JOB REQUEUE ***\ntask 0 job 12 array 12 restart 1\n';

test('squeue: one row per array task, pending ones too; the record keeps the array id', () => {
  const rows = parseSqueue(SQUEUE);
  assert.equal(rows.length, 8);
  const byId = new Map(rows.map((r) => [r.jobId, r]));
  assert.deepEqual(byId.get('54_1'), {
    jobId: '54_1',
    arrayJobId: '54',
    taskId: 1,
    rawJobId: '56',
    state: 'CANCELLED',
    reason: 'DependencyNeverSatisfied',
    node: '',
    elapsed: '0:00',
    limit: 'UNLIMITED',
  });
  assert.equal(byId.get('53_0')!.reason, '', 'None is no reason');
  assert.equal(byId.get('53_3')!.rawJobId, '53', 'the last task is the array record itself');
  assert.equal(byId.get('53_2')!.node, 'vm');
  assert.deepEqual(
    parseSqueue('1_[2-3%1]|2-3%1|1|PENDING|None||0:00|1:00\n'),
    [],
    'a folded record',
  );
});

test('scontrol --oneliner: key=value fields, keys with : and /', () => {
  const [job] = parseScontrolJobs(SCONTROL);
  assert.equal(job.JobId, '59');
  assert.equal(job.JobState, 'FAILED');
  assert.equal(job.Reason, 'NonZeroExitCode');
  assert.equal(job.ExitCode, '3:0');
  assert.equal(job['AllocNode:Sid'], 'localhost:16918');
  assert.equal(job['CPUs/Task'], '1');
  assert.equal(job.StdOut, '/tmp/sx/a-1.out');
  assert.equal(job.Power, '');
});

test("slurmstepd's last message: plain scancel, time limit, requeue", () => {
  assert.equal(lastStepdMessage(STEPD_CANCEL)?.cause, undefined);
  assert.equal(lastStepdMessage(STEPD_CANCEL)?.jobId, '1');
  assert.equal(lastStepdMessage(STEPD_TIMEOUT)?.cause, 'TIME LIMIT');
  assert.match(lastStepdMessage(STEPD_TIMEOUT)!.line, /^slurmstepd-vm: error: \*\*\* JOB 11/);
  assert.equal(lastStepdMessage(STEPD_REQUEUE)?.cause, 'JOB REQUEUE');
  assert.equal(lastStepdMessage('all fine\n'), undefined);
});

test('gres lists (sinfo %G format, from the Slurm documentation) and sbatch --parsable', () => {
  assert.deepEqual(parseGres('(null)'), []);
  assert.deepEqual(parseGres('gpu:a100:4(S:0-1),gpu:2'), [
    { name: 'gpu', type: 'a100', count: 4 },
    { name: 'gpu', type: undefined, count: 2 },
  ]);
  assert.deepEqual(parseGres('gpu'), [{ name: 'gpu', type: undefined, count: 1 }]);
  assert.deepEqual(parseGres('gpu:v100'), [{ name: 'gpu', type: 'v100', count: 1 }]);
  assert.equal(parseSbatchJobId('123\n'), '123');
  assert.equal(parseSbatchJobId('123;cluster1\n'), '123');
  assert.equal(parseSbatchJobId('Submitted batch job 123'), undefined);
});

const trial = (id: string, trainingKey: string): Trial =>
  ({ id, trainingKey, seed: 1, point: {}, config: {} }) as unknown as Trial;

test('arrays: the first trial of each training key first, the others aftercorr by task id', () => {
  const levels = arrayLevels([
    trial('a1', 'A'),
    trial('b1', 'B'),
    trial('a2', 'A'),
    trial('c1', 'C'),
    trial('a3', 'A'),
    trial('c2', 'C'),
  ]);
  const shape = levels.map((l) =>
    l.tasks.map((t) => `${t.taskId}:${t.trial.id}<${t.after?.id ?? ''}`),
  );
  assert.deepEqual(shape, [['0:a1<', '1:b1<', '2:c1<'], ['0:a2<a1', '2:c2<c1'], ['0:a3<a1']]);
  assert.equal(arraySpec([0, 1, 2, 5, 7, 8], 2), '0-2,5,7-8%2');
  assert.equal(arraySpec([3], 0), '3%1');
  assert.equal(workDirOfLog('/s/slurm/r1/level-1/task-3.out'), '/s/slurm/r1/level-1/work-3');
  assert.equal(workDirOfLog('/elsewhere/x.out'), undefined);
});

test('resources: partition, account, qos, time, CPUs, memory, gres/GPUs, extra lines', () => {
  assert.deepEqual(
    resourceOptions({
      partition: 'gpu',
      account: 'lab',
      qos: 'normal',
      time: '04:00:00',
      cpus_per_task: 8,
      mem_gb: 1.5,
      gpus: 2,
      extra_sbatch: ['--constraint=a100', '--exclusive'],
    }),
    [
      '--partition=gpu',
      '--account=lab',
      '--qos=normal',
      '--time=04:00:00',
      '--cpus-per-task=8',
      '--mem=1536M',
      '--gres=gpu:2',
      '--constraint=a100',
      '--exclusive',
    ],
  );
  assert.deepEqual(resourceOptions({ gres: 'gpu:a100:1' }), ['--gres=gpu:a100:1']);
  assert.ok(wantsGpu({ gres: 'gpu:a100:1' }) && wantsGpu({ gpus: 1 }));
  assert.ok(!wantsGpu({}) && !wantsGpu({ gres: 'shard:1' }) && !wantsGpu({ gpus: 0 }));
});

test('job script: #SBATCH lines first, setup lines, the trial command quoted; bash accepts it', () => {
  const script = batchScript({
    jobName: 'vcp-x-level1',
    taskIds: [0, 2],
    parallelism: 3,
    dir: "/shared/st ate/it's",
    resources: { time: '1:00:00', setup: ['module load nodejs/20'] },
    afterArray: '41',
    command: { file: '/usr/bin/node', args: ['--import', 'file:///x/tsx.mjs', '/x/trial-main.ts'] },
    about: ['level 1'],
  });
  const lines = script.split('\n');
  const firstOther = lines.findIndex((l, i) => i > 0 && !l.startsWith('#SBATCH'));
  assert.deepEqual(lines.slice(1, firstOther), [
    '#SBATCH --job-name=vcp-x-level1',
    '#SBATCH --array=0,2%3',
    "#SBATCH --output=/shared/st ate/it's/task-%a.out",
    '#SBATCH --open-mode=append',
    '#SBATCH --time=1:00:00',
    '#SBATCH --dependency=aftercorr:41',
    '#SBATCH --kill-on-invalid-dep=yes',
  ]);
  assert.ok(lines.includes('module load nodejs/20'));
  assert.ok(
    script.includes(
      `exec '/usr/bin/node' '--import' 'file:///x/tsx.mjs' '/x/trial-main.ts' "$job"`,
    ),
  );
  const dir = mkdtempSync(join(tmpdir(), 'vcp-sbatch-'));
  try {
    writeFileSync(join(dir, 'job.sbatch'), script);
    const check = spawnSync('bash', ['-n', join(dir, 'job.sbatch')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    // The job file name the script builds, run with a fake task id.
    const probe = script.replace(/^exec .*$/m, 'echo "$job"').replace(/^module .*$/m, '');
    writeFileSync(join(dir, 'probe.sh'), probe);
    const run = spawnSync('bash', [join(dir, 'probe.sh')], {
      encoding: 'utf8',
      env: {
        ...process.env,
        SLURM_ARRAY_TASK_ID: '2',
        SLURM_ARRAY_JOB_ID: '9',
        SLURM_JOB_ID: '11',
      },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim().split('\n').at(-1), "/shared/st ate/it's/task-2.json");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('task tags from the variables Slurm sets', () => {
  assert.deepEqual(
    slurmTaskTags(
      {
        SLURM_ARRAY_JOB_ID: '12',
        SLURM_ARRAY_TASK_ID: '3',
        SLURM_JOB_ID: '15',
        SLURMD_NODENAME: 'node7',
        SLURM_RESTART_COUNT: '1',
      },
      'node7.cluster',
    ),
    {
      'vcp.host': 'node7.cluster',
      'vcp.slurm_job_id': '12_3',
      'vcp.slurm_raw_job_id': '15',
      'vcp.slurm_node': 'node7',
      'vcp.slurm_restarts': '1',
    },
  );
});

test("a task's free-space floor on the node: shared dir and scratch, as a disk-full failure", async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcp-slurm-space-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'shared'));
  mkdirSync(join(root, 'level-0'));
  const job = {
    checkpointsDir: join(root, 'shared', 'checkpoints'),
    workDir: join(root, 'level-0', 'work-0'),
  };
  await checkTaskSpace(job, { VCP_EXP_MIN_FREE_MB: '1' });
  await checkTaskSpace(job, { VCP_EXP_MIN_FREE_MB: '0' });
  const error = await checkTaskSpace(job, { VCP_EXP_MIN_FREE_MB: '1e12' }).then(
    () => assert.fail('a floor of 1e12 MB must not be met'),
    (e: unknown) => e,
  );
  // What the run's failure reason and the process's exit code become (tracking/exit.ts).
  assert.match(
    describeFailure(error),
    new RegExp(
      `^disk full at ${join(root, 'shared')}: ENOSPC \\(no space left on device\\)\n.*MB free, at least 1000000000000\\.0 MB needed`,
    ),
  );
  assert.equal(failureExitCode(error), 28);
  // Directories that do not exist (yet) are not this check's business.
  await checkTaskSpace(
    { checkpointsDir: join(root, 'no', 'checkpoints'), workDir: join(root, 'none', 'work-0') },
    { VCP_EXP_MIN_FREE_MB: '1e12' },
  );
});

const base: TaskWitnesses = { run: { status: 'RUNNING' }, logPath: '/s/task-0.out' };
const verdict = (w: Partial<TaskWitnesses>) => judgeTask({ ...base, ...w });

test('verdict while Slurm holds the task', () => {
  for (const state of ['PENDING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'CONFIGURING', 'SUSPENDED'])
    assert.deepEqual(verdict({ slurm: { state, reason: '' } }), { final: false }, state);
  const done = verdict({ slurm: { state: 'COMPLETED', reason: '' }, run: { status: 'FINISHED' } });
  assert.ok(done.final && done.status === 'FINISHED' && done.reason === undefined);
  const timeout = verdict({
    slurm: { state: 'TIMEOUT', reason: 'TimeLimit', timeLimit: '1:00', node: 'vm' },
    run: { status: 'KILLED', reason: 'received SIGTERM' },
  });
  assert.ok(timeout.final && timeout.status === 'FAILED');
  assert.match(timeout.reason!, /TIMEOUT.*\(1:00\).*execution\.slurm\.time/);
  assert.equal(timeout.slurmReason, 'TimeLimit');
  const running = verdict({
    slurm: { state: 'CANCELLED', reason: '', node: 'vm' },
    run: { status: 'KILLED', reason: 'received SIGTERM' },
  });
  assert.ok(running.final && running.status === 'KILLED');
  assert.match(running.reason!, /scancel while running/);
  const pending = verdict({
    slurm: { state: 'CANCELLED', reason: '' },
    run: { status: 'SCHEDULED' },
  });
  assert.ok(pending.final && /scancel while pending/.test(pending.reason!));
  const orphan = verdict({
    slurm: { state: 'CANCELLED', reason: 'DependencyNeverSatisfied' },
    run: { status: 'SCHEDULED' },
    afterTrial: 'abc',
  });
  assert.ok(orphan.final && orphan.status === 'KILLED');
  assert.match(orphan.reason!, /DependencyNeverSatisfied.*trial abc/);
  const failed = verdict({
    slurm: { state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '1:0', node: 'vm' },
    run: { status: 'FAILED', reason: 'UserError: no samples\n  at x' },
  });
  assert.ok(failed.final && failed.status === 'FAILED' && failed.reason === undefined);
  assert.equal(failed.summary, 'UserError: no samples', "the trial's own reason is kept");
  const crashed = verdict({
    slurm: { state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '137:0', node: 'vm' },
    log: 'loading\nKilled\n',
  });
  assert.ok(crashed.final && crashed.status === 'FAILED');
  assert.match(
    crashed.reason!,
    /FAILED \(NonZeroExitCode, exit code 137:0\) before ending its run\nloading\nKilled/,
  );
  const nowhere = verdict({
    slurm: { state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '0:53' },
  });
  assert.ok(
    nowhere.final &&
      /no output at \/s\/task-0\.out: do the compute nodes see/.test(nowhere.reason!),
  );
  const finishedThenKilled = verdict({
    slurm: { state: 'CANCELLED', reason: '', node: 'vm' },
    run: { status: 'FINISHED' },
  });
  assert.ok(finishedThenKilled.final && finishedThenKilled.status === 'FINISHED', 'FINISHED stays');
  for (const [state, status] of [
    ['PREEMPTED', 'KILLED'],
    ['NODE_FAIL', 'KILLED'],
    ['OUT_OF_MEMORY', 'FAILED'],
    ['DEADLINE', 'KILLED'],
  ] as const) {
    const v = verdict({ slurm: { state, reason: '', node: 'vm' }, run: { status: 'KILLED' } });
    assert.ok(v.final && v.status === status && v.reason!.includes(state), state);
  }
});

test('verdict after Slurm forgot the task (MinJobAge) or never kept it (cancelled while pending)', () => {
  const finished = verdict({ run: { status: 'FINISHED' } });
  assert.ok(finished.final && finished.status === 'FINISHED' && finished.slurmState === 'VANISHED');
  const failed = verdict({ run: { status: 'FAILED', reason: 'Error: boom' }, log: 'x\n' });
  assert.ok(failed.final && failed.status === 'FAILED' && failed.reason === undefined);
  const pending = verdict({ run: { status: 'SCHEDULED' } });
  assert.ok(pending.final && pending.status === 'KILLED');
  assert.match(pending.reason!, /cancelled while pending/);
  const cancelled = verdict({
    run: { status: 'KILLED', reason: 'received SIGTERM' },
    log: STEPD_CANCEL,
  });
  assert.ok(
    cancelled.final && cancelled.status === 'KILLED' && cancelled.slurmState === 'CANCELLED',
  );
  assert.match(cancelled.reason!, /scancel while running \(from the Slurm output: slurmstepd-vm/);
  const timeout = verdict({
    run: { status: 'KILLED', reason: 'received SIGTERM' },
    log: STEPD_TIMEOUT,
  });
  assert.ok(timeout.final && timeout.status === 'FAILED' && timeout.slurmState === 'TIMEOUT');
  const killed9 = verdict({ run: { status: 'RUNNING' }, log: STEPD_TIMEOUT });
  assert.ok(killed9.final && killed9.status === 'FAILED' && /TIMEOUT/.test(killed9.reason!));
  const lost = verdict({ run: { status: 'RUNNING' }, log: 'started\n' });
  assert.ok(lost.final && lost.status === 'FAILED');
  assert.match(lost.reason!, /ended without ending its run.*MinJobAge\)\nstarted/s);
  const requeuedThenLost = verdict({ run: { status: 'RUNNING' }, log: STEPD_REQUEUE });
  assert.ok(
    requeuedThenLost.final && /ended without ending its run/.test(requeuedThenLost.reason!),
  );
});

test('loopback tracking URIs are recognised', async () => {
  for (const uri of [
    'http://127.0.0.1:5000',
    'http://127.0.1.1:5000',
    'http://localhost:5000',
    'http://[::1]:5000',
    'http://0.0.0.0:5000',
  ])
    assert.equal(await isLoopbackUri(uri), true, uri);
  for (const uri of ['http://192.0.2.7:5000', 'http://10.1.2.3', 'https://mlflow.example.invalid'])
    assert.equal(await isLoopbackUri(uri), false, uri);
  assert.ok(isLoopbackAddress('::ffff:127.0.0.1'));
  assert.ok(!isLoopbackAddress('fd00::2'));
});

const work = mkdtempSync(join(tmpdir(), 'vcp-slurm-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function spec(execution: string): string {
  const dir = mkdtempSync(join(work, 'spec-'));
  mkdirSync(join(dir, 'data'));
  writeFileSync(
    join(dir, 'spec.yaml'),
    `name: slurm-cli
base: { backbone: ${join(projectRoot(), 'assets/clip/tiny-clip')}, image_size: 32, layers: [1, 2, 3], pre_vcp: false }
train: { dataset: { format: mvtec, root: ./data } }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
execution: ${execution}
`,
  );
  return join(dir, 'spec.yaml');
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [join(projectRoot(), 'bin/vcp-exp.js'), ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: '',
      VCP_EXP_STATE_DIR: join(work, 'state'),
      ...env,
    },
  });
}

test('run --executor slurm refuses a loopback or missing tracking URI and a missing shared_dir, before anything runs', () => {
  const withShared = spec('{ shared_dir: ./shared }');
  const loop = cli([
    'run',
    withShared,
    '--executor',
    'slurm',
    '--tracking-uri',
    'http://localhost:5000',
  ]);
  assert.equal(loop.status, 1, loop.stderr);
  assert.match(loop.stderr, /tracking URI http:\/\/localhost:5000 is a loopback address/);
  assert.match(loop.stderr, /hint: start an MLflow server the nodes can reach/);
  const none = cli(['run', withShared, '--executor', 'slurm']);
  assert.equal(none.status, 1, none.stderr);
  assert.match(none.stderr, /needs a tracking server the compute nodes can reach/);
  const noShared = cli([
    'run',
    spec('{ executor: slurm }'),
    '--tracking-uri',
    'http://192.0.2.7:5000',
  ]);
  assert.equal(noShared.status, 1, noShared.stderr);
  assert.match(noShared.stderr, /execution\.shared_dir is required with the slurm executor/);
  const detachLocal = cli(['run', withShared, '--detach']);
  assert.equal(detachLocal.status, 2, detachLocal.stderr);
  assert.match(detachLocal.stderr, /--detach only applies to the slurm executor/);
  for (const r of [loop, none, noShared, detachLocal]) assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('run --executor slurm without Slurm installed names the missing command', () => {
  const empty = mkdtempSync(join(work, 'bin-'));
  const r = cli(
    [
      'run',
      spec('{ shared_dir: ./shared }'),
      '--executor',
      'slurm',
      '--tracking-uri',
      'http://192.0.2.7:5000',
    ],
    { PATH: empty },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Slurm's sbatch command was not found on PATH/);
  assert.match(r.stderr, /hint: run vcp-exp on a machine that submits to your Slurm cluster/);
});
