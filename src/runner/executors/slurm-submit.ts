/**
 * Submission: every pending trial gets its MLflow run first (status SCHEDULED, tagged with
 * where its job file, script and Slurm output are), then one job array per level
 * (slurm-script.ts) is submitted and the array task ids are tagged on the runs. The job file
 * names the run, so a task, even a requeued one, only ever logs to that run. If sbatch
 * rejects a level, the arrays already submitted are cancelled and the runs deleted: nothing
 * half-submitted stays behind.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { nodeArgsFor } from '../../io/node-entry.js';
import type { BackendChoice } from '../../model/backend.js';
import type { ExperimentLayout, RunIdentity } from '../../tracking/layout.js';
import type { DatasetInputs } from '../dataset-inputs.js';
import type { Spec, Trial } from '../spec-types.js';
import { checkpointsDir, featureCacheDir } from '../state-dirs.js';
import type { TrialJob } from '../trial-events.js';
import { runName } from './local.js';
import { checkPlainPath } from './slurm-checks.js';
import { currentUser, sbatch, scancel } from './slurm-cli.js';
import {
  arrayLevels,
  batchScript,
  jobName,
  taskFile,
  taskWorkDir,
  wantsGpu,
  type ArrayLevel,
} from './slurm-script.js';
import { SLURM_TAGS } from './slurm-tags.js';
import { TRIAL_MAIN } from './trial-entry.js';

export interface SubmitOptions {
  spec: Spec;
  layout: ExperimentLayout;
  experimentId: string;
  sweepRunId: string;
  trackingUri: string;
  journalDir: string;
  /** `<state>/slurm/<sweep run id>` gets the scripts, job files and Slurm output. */
  stateDir: string;
  sharedDir: string;
  identity: Omit<RunIdentity, 'device'>;
  backend: BackendChoice;
  workers: number;
  samplesPerProduct?: number;
  /** slurmctld's MaxArraySize (task ids must stay below it). */
  maxArraySize?: number;
  /** Each trial's datasets, logged as its run's inputs when the run is created. */
  datasetInputs?: DatasetInputs;
  env?: NodeJS.ProcessEnv;
}

export interface SubmittedTask {
  trial: Trial;
  runId: string;
  /** "<array job id>_<task id>". */
  jobId: string;
  level: number;
  taskId: number;
  logFile: string;
  eventsFile: string;
  scriptFile: string;
  after?: Trial;
}

export interface Submission {
  tasks: SubmittedTask[];
  /** Array job id per level. */
  arrays: { level: number; jobId: string; tasks: number; after?: string }[];
}

export async function submitTrials(
  trials: readonly Trial[],
  o: SubmitOptions,
): Promise<Submission> {
  checkPlainPath('the state directory', o.stateDir);
  const levels = arrayLevels(trials);
  const widest = Math.max(0, ...levels.flatMap((l) => l.tasks.map((t) => t.taskId)));
  if (o.maxArraySize !== undefined && widest >= o.maxArraySize)
    throw new UserError(
      `the sweep has ${widest + 1} trainings to run, more than this cluster's MaxArraySize (${o.maxArraySize}) allows in one job array`,
      {
        hint: 'split the spec into smaller sweeps, or ask the cluster admins to raise MaxArraySize',
      },
    );
  const sweepDir = join(o.stateDir, 'slurm', o.sweepRunId);
  const submission: Submission = { tasks: [], arrays: [] };
  const created: string[] = [];
  try {
    for (const level of levels) {
      const dir = join(sweepDir, `level-${level.level}`);
      await mkdir(dir, { recursive: true });
      const scriptFile = join(dir, 'job.sbatch');
      const pending = await createRuns(level, dir, scriptFile, o);
      created.push(...pending.map((p) => p.runId));
      const after = level.level > 0 ? submission.arrays[0].jobId : undefined;
      await writeFile(
        scriptFile,
        batchScript({
          jobName: jobName(o.spec.name, level.level),
          taskIds: level.tasks.map((t) => t.taskId),
          parallelism: o.workers,
          dir,
          resources: o.spec.execution.slurm ?? {},
          afterArray: after,
          // The local executor's command line (trial-entry.ts), the job file added by the script.
          command: { file: process.execPath, args: nodeArgsFor(TRIAL_MAIN) },
          about: [
            `vcp-exp sweep of ${o.spec.file} (MLflow sweep run ${o.sweepRunId}), level ${level.level}:`,
            level.level === 0
              ? 'the first pending trial of each training key (trains, or reuses a saved checkpoint);'
              : `trial ${level.level + 1} of each training key, after the task with the same id of level 0 (aftercorr);`,
            'task <id> runs the trial of task-<id>.json and writes task-<id>.out.',
          ],
        }),
      );
      const arrayId = await sbatch(scriptFile, { env: o.env });
      submission.arrays.push({
        level: level.level,
        jobId: arrayId,
        tasks: level.tasks.length,
        after,
      });
      for (const p of pending) {
        const jobId = `${arrayId}_${p.taskId}`;
        await o.layout.client.setTag(p.runId, SLURM_TAGS.jobId, jobId);
        submission.tasks.push({ ...p, jobId });
      }
    }
  } catch (error) {
    await scancel(
      submission.arrays.map((a) => a.jobId),
      o.env,
    ).catch(() => undefined);
    for (const runId of created) await o.layout.client.deleteRun(runId).catch(() => undefined);
    throw error;
  }
  return submission;
}

/** The runs and job files of one level's tasks. */
async function createRuns(
  level: ArrayLevel,
  dir: string,
  scriptFile: string,
  o: SubmitOptions,
): Promise<Omit<SubmittedTask, 'jobId'>[]> {
  const device = wantsGpu(o.spec.execution.slurm ?? {}) ? 'gpu:0' : 'cpu';
  const out: Omit<SubmittedTask, 'jobId'>[] = [];
  for (const { taskId, trial, after } of level.tasks) {
    const logger = await o.layout.startTrialRun({
      ...o.identity,
      device,
      experimentId: o.experimentId,
      parentRunId: o.sweepRunId,
      trialId: trial.id,
      config: trial.config as unknown as Record<string, unknown>,
      runName: runName(trial),
      datasets: o.datasetInputs ? await o.datasetInputs.forTrial(trial) : undefined,
    });
    const runId = logger.runId;
    const logFile = taskFile(dir, taskId, 'out');
    const eventsFile = taskFile(dir, taskId, 'events');
    await o.layout.client.updateRun(runId, { status: 'SCHEDULED' });
    logger.setTags({
      'vcp.seed': String(trial.seed),
      [SLURM_TAGS.executor]: 'slurm',
      [SLURM_TAGS.user]: currentUser(),
      [SLURM_TAGS.log]: logFile,
      [SLURM_TAGS.events]: eventsFile,
      [SLURM_TAGS.script]: scriptFile,
      ...(after ? { [SLURM_TAGS.after]: after.id } : {}),
    });
    await logger.flush();
    // One trial per array task: evaluation groups run on the local executor only.
    const job: TrialJob = {
      members: [{ trial, runId, workDir: taskWorkDir(dir, taskId) }],
      trackingUri: o.trackingUri,
      journalDir: o.journalDir,
      checkpointsDir: checkpointsDir(o.sharedDir),
      featureCacheDir: featureCacheDir(o.sharedDir),
      reuseCheckpoint: true,
      backend: o.backend,
      device,
      samplesPerProduct: o.samplesPerProduct ?? 2,
      eventsFile,
      slurm: true,
    };
    await writeFile(taskFile(dir, taskId, 'json'), JSON.stringify(job));
    out.push({ trial, runId, level: level.level, taskId, logFile, eventsFile, scriptFile, after });
  }
  return out;
}
