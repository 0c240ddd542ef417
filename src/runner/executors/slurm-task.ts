/**
 * The Slurm side of a trial process (trial-main.ts with a job whose `slurm` is set): the run
 * the runner created SCHEDULED becomes RUNNING and learns where it runs. A requeued task
 * (preemption, node failure, `scontrol requeue`) gets the same job file and so the same run:
 * it never makes a second one; a run that already FINISHED is left alone.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { MlflowClient } from '../../tracking/client.js';
import { TAGS } from '../../tracking/layout.js';
import { lowDiskSpace } from '../disk-space.js';
import type { TrialJob } from '../trial-events.js';
import { OWNER_TAGS } from './local.js';
import { SLURM_TAGS } from './slurm-tags.js';

/** Tags naming the array task this process is, from the variables Slurm sets. */
export function slurmTaskTags(env: NodeJS.ProcessEnv, host = hostname()): Record<string, string> {
  const tags: Record<string, string> = { [OWNER_TAGS.host]: host };
  if (env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID)
    tags[SLURM_TAGS.jobId] = `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}`;
  if (env.SLURM_JOB_ID) tags[SLURM_TAGS.rawJobId] = env.SLURM_JOB_ID;
  if (env.SLURMD_NODENAME) tags[SLURM_TAGS.node] = env.SLURMD_NODENAME;
  tags[SLURM_TAGS.restarts] = env.SLURM_RESTART_COUNT || '0';
  return tags;
}

/**
 * Marks the run RUNNING (from SCHEDULED, or from the KILLED/FAILED end of an attempt that
 * Slurm requeued) and tags it; returns false when the run already FINISHED.
 */
export async function startSlurmTask(
  client: MlflowClient,
  runId: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const run = await client.getRun(runId);
  if (run.info.status === 'FINISHED') return false;
  for (const [key, value] of Object.entries(slurmTaskTags(env)))
    await client.setTag(runId, key, value);
  if (run.data.tags.some((t) => t.key === TAGS.failureReason))
    await client.deleteTag(runId, TAGS.failureReason);
  if (run.info.status !== 'RUNNING') await client.updateRun(runId, { status: 'RUNNING' });
  return true;
}

/**
 * The free-space floor on the node, as the local executor checks it before each trial: the
 * shared directory (checkpoints, feature cache) and the task's scratch beside its job file.
 * Throws an ENOSPC error naming the directory, so the run ends FAILED "disk full at <dir>",
 * the task exits 28 and the runner stops the trials still pending.
 */
export async function checkTaskSpace(
  job: Pick<TrialJob, 'checkpointsDir' | 'workDir'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  for (const dir of new Set([dirname(job.checkpointsDir), dirname(job.workDir)])) {
    if (!existsSync(dir)) continue;
    const low = await lowDiskSpace(dir, env);
    if (low) throw Object.assign(new Error(low), { code: 'ENOSPC', path: dir });
  }
}
