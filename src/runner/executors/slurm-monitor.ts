/**
 * Follows submitted trials until each has ended, and records each end once: polls squeue
 * (and scontrol for a finished task's exit code), reads the tasks' progress events for the
 * progress view, and when a task is over (slurm-outcome.ts) writes Slurm's state and reason
 * on its run, ends the run if the task could not, and attaches the Slurm output and the job
 * script as artifacts. Everything it needs is on the runs (slurm-tags.ts), so a later
 * `vcp-exp status` or `vcp-exp run` picks up where a detached or interrupted runner left.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../../errors.js';
import { replayJournals } from '../../tracking/delivery.js';
import { TAGS, type ExperimentLayout } from '../../tracking/layout.js';
import type { Run } from '../../tracking/types.js';
import type { SweepReporter } from '../progress.js';
import type { Trial } from '../spec-types.js';
import { isTrialEvent, type TrialEvent, type TrialSummary } from '../trial-events.js';
import { isDiskFullOutcome, LOG_UPLOAD_INTERVAL_MS } from './local.js';
import { liveArtifactStore, streamLog, uploadTrialLog, type LogStream } from './log-stream.js';
import type { TrialOutcome } from './pool.js';
import { currentUser, jobRecord, queuedTasks, scancel } from './slurm-cli.js';
import { isRunningState, isTerminalState, judgeTask, type Verdict } from './slurm-outcome.js';
import type { QueuedTask } from './slurm-parse.js';
import { workDirOfLog } from './slurm-script.js';
import { SLURM_TAGS } from './slurm-tags.js';

const tagOf = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;

/** Pending reasons that are just waiting their turn (not worth a line). */
const ORDINARY_WAIT = new Set([
  '',
  'None',
  'Priority',
  'Resources',
  'JobArrayTaskLimit',
  'Dependency',
  'BeginTime',
]);
/** Pending reasons Slurm gives a job that cannot start as submitted. */
const CANNOT_START =
  /^(PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|BadConstraints|InvalidAccount|InvalidQOS|ReqNodeNotAvail|DependencyNeverSatisfied)/;

/** A line when a task waits for something other than its turn (once per reason). */
function waitNote(task: TrackedTask, queued: QueuedTask): string | undefined {
  if (queued.state !== 'PENDING' || ORDINARY_WAIT.has(queued.reason)) return undefined;
  const fatal = CANNOT_START.test(queued.reason);
  return `${task.trialId} pending in Slurm (${task.jobId}): ${queued.reason}${fatal ? ` — it may never start as submitted: check execution.slurm against the partition, then scancel ${task.jobId}` : ''}`;
}

/** A trial run the monitor follows. */
export interface TrackedTask {
  runId: string;
  trialId: string;
  /** The spec's trial (absent for a trial an older version of the spec had). */
  trial?: Trial;
  sweepRunId?: string;
  jobId?: string;
  logFile?: string;
  eventsFile?: string;
  scriptFile?: string;
  afterTrial?: string;
  /** Who submitted it (default: this process's user). */
  user?: string;
}

export function trackedFromRun(run: Run, trials: ReadonlyMap<string, Trial>): TrackedTask {
  const trialId = tagOf(run, TAGS.trialId) ?? '?';
  return {
    runId: run.info.run_id,
    trialId,
    trial: trials.get(trialId),
    sweepRunId: tagOf(run, TAGS.parentRunId),
    jobId: tagOf(run, SLURM_TAGS.jobId),
    logFile: tagOf(run, SLURM_TAGS.log),
    eventsFile: tagOf(run, SLURM_TAGS.events),
    scriptFile: tagOf(run, SLURM_TAGS.script),
    afterTrial: tagOf(run, SLURM_TAGS.after),
    user: tagOf(run, SLURM_TAGS.user),
  };
}

/** Trial runs of an experiment that went to Slurm and whose end is not recorded yet. */
export async function unrecordedSlurmRuns(
  layout: ExperimentLayout,
  experimentId: string,
): Promise<Run[]> {
  const runs = await layout.listTrialRuns(experimentId);
  return runs.filter(
    (r) => tagOf(r, SLURM_TAGS.executor) === 'slurm' && tagOf(r, SLURM_TAGS.recorded) !== 'true',
  );
}

export interface FollowOptions {
  layout: ExperimentLayout;
  journalDir: string;
  tasks: readonly TrackedTask[];
  pollSeconds: number;
  reporter?: SweepReporter;
  /** One look: record what has ended, return the others as waiting. */
  once?: boolean;
  /** Stop following (Ctrl-C); the tasks go on in Slurm. */
  signal?: AbortSignal;
  /** scancel the other tasks after the first one that does not finish. */
  failFast?: boolean;
  env?: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

export interface WaitingTask {
  task: TrackedTask;
  /** Slurm's state (PENDING, RUNNING, …) and reason. */
  state: string;
  reason: string;
  node: string;
}

export interface FollowResult {
  outcomes: TrialOutcome[];
  waiting: WaitingTask[];
  /** Why the tasks still pending were cancelled (a trial found its disk full), if they were. */
  halted?: string;
}

/** Reads the events appended to a file since `offset`; returns them and the new offset. */
export function readEvents(file: string, offset: number): { events: TrialEvent[]; offset: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return { events: [], offset };
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return { events: [], offset };
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    const text = buffer.toString('utf8');
    const complete = text.lastIndexOf('\n') + 1; // a line still being written waits for the next poll
    const events: TrialEvent[] = [];
    for (const line of text.slice(0, complete).split('\n')) {
      if (!line.trim()) continue;
      try {
        const event: unknown = JSON.parse(line);
        if (isTrialEvent(event)) events.push(event);
      } catch {
        // a torn line (the node crashed mid-write): skip it
      }
    }
    return { events, offset: offset + Buffer.byteLength(text.slice(0, complete)) };
  } finally {
    closeSync(fd);
  }
}

function readLog(file: string | undefined): string | undefined {
  if (!file || !existsSync(file)) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export async function followTasks(o: FollowOptions): Promise<FollowResult> {
  const client = o.layout.client;
  const open = new Map(o.tasks.map((t) => [t.runId, t]));
  const offsets = new Map<string, number>();
  const summaries = new Map<string, TrialSummary>();
  const started = new Set<string>();
  const noted = new Map<string, string>();
  const outcomes: TrialOutcome[] = [];
  let lastQueue = new Map<string, QueuedTask>();
  let failures = 0;
  let cancelled = false;
  let halted: string | undefined;
  const users = [...new Set(o.tasks.map((t) => t.user ?? currentUser()))];
  // A running task's output (the trial's own log lines among Slurm's, in the shared directory
  // the runner follows) streamed to its run's logs/trial.log as a local trial's log is.
  const live = liveArtifactStore(client.trackingUri);
  const streams = new Map<string, LogStream>();
  const liveCopy = (logFile: string) => join(dirname(logFile), 'live', basename(logFile));
  const streamTaskLog = (task: TrackedTask) => {
    if (!task.logFile || streams.has(task.runId)) return;
    const { runId, logFile } = task;
    streams.set(
      runId,
      streamLog({
        file: logFile,
        everyMs: LOG_UPLOAD_INTERVAL_MS,
        upload: (file) => uploadTrialLog(live, [runId], file, liveCopy(logFile)),
      }),
    );
  };
  /** Stops the task's stream and uploads its log once more, as it ended (best effort). */
  const finishTaskLog = async (task: TrackedTask) => {
    await streams.get(task.runId)?.stop();
    streams.delete(task.runId);
    if (task.logFile && existsSync(task.logFile))
      await uploadTrialLog(live, [task.runId], task.logFile, liveCopy(task.logFile)).catch(
        () => undefined,
      );
  };

  const pump = (task: TrackedTask) => {
    if (!task.eventsFile) return;
    const read = readEvents(task.eventsFile, offsets.get(task.runId) ?? 0);
    offsets.set(task.runId, read.offset);
    for (const event of read.events) {
      if (event.type === 'done') summaries.set(task.runId, event.summary);
      if (task.trial) o.reporter?.trialEvent([task.trial], event);
    }
  };

  while (open.size > 0 && !o.signal?.aborted) {
    let queue: Map<string, QueuedTask>;
    try {
      queue = await queuedTasks(users, o.env);
      failures = 0;
    } catch (error) {
      // Never conclude "gone" from a failed squeue: wait and ask again (unless asked once).
      if (o.once || !(error instanceof UserError) || /not found on PATH/.test(error.message))
        throw error;
      if (failures++ === 0)
        o.log(`${error.message.split('\n')[0]} — retrying every ${o.pollSeconds} s`);
      await sleep(o.pollSeconds * 1000, undefined, { signal: o.signal }).catch(() => undefined);
      continue;
    }
    lastQueue = queue;
    let replayed = false;
    for (const task of [...open.values()]) {
      const queued = task.jobId ? queue.get(task.jobId) : undefined;
      if (queued && isRunningState(queued.state) && !started.has(task.runId)) {
        started.add(task.runId);
        if (task.trial)
          o.reporter?.trialStarted(task.trial, `${queued.node || '?'}, Slurm task ${task.jobId}`);
      }
      pump(task);
      if (queued && isRunningState(queued.state)) streamTaskLog(task);
      if (queued && noted.get(task.runId) !== queued.reason) {
        noted.set(task.runId, queued.reason);
        const note = waitNote(task, queued);
        if (note && !o.once) o.log(note);
      }
      if (queued && !isTerminalState(queued.state)) continue;

      let run = await client.getRun(task.runId);
      const ended = ['FINISHED', 'FAILED', 'KILLED'].includes(run.info.status);
      if (!ended && !replayed) {
        // The task may have ended its run while the server was away: deliver its journal first.
        replayed = true;
        await replayJournals(client, o.journalDir).catch(() => []);
        run = await client.getRun(task.runId);
      }
      const record = queued ? await jobRecord(task.jobId!, o.env) : undefined;
      const verdict = task.jobId
        ? judgeTask({
            slurm: queued && {
              state: queued.state,
              reason:
                queued.reason || (record?.Reason && record.Reason !== 'None' ? record.Reason : ''),
              exitCode: record?.ExitCode,
              timeLimit: queued.limit && queued.limit !== 'UNLIMITED' ? queued.limit : undefined,
              node: queued.node,
            },
            run: { status: run.info.status, reason: tagOf(run, TAGS.failureReason) },
            log: readLog(task.logFile),
            logPath: task.logFile ?? '(unknown)',
            afterTrial: task.afterTrial,
          })
        : neverSubmitted(run);
      if (!verdict.final) continue;
      pump(task);
      await finishTaskLog(task);
      await recordEnd(o, task, verdict);
      open.delete(task.runId);
      const summary = summaries.get(task.runId);
      const outcome: TrialOutcome = {
        trial: task.trial ?? ({ id: task.trialId } as Trial),
        status: verdict.status,
        reason: verdict.status === 'FINISHED' ? undefined : verdict.summary,
        summary,
        runId: task.runId,
        seconds:
          summary?.timings.total_s ??
          ((run.info.end_time ?? Date.now()) - (run.info.start_time ?? Date.now())) / 1000,
      };
      outcomes.push(outcome);
      if (task.trial) o.reporter?.trialEnded(outcome);
      else
        o.log(`${task.trialId} (not in the spec any more): ${verdict.status} ${verdict.summary}`);
      if (!halted && !cancelled && isDiskFullOutcome(outcome)) {
        // As a local sweep stops starting trials: the pending ones would fail the same way.
        halted = outcome.reason!.split('\n')[0];
        const pending = [...open.values()].flatMap((t) =>
          t.jobId && queue.get(t.jobId)?.state === 'PENDING' ? [t.jobId] : [],
        );
        if (pending.length > 0) {
          o.log(
            `${task.trialId}: ${halted}; cancelling the ${pending.length} trial(s) still pending in Slurm (scancel): free some space, then run the same command again`,
          );
          await scancel(pending, o.env);
        }
      }
      if (o.failFast && !cancelled && verdict.status !== 'FINISHED') {
        cancelled = true;
        const rest = [...open.values()].flatMap((t) => (t.jobId ? [t.jobId] : []));
        if (rest.length > 0) {
          o.log(
            `--fail-fast: ${task.trialId} did not finish; cancelling ${rest.length} other trial(s) (scancel)`,
          );
          await scancel(rest, o.env);
        }
      }
    }
    if (o.once || open.size === 0) break;
    await sleep(o.pollSeconds * 1000, undefined, { signal: o.signal }).catch(() => undefined);
  }
  for (const stream of streams.values()) await stream.stop();
  const waiting = [...open.values()].map((task) => {
    const q = task.jobId ? lastQueue.get(task.jobId) : undefined;
    return { task, state: q?.state ?? 'UNKNOWN', reason: q?.reason ?? '', node: q?.node ?? '' };
  });
  return { outcomes, waiting, ...(halted ? { halted } : {}) };
}

/** How long a run without a job id may be waiting for its sbatch before it counts as never submitted. */
const SUBMISSION_GRACE_MS = 10 * 60_000;

/** A run created for Slurm whose submission never completed (the runner died in between). */
function neverSubmitted(run: Run): Verdict {
  if (
    run.info.status === 'SCHEDULED' &&
    Date.now() - (run.info.start_time ?? 0) < SUBMISSION_GRACE_MS
  )
    return { final: false }; // another runner may be submitting it right now
  if (run.info.status === 'FINISHED')
    return {
      final: true,
      status: 'FINISHED',
      summary: 'finished',
      slurmState: 'UNKNOWN',
      slurmReason: '',
    };
  const reason = 'never submitted: the runner stopped between creating the run and sbatch';
  return {
    final: true,
    status: 'KILLED',
    reason,
    summary: reason,
    slurmState: 'NOT_SUBMITTED',
    slurmReason: '',
  };
}

/** Writes Slurm's verdict on the run, ends it if needed, and attaches the output and script. */
async function recordEnd(
  o: FollowOptions,
  task: TrackedTask,
  verdict: Verdict & { final: true },
): Promise<void> {
  if (verdict.reason !== undefined)
    await o.layout.markEnded(
      task.runId,
      verdict.status === 'FINISHED' ? 'FINISHED' : verdict.status,
      verdict.reason,
    );
  const logger = o.layout.attach(task.runId);
  logger.setTags({
    [SLURM_TAGS.state]: verdict.slurmState,
    [SLURM_TAGS.reason]: verdict.slurmReason || '-',
  });
  const staging = await mkdtemp(join(tmpdir(), 'vcp-slurm-'));
  try {
    if (task.logFile && existsSync(task.logFile)) {
      // Named as Slurm names output files: slurm-<array job>_<task>.out.
      const named = join(staging, `slurm-${task.jobId ?? 'unknown'}.out`);
      await copyFile(task.logFile, named);
      await logger.logArtifact(named, 'logs');
    }
    if (task.scriptFile && existsSync(task.scriptFile))
      await logger.logArtifact(task.scriptFile, 'slurm');
    await logger.flush();
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  logger.setTags({ [SLURM_TAGS.recorded]: 'true' });
  await logger.flush();
  // Everything in the trial's scratch directory is on the run now; its files stay for the record.
  const work = task.logFile && workDirOfLog(task.logFile);
  if (work) await rm(work, { recursive: true, force: true });
}
