/**
 * Entry point of a trial process: `node dist/runner/trial-main.js <job.json>` (from sources:
 * through tsx; the command line comes from executors/trial-entry.ts). A job is one trial or an
 * evaluation group (TrialJob.members; a Slurm task runs one trial). Attaches to the MLflow run
 * of each member the runner created, runs the job, and ends each member's run FINISHED as soon
 * as its results are recorded; the others end FAILED (with the error; exit code 28 when a disk
 * was full) or KILLED (SIGTERM/SIGINT, or the runner went away). A local child sends its
 * progress events to the parent over IPC; a Slurm array task (no IPC channel; Slurm's
 * scancel/time limit arrive as SIGTERM) appends them to the job's events file.
 *
 * A local child's runner going away (SIGKILL, a crash) shows up two ways: the channel's
 * 'disconnect' event, or a send that fails (EPIPE) before that event arrives. Both end the
 * unfinished runs KILLED with what was logged: an unhandled send error would have surfaced as
 * an uncaught exception and ended them FAILED, as if the trial itself had broken.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { formatError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import { describe, endRunOnExit, endRunsAndExit, failureExitCode } from '../tracking/exit.js';
import { ExperimentLayout } from '../tracking/layout.js';
import { checkTaskSpace, startSlurmTask } from './executors/slurm-task.js';
import { runTrial } from './trial.js';
import { STOP_AFTER_RECORDED_ENV, type TrialEvent, type TrialJob } from './trial-events.js';
import { TrialLog } from './trial-log.js';

/** Exit code of a trial stopped because its runner went away (128 + SIGHUP, like a lost terminal). */
export const PARENT_LOST_EXIT_CODE = 129;

const parentPid = process.ppid;

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: trial-main.js <job.json>');
  const job = JSON.parse(readFileSync(file, 'utf8')) as TrialJob;
  const client = new MlflowClient({ trackingUri: job.trackingUri, env: process.env });
  if (job.slurm) {
    const [{ runId, trial }] = job.members;
    if (!(await startSlurmTask(client, runId))) {
      console.log(`run ${runId} of trial ${trial.id} already FINISHED: nothing to do`);
      return;
    }
  }
  const layout = new ExperimentLayout(client, { journalDir: job.journalDir });
  const loggers = job.members.map((m) => layout.attach(m.runId));
  // Watched until each ends FINISHED: a signal or the runner's death ends only the others.
  const releases = loggers.map((logger) => endRunOnExit(logger));
  // The trial's own log: stdout goes to logs/trial.log (with stderr) via the executor.
  const log = new TrialLog((line) => process.stdout.write(`${line}\n`));
  let lastSent = Promise.resolve();
  const emit = (event: TrialEvent) => {
    log.event(event);
    if (process.connected) {
      lastSent = new Promise<void>((resolve) =>
        process.send!(event, (error: Error | null) => {
          if (error) onParentLost();
          resolve();
        }),
      );
    } else if (job.eventsFile) {
      try {
        appendFileSync(job.eventsFile, `${JSON.stringify(event)}\n`);
      } catch {
        // Progress is a courtesy: the run in MLflow is the record.
      }
    }
  };
  process.on('disconnect', onParentLost);
  const stopAfter = Number(process.env[STOP_AFTER_RECORDED_ENV] ?? 0);
  let recorded = 0;
  try {
    if (job.slurm) await checkTaskSpace(job); // a local child's runner checked before starting it
    await runTrial({
      job,
      recorders: loggers,
      emit,
      onRecorded: async (member) => {
        await loggers[member].end('FINISHED');
        releases[member]();
        if (++recorded === stopAfter) process.kill(process.pid, 'SIGSTOP');
      },
    });
  } catch (error) {
    const reason = describe(error);
    for (const logger of loggers)
      if (!logger.isEnded) await logger.end('FAILED', reason).catch(() => undefined);
    throw error;
  } finally {
    releases.forEach((release) => release());
  }
  await lastSent; // the last 'done' is delivered before the channel closes
}

/** The runner died (e.g. SIGKILL): end the unfinished runs KILLED, not FAILED, and not left RUNNING. */
function onParentLost(): void {
  endRunsAndExit(
    'KILLED',
    `its runner (pid ${parentPid}) went away, so the trial stopped; run the sweep again to resume`,
    PARENT_LOST_EXIT_CODE,
  );
}

function leave(): void {
  // The IPC channel keeps the event loop alive.
  process.off('disconnect', onParentLost);
  if (process.connected) process.disconnect();
}

main().then(leave, (error: unknown) => {
  console.error(`trial failed: ${formatError(error, true)}`);
  process.exitCode = failureExitCode(error);
  leave();
});
