/**
 * Streams a growing log file to its run while the trial runs: every `everyMs` the file is
 * uploaded again when it grew (the upload replaces the previous copy). Best effort: a failed
 * upload is tried again at the next tick; the executor's final upload (journaled when the
 * server is away) is the one that must arrive.
 */
import { stat } from 'node:fs/promises';
import { copyWithoutNativeLogNoise } from '../../io/native-log.js';
import { TRIAL_LOG_ARTIFACT } from '../../tracking/artifact-names.js';
import { ArtifactStore } from '../../tracking/artifacts.js';
import { MlflowClient } from '../../tracking/client.js';

export interface LogStream {
  /** Stops the ticks and waits for an upload in flight. */
  stop(): Promise<void>;
}

export function streamLog(options: {
  file: string;
  everyMs: number;
  upload: (file: string) => Promise<void>;
}): LogStream {
  let uploaded = -1;
  let inFlight: Promise<void> | undefined;
  const tick = () => {
    if (inFlight) return;
    inFlight = (async () => {
      const size = (await stat(options.file).catch(() => undefined))?.size;
      if (size === undefined || size === uploaded) return;
      await options.upload(options.file);
      uploaded = size;
    })()
      .catch(() => undefined)
      .finally(() => (inFlight = undefined));
  };
  const timer = setInterval(tick, options.everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

/**
 * Where the growing logs go: one attempt per upload, never retried or journaled (the next
 * tick or the final upload is the retry), so a server that is away never stalls a trial.
 */
export function liveArtifactStore(trackingUri: string): ArtifactStore {
  return new ArtifactStore(new MlflowClient({ trackingUri, retry: { attempts: 1 } }));
}

/** Uploads `file` without TensorFlow's start-up lines (written to `copy`) as each run's logs/trial.log. */
export async function uploadTrialLog(
  store: ArtifactStore,
  runIds: readonly string[],
  file: string,
  copy: string,
): Promise<void> {
  await copyWithoutNativeLogNoise(file, copy);
  for (const runId of runIds) await store.putFile(runId, copy, TRIAL_LOG_ARTIFACT);
}
