/**
 * The Slurm executor: submits a sweep's pending trials as job arrays (slurm-submit.ts), then
 * follows them in the same progress view as local runs (slurm-monitor.ts) until every task
 * has ended, or returns right after submitting (`--detach`); `vcp-exp status` follows them
 * later. Ctrl-C while following only detaches: the jobs are Slurm's, `scancel` stops them.
 * The sweep's parent run ends once every trial under it is recorded, whichever process
 * records the last one.
 */
import { TAGS, type ExperimentLayout } from '../../tracking/layout.js';
import type { Run } from '../../tracking/types.js';
import { createReporter, type ProgressMode } from '../progress.js';
import type { Spec, Trial } from '../spec-types.js';
import type { TrialOutcome } from './pool.js';
import {
  followTasks,
  trackedFromRun,
  unrecordedSlurmRuns,
  type TrackedTask,
  type WaitingTask,
} from './slurm-monitor.js';
import { submitTrials, type Submission, type SubmitOptions } from './slurm-submit.js';
import { SLURM_TAGS } from './slurm-tags.js';

/** Default seconds between two squeue polls. */
export const DEFAULT_POLL_SECONDS = 15;

const tagOf = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;

export function pollSecondsOf(spec: Spec): number {
  return spec.execution.slurm?.poll_seconds ?? DEFAULT_POLL_SECONDS;
}

/**
 * Looks once at the trials submitted earlier and not recorded yet: records those that ended
 * and returns those still queued or running in Slurm (to be followed, never resubmitted).
 */
export async function settleEarlierSubmissions(options: {
  spec: Spec;
  layout: ExperimentLayout;
  experimentId: string;
  journalDir: string;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}): Promise<{ live: WaitingTask[]; recorded: TrialOutcome[] }> {
  const runs = await unrecordedSlurmRuns(options.layout, options.experimentId);
  if (runs.length === 0) return { live: [], recorded: [] };
  const trials = new Map(options.spec.trials.map((t) => [t.id, t]));
  const look = await followTasks({
    layout: options.layout,
    journalDir: options.journalDir,
    tasks: runs.map((r) => trackedFromRun(r, trials)),
    pollSeconds: pollSecondsOf(options.spec),
    once: true,
    env: options.env,
    log: options.log,
  });
  await endSweepRuns(
    options.layout,
    runs.map((r) => tagOf(r, TAGS.parentRunId)),
  );
  return { live: look.waiting, recorded: look.outcomes };
}

export interface SlurmRunOptions extends Omit<SubmitOptions, 'sweepRunId'> {
  /** The sweep run to submit under (absent when there is nothing new to submit). */
  sweepRunId?: string;
  toRun: readonly Trial[];
  /** Trials submitted earlier, still in Slurm: followed with the new ones. */
  live: readonly TrackedTask[];
  skipped: number;
  detach: boolean;
  failFast?: boolean;
  progress: ProgressMode;
  log: (line: string) => void;
}

export interface SlurmRunResult {
  outcomes: TrialOutcome[];
  /** Why the trials still pending were cancelled (a disk found full), if they were. */
  halted?: string;
  submission?: Submission;
  /** Set when the runner stopped following with trials still in Slurm. */
  detached?: { waiting: WaitingTask[]; jobs: string[]; bySignal: boolean };
}

/** Submits `toRun` (if any) and follows it together with `live`. */
export async function runOnSlurm(o: SlurmRunOptions): Promise<SlurmRunResult> {
  let submission: Submission | undefined;
  if (o.toRun.length > 0) {
    submission = await submitTrials(o.toRun, { ...o, sweepRunId: o.sweepRunId! });
    for (const a of submission.arrays)
      o.log(
        `submitted Slurm job array ${a.jobId}: ${a.tasks} trial(s)${a.after ? `, each after its training in ${a.after} (aftercorr)` : a.level === 0 ? ', the first of each training key' : ''}`,
      );
  }
  const trials = new Map(o.spec.trials.map((t) => [t.id, t]));
  const tracked: TrackedTask[] = [
    ...(submission?.tasks ?? []).map((t) => ({
      runId: t.runId,
      trialId: t.trial.id,
      trial: trials.get(t.trial.id) ?? t.trial,
      sweepRunId: o.sweepRunId,
      jobId: t.jobId,
      logFile: t.logFile,
      eventsFile: t.eventsFile,
      scriptFile: t.scriptFile,
      afterTrial: t.after?.id,
    })),
    ...o.live,
  ];
  const jobs = arrayJobsOf(tracked);
  if (o.detach) {
    o.log(
      `detached: ${tracked.length} trial(s) in Slurm (jobs ${jobs.join(', ')}); follow them with \`vcp-exp status ${o.spec.file}\`, cancel them with \`scancel ${jobs.join(' ')}\``,
    );
    return {
      outcomes: [],
      submission,
      detached: {
        waiting: tracked.map((task) => ({ task, state: 'PENDING', reason: '', node: '' })),
        jobs,
        bySignal: false,
      },
    };
  }
  return { ...(await follow(o, tracked, jobs)), submission };
}

/** Follows tracked tasks in the progress view until they end or a signal detaches. */
export async function follow(
  o: {
    spec: Spec;
    layout: ExperimentLayout;
    journalDir: string;
    workers: number;
    skipped: number;
    failFast?: boolean;
    progress: ProgressMode;
    env?: NodeJS.ProcessEnv;
    log: (line: string) => void;
  },
  tracked: readonly TrackedTask[],
  jobs = arrayJobsOf(tracked),
): Promise<Omit<SlurmRunResult, 'submission'>> {
  const reporter = createReporter(o.progress, o.log);
  const shown = tracked.filter((t) => t.trial).map((t) => t.trial!);
  reporter.start({ name: o.spec.name, trials: shown, skipped: o.skipped, workers: o.workers });
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) return;
    o.log(
      `\n${signal}: detaching; the trials stay in Slurm (jobs ${jobs.join(', ')}): \`vcp-exp status ${o.spec.file}\` follows them again, \`scancel ${jobs.join(' ')}\` cancels them`,
    );
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: Awaited<ReturnType<typeof followTasks>> | undefined;
  try {
    result = await followTasks({
      layout: o.layout,
      journalDir: o.journalDir,
      tasks: tracked,
      pollSeconds: pollSecondsOf(o.spec),
      reporter,
      signal: abort.signal,
      failFast: o.failFast,
      env: o.env,
      log: o.log,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await reporter.end(shown.filter((t) => !result?.outcomes.some((x) => x.trial.id === t.id)));
  }
  await endSweepRuns(
    o.layout,
    tracked.map((t) => t.sweepRunId),
  );
  return {
    outcomes: result.outcomes,
    ...(result.halted ? { halted: result.halted } : {}),
    detached:
      result.waiting.length > 0
        ? {
            waiting: result.waiting,
            jobs: arrayJobsOf(result.waiting.map((w) => w.task)),
            bySignal: true,
          }
        : undefined,
  };
}

/** The array job ids of tracked tasks ("123" of "123_4"), in order. */
export function arrayJobsOf(tasks: readonly TrackedTask[]): string[] {
  return [...new Set(tasks.map((t) => t.jobId?.split('_')[0]).filter((j): j is string => !!j))];
}

/**
 * Ends each Slurm sweep run whose trials are all recorded: FINISHED when all finished,
 * else FAILED (some failed) or KILLED (some cancelled or preempted, none failed).
 */
export async function endSweepRuns(
  layout: ExperimentLayout,
  sweepRunIds: readonly (string | undefined)[],
): Promise<void> {
  for (const id of new Set(sweepRunIds)) {
    if (!id) continue;
    const sweep = await layout.client.getRun(id).catch(() => undefined);
    if (!sweep || sweep.info.status !== 'RUNNING' || tagOf(sweep, SLURM_TAGS.executor) !== 'slurm')
      continue;
    const trials = await layout.listTrialRuns(sweep.info.experiment_id, { parentRunId: id });
    if (trials.some((r) => tagOf(r, SLURM_TAGS.recorded) !== 'true')) continue;
    const count = (s: string) => trials.filter((r) => r.info.status === s).length;
    const finished = count('FINISHED');
    const failed = count('FAILED');
    const killed = count('KILLED');
    const logger = layout.attach(id);
    logger.logMetrics({
      'sweep.finished': finished,
      'sweep.failed': failed,
      'sweep.killed': killed,
    });
    const reason = `${failed} trial(s) failed, ${killed} cancelled or stopped in Slurm`;
    await logger.end(
      failed > 0 ? 'FAILED' : killed > 0 ? 'KILLED' : 'FINISHED',
      failed + killed > 0 ? reason : undefined,
    );
  }
}
