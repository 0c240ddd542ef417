/**
 * Opens the tracking backend a command uses: the server the command chose by the one rule of
 * tracking-uri.ts (by default MLFLOW_TRACKING_URI when set), otherwise the managed local server
 * (started now, or reused).
 */
import { join } from 'node:path';
import { MlflowClient } from './client.js';
import type { RetryPolicy } from './http.js';
import { resolveStateDir, startLocalServer, type LocalServer } from './server.js';
import { ServerSupervisor } from './supervisor.js';
import { changeHint, chooseTrackingUri, type TrackingChoice } from './tracking-uri.js';

export interface Tracking {
  client: MlflowClient;
  stateDir: string;
  /** Where RunLoggers journal what the server could not take. */
  journalDir: string;
  /** The managed server, when no MLFLOW_TRACKING_URI was given (the one started first). */
  server?: LocalServer;
  /** Resolves when the server can take requests (waits while a supervised server restarts). */
  ready(): Promise<void>;
  /** Stops the managed server if this call started it (unless keepServer), and any restart of it. */
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
  /** Restart the managed server when it dies, telling `supervise` (sweeps). */
  supervise?: (line: string) => void;
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
    return {
      client,
      stateDir,
      journalDir,
      ready: async () => undefined,
      close: async () => undefined,
    };
  }
  options.onStarting?.(stateDir);
  const server = await startLocalServer({ stateDir, env });
  const client = new MlflowClient({ trackingUri: server.url, env, retry: options.retry });
  const supervisor = options.supervise
    ? new ServerSupervisor(server, { stateDir, env, log: options.supervise }).start()
    : undefined;
  return {
    client,
    stateDir,
    journalDir,
    server,
    ready: async () => supervisor?.ready(),
    close: async () => {
      await supervisor?.stop();
      if (options.keepServer) return;
      // A restarted server was started here even when the first one was reused.
      if (supervisor && supervisor.restarts > 0) await supervisor.current.stop();
      else await server.stop();
    },
  };
}
