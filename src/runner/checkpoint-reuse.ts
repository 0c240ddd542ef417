/**
 * When a sweep may reuse the checkpoint a trial of the same training key left under
 * `<state>/checkpoints/<trainingKey>`. A checkpoint becomes reusable only once the run that
 * trained it has logged it to MLflow (or journaled it for delivery): the trainer then writes
 * `logged.json` beside it with that run id and the sha256 of both files. So:
 *  - a checkpoint saved by a trial stopped before it logged it is not reused (the reusing
 *    trial's `vcp.checkpoint_from` would name a run without a `checkpoint/` artifact);
 *  - a checkpoint whose files changed on disk since (bytes overwritten, truncated) is not
 *    reused: it would evaluate garbage without a word.
 * Either one is discarded, said so, and trained again.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS, sha256Hex } from '../model/checkpoint.js';

export const LOGGED_MARKER = 'logged.json';

interface LoggedMarker {
  run_id: string;
  sha256: Record<string, string>;
}

export type ReuseDecision =
  | { reuse: true; runId: string }
  /** `discard`: why an existing checkpoint must not be used (absent when there is none). */
  | { reuse: false; discard?: string };

const FILES = [CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS] as const;

async function hashOf(file: string): Promise<string | undefined> {
  return readFile(file).then(sha256Hex, () => undefined);
}

/** Whether the checkpoint in `dir` may be reused, and from which run. */
export async function reusableCheckpoint(dir: string): Promise<ReuseDecision> {
  if (!existsSync(dir)) return { reuse: false };
  let marker: LoggedMarker;
  try {
    marker = JSON.parse(await readFile(join(dir, LOGGED_MARKER), 'utf8')) as LoggedMarker;
  } catch {
    return {
      reuse: false,
      discard: 'it was saved but never logged to MLflow (its trial stopped in between)',
    };
  }
  for (const file of FILES) {
    const actual = await hashOf(join(dir, file));
    if (actual === undefined) return { reuse: false, discard: `${file} is missing` };
    if (actual !== marker.sha256?.[file])
      return {
        reuse: false,
        discard: `${file} has sha256 ${actual.slice(0, 12)}…, not the ${String(marker.sha256?.[file]).slice(0, 12)}… it was logged with (changed or damaged on disk)`,
      };
  }
  return { reuse: true, runId: marker.run_id };
}

/** Records that run `runId` logged the checkpoint in `dir`: from now on it may be reused. */
export async function markLogged(dir: string, runId: string): Promise<void> {
  const sha256: Record<string, string> = {};
  for (const file of FILES) {
    const hash = await hashOf(join(dir, file));
    if (hash === undefined) throw new Error(`${join(dir, file)} vanished before it was marked`);
    sha256[file] = hash;
  }
  const marker: LoggedMarker = { run_id: runId, sha256 };
  const temp = join(dir, `.${LOGGED_MARKER}.tmp-${process.pid}`);
  await writeFile(temp, `${JSON.stringify(marker, null, 2)}\n`);
  await rename(temp, join(dir, LOGGED_MARKER));
}

/** Removes a checkpoint that must not be reused (it is trained again). */
export async function discardCheckpoint(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
