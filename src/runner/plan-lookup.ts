/**
 * The finished-trials lookup of `vcp-exp plan`. Planning must stay fast and work without
 * MLflow: a server is asked only when one is named (--tracking-uri, MLFLOW_TRACKING_URI,
 * the spec's tracking.uri) or the managed one is already running; `--mlflow` starts it.
 */
import { MlflowClient } from '../tracking/client.js';
import { openTracking } from '../tracking/connect.js';
import { changeHint, chooseTrackingUri } from '../tracking/tracking-uri.js';
import { ExperimentLayout } from '../tracking/layout.js';
import { isHealthy, readServerState, resolveStateDir } from '../tracking/server.js';
import { mlflowLookup } from './resume.js';
import type { FinishedTrialLookup } from './plan.js';
import type { Spec } from './spec-types.js';

export interface PlanLookupOptions {
  trackingUri?: string;
  /** Start the managed server when none is running. */
  mlflow?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface PlanLookup {
  lookup: FinishedTrialLookup;
  /** The server asked (plan also reads earlier runs' timings from it). */
  client: MlflowClient;
  where: string;
  close(): Promise<void>;
}

/** A lookup, or undefined when no server is named or running (the plan then says so). */
export async function openPlanLookup(
  spec: Spec,
  options: PlanLookupOptions = {},
): Promise<PlanLookup | undefined> {
  const env = options.env ?? process.env;
  const retry = { attempts: 2, baseDelayMs: 100, maxDelayMs: 500 };
  const journalDir = `${resolveStateDir(undefined, env)}/journal`;
  const choice = chooseTrackingUri({
    flag: options.trackingUri,
    env,
    spec: { uri: spec.tracking.uri, file: spec.file },
  });
  const make = (client: MlflowClient, where: string, close: () => Promise<void>): PlanLookup => ({
    lookup: mlflowLookup(new ExperimentLayout(client, { journalDir }), spec.tracking.experiment),
    client,
    where,
    close,
  });
  if (choice.uri)
    return make(
      new MlflowClient({
        trackingUri: choice.uri,
        env,
        retry,
        origin: { what: choice.origin, hint: changeHint(choice) },
      }),
      choice.uri,
      async () => undefined,
    );
  const state = readServerState(resolveStateDir(undefined, env));
  if (state && (await isHealthy(state.url, 1_000)))
    return make(
      new MlflowClient({ trackingUri: state.url, env, retry }),
      state.url,
      async () => undefined,
    );
  if (!options.mlflow) return undefined;
  const tracking = await openTracking({ env, retry, choice });
  return make(tracking.client, tracking.client.http.baseUrl, () => tracking.close());
}
