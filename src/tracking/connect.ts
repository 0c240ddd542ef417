/**
 * Opens the tracking backend a command uses: the server the command chose by the one rule of
 * tracking-uri.ts (by default MLFLOW_TRACKING_URI when set), otherwise the managed local server
 * (started now, or reused).
 */
import { join } from 'node:path';
import { MlflowClient } from './client.js';
import type { RetryPolicy } from './http.js';
import { resolveStateDir, startLocalServer, type LocalServer } from './server.js';
import { changeHint, chooseTrackingUri, type TrackingChoice } from './tracking-uri.js';

export interface Tracking {
  client: MlflowClient;
  stateDir: string;
  /** Where RunLoggers journal what the server could not take. */
  journalDir: string;
  /** The managed server, when no MLFLOW_TRACKING_URI was given. */
  server?: LocalServer;
  /** Stops the managed server if this call started it (unless keepServer). */
  close(): Promise<void>;
}

export interface OpenTrackingOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Leave a server started here running after close() (for browsing the UI). */
  keepServer?: boolean;
  retry?: Partial<RetryPolicy>;
  /** Told when the managed server is being started (it takes several seconds). */
  onStarting?: (stateDir: string) => void;
  /** The server the command chose (tracking-uri.ts); default: MLFLOW_TRACKING_URI, else managed. */
  choice?: TrackingChoice;
}

export async function openTracking(options: OpenTrackingOptions = {}): Promise<Tracking> {
  const env = options.env ?? process.env;
  const stateDir = resolveStateDir(options.cwd, env);
  const journalDir = join(stateDir, 'journal');
  const choice = options.choice ?? chooseTrackingUri({ env });
  if (choice.uri) {
    const client = new MlflowClient({
      trackingUri: choice.uri,
      env,
      retry: options.retry,
      origin: { what: choice.origin, hint: changeHint(choice) },
    });
    return { client, stateDir, journalDir, close: async () => undefined };
  }
  options.onStarting?.(stateDir);
  const server = await startLocalServer({ stateDir, env });
  const client = new MlflowClient({ trackingUri: server.url, env, retry: options.retry });
  return {
    client,
    stateDir,
    journalDir,
    server,
    close: () => (options.keepServer ? Promise.resolve() : server.stop()),
  };
}
