/**
 * Entry point of a trial's child process: `node dist/runner/trial-main.js <job.json>` (from
 * sources: through tsx; see executors/trial-entry.ts).
 * Attaches to the MLflow run the parent created, runs the trial, and ends the run FINISHED,
 * FAILED (with the error; exit code 28 when a disk was full) or KILLED (SIGTERM/SIGINT, or the
 * runner went away). Progress events go to the parent over the IPC channel.
 *
 * The runner going away (SIGKILL, a crash) shows up two ways: the channel's 'disconnect'
 * event, or a send that fails (EPIPE) before that event arrives. Both end the run KILLED with
 * what was logged: an unhandled send error would have surfaced as an uncaught exception and
 * ended it FAILED, as if the trial itself had broken.
 */
import { readFileSync } from 'node:fs';
import { formatError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import { endRunsAndExit, failureExitCode, runLogged } from '../tracking/exit.js';
import { ExperimentLayout } from '../tracking/layout.js';
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
  const layout = new ExperimentLayout(client, { journalDir: job.journalDir });
  const logger = layout.attach(job.runId);
  // The trial's own log: stdout goes to logs/trial.log (with stderr) via the executor.
  const log = new TrialLog((line) => process.stdout.write(`${line}\n`));
  const emit = (event: TrialEvent) => {
    log.event(event);
    if (process.connected) process.send?.(event, (error: Error | null) => error && onParentLost());
  };
  process.on('disconnect', onParentLost);
  const summary = await runLogged(logger, (l) => runTrial({ job, logger: l, emit }));
  log.event({ type: 'done', summary });
  if (process.connected)
    await new Promise<void>((resolve) =>
      process.send!({ type: 'done', summary } satisfies TrialEvent, () => resolve()),
    );
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
