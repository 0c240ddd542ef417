/**
 * Entry point of a trial's child process: `node dist/runner/trial-main.js <job.json>` (from
 * sources: through tsx; see executors/trial-entry.ts).
 * Attaches to the MLflow run the parent created, runs the trial, and ends the run FINISHED,
 * FAILED (with the error) or KILLED (SIGTERM/SIGINT, or the runner went away). Progress
 * events go to the parent over the IPC channel.
 */
import { readFileSync } from 'node:fs';
import { formatError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import { runLogged } from '../tracking/exit.js';
import { ExperimentLayout } from '../tracking/layout.js';
import { runTrial } from './trial.js';
import { TrialLog } from './trial-log.js';
import type { TrialEvent, TrialJob } from './trial-events.js';

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
    if (process.connected) process.send?.(event);
  };
  process.on('disconnect', onDisconnect);
  const summary = await runLogged(logger, (l) => runTrial({ job, logger: l, emit }));
  log.event({ type: 'done', summary });
  if (process.connected)
    await new Promise<void>((resolve) =>
      process.send!({ type: 'done', summary } satisfies TrialEvent, () => resolve()),
    );
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
