/**
 * Entry point of a trial process: `node dist/runner/trial-main.js <job.json>` (from sources:
 * through tsx; see executors/trial-entry.ts). A job is one trial or an evaluation group
 * (TrialJob.members). Attaches to the MLflow run of each member the parent created, runs the
 * job, and ends each member's run FINISHED as soon as its results are recorded; the others
 * end FAILED (with the error) or KILLED (SIGTERM/SIGINT, or the runner went away). Progress
 * events go to the parent over the IPC channel.
 */
import { readFileSync } from 'node:fs';
import { formatError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import { endRunOnExit } from '../tracking/exit.js';
import { ExperimentLayout } from '../tracking/layout.js';
import { runTrial } from './trial.js';
import { STOP_AFTER_RECORDED_ENV, type TrialEvent, type TrialJob } from './trial-events.js';

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: trial-main.js <job.json>');
  const job = JSON.parse(readFileSync(file, 'utf8')) as TrialJob;
  const client = new MlflowClient({ trackingUri: job.trackingUri, env: process.env });
  const layout = new ExperimentLayout(client, { journalDir: job.journalDir });
  const loggers = job.members.map((m) => layout.attach(m.runId));
  const releases = loggers.map((logger) => endRunOnExit(logger));
  let lastSent = Promise.resolve();
  const emit = (event: TrialEvent) => {
    if (!process.connected) return;
    lastSent = new Promise<void>((resolve) => process.send!(event, () => resolve()));
  };
  process.on('disconnect', onDisconnect);
  const stopAfter = Number(process.env[STOP_AFTER_RECORDED_ENV] ?? 0);
  let recorded = 0;
  try {
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
    const reason = formatError(error, true);
    for (const logger of loggers)
      if (!logger.isEnded) await logger.end('FAILED', reason).catch(() => undefined);
    throw error;
  } finally {
    releases.forEach((release) => release());
  }
  await lastSent; // the last 'done' is delivered before the channel closes
}

/** The runner died (e.g. SIGKILL): stop as if told to, so the run ends KILLED, not RUNNING. */
function onDisconnect(): void {
  process.kill(process.pid, 'SIGTERM');
}

function leave(): void {
  // The IPC channel keeps the event loop alive.
  process.off('disconnect', onDisconnect);
  if (process.connected) process.disconnect();
}

main().then(leave, (error: unknown) => {
  console.error(`trial failed: ${formatError(error, true)}`);
  process.exitCode = 1;
  leave();
});
