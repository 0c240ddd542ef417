/**
 * Replays journals of undelivered tracking data, in order and exactly once.
 */
import { join } from 'node:path';
import { ArtifactStore } from './artifacts.js';
import type { MlflowClient } from './client.js';
import { MlflowUnreachableError } from './http.js';
import { RunJournal } from './journal.js';

/**
 * Sends a run's unacknowledged journal entries, acknowledging each one as the server takes
 * it; throws MlflowUnreachableError (with the journal intact) when the server goes away.
 */
export async function replayJournal(
  client: MlflowClient,
  journal: RunJournal,
  artifacts = new ArtifactStore(client),
): Promise<number> {
  const pending = journal.pending();
  for (const [index, entry] of pending.entries()) {
    switch (entry.t) {
      case 'batch':
        try {
          // The oldest entry may have been sent by a replay that died before writing its ack.
          await client.logBatchRequest(journal.runId, entry.batch, {
            uncertain: entry.uncertain || index === 0,
          });
        } catch (error) {
          if (error instanceof MlflowUnreachableError && error.uncertain && !entry.uncertain)
            journal.markUncertain(entry.seq);
          throw error;
        }
        break;
      case 'artifact':
        await artifacts.putFile(journal.runId, join(journal.filesDir, entry.file), entry.target);
        break;
      case 'end':
        await client.updateRun(journal.runId, { status: entry.status, endTime: entry.endTime });
        break;
    }
    journal.ack(entry.seq);
  }
  journal.removeIfDone();
  return pending.length;
}

/**
 * Replays every journal left in `journalDir` (e.g. by a process that lost its server), or
 * only those of `only` (runs whose processes have ended); returns the run ids delivered.
 */
export async function replayJournals(
  client: MlflowClient,
  journalDir: string,
  only?: readonly string[],
): Promise<string[]> {
  const done: string[] = [];
  const ids = RunJournal.runIds(journalDir);
  for (const runId of only ? ids.filter((id) => only.includes(id)) : ids) {
    const journal = new RunJournal(journalDir, runId);
    if (!journal.isEmpty) await replayJournal(client, journal);
    journal.removeIfDone();
    done.push(runId);
  }
  return done;
}
