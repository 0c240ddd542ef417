/**
 * Entry point of a trial's process: `node dist/runner/trial-main.js <job.json>` (from
 * sources: through tsx; the command line comes from executors/trial-entry.ts). Attaches to
 * the MLflow run the runner created, runs the trial, and ends the run FINISHED, FAILED (with
 * the error; exit code 28 when a disk was full) or KILLED (SIGTERM/SIGINT, or the runner went
 * away). A local child sends its progress events to the parent over IPC; a Slurm array task
 * (no IPC channel; Slurm's scancel/time limit arrive as SIGTERM) appends them to the job's
 * events file, which the runner reads.
 *
 * A local child's runner going away (SIGKILL, a crash) shows up two ways: the channel's
 * 'disconnect' event, or a send that fails (EPIPE) before that event arrives. Both end the run
 * KILLED with what was logged: an unhandled send error would have surfaced as an uncaught
 * exception and ended it FAILED, as if the trial itself had broken.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { formatError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import { endRunsAndExit, failureExitCode, runLogged } from '../tracking/exit.js';
import { ExperimentLayout } from '../tracking/layout.js';
import { checkTaskSpace, startSlurmTask } from './executors/slurm-task.js';
import { runTrial } from './trial.js';
import { TrialLog } from './trial-log.js';
import type { TrialEvent, TrialJob } from './trial-events.js';

/** Exit code of a trial stopped because its runner went away (128 + SIGHUP, like a lost terminal). */
export const PARENT_LOST_EXIT_CODE = 129;

const parentPid = process.ppid;

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: trial-main.js <job.json>');
  const job = JSON.parse(readFileSync(file, 'utf8')) as TrialJob;
  const client = new MlflowClient({ trackingUri: job.trackingUri, env: process.env });
  if (job.slurm && !(await startSlurmTask(client, job.runId))) {
    console.log(`run ${job.runId} of trial ${job.trial.id} already FINISHED: nothing to do`);
    return;
  }
  const layout = new ExperimentLayout(client, { journalDir: job.journalDir });
  const logger = layout.attach(job.runId);
  // The trial's own log: stdout goes to logs/trial.log (with stderr) via the executor.
  const log = new TrialLog((line) => process.stdout.write(`${line}\n`));
  const sink = eventSink(job);
  const emit = (event: TrialEvent) => {
    log.event(event);
    sink(event);
  };
  process.on('disconnect', onParentLost);
  const summary = await runLogged(logger, async (l) => {
    if (job.slurm) await checkTaskSpace(job); // a local child's runner checked before starting it
    return runTrial({ job, logger: l, emit });
  });
  emit({ type: 'done', summary });
  if (process.connected)
    await new Promise<void>((resolve) =>
      process.send!({ type: 'done', summary } satisfies TrialEvent, () => resolve()),
    );
}

/** IPC to the parent when there is one, else the job's events file (one JSON line per event). */
function eventSink(job: TrialJob): (event: TrialEvent) => void {
  return (event) => {
    if (process.connected) {
      // 'done' waits for its delivery in main().
      if (event.type !== 'done')
        process.send?.(event, (error: Error | null) => error && onParentLost());
    } else if (job.eventsFile) {
      try {
        appendFileSync(job.eventsFile, `${JSON.stringify(event)}\n`);
      } catch {
        // Progress is a courtesy: the run in MLflow is the record.
      }
    }
  };
}

/** The runner died (e.g. SIGKILL): end the run KILLED, not FAILED, and not left RUNNING. */
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
