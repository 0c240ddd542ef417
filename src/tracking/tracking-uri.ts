/**
 * Which MLflow server a command talks to: one rule for every command, stated once here and in
 * `--help` and the README. A flag beats the environment (said for this one command), the
 * environment beats the spec (MLflow's own tools read MLFLOW_TRACKING_URI, and a spec written
 * on another machine may name a server that is not reachable here), the spec beats the
 * managed local server.
 */
import { UserError } from '../errors.js';

export type TrackingUriSource = 'flag' | 'env' | 'spec' | 'managed';

/** The rule, as --help and the README say it. */
export const TRACKING_URI_RULE =
  "--tracking-uri, else MLFLOW_TRACKING_URI, else the spec's tracking.uri, else the managed local server";

export interface TrackingChoice {
  /** Undefined: the managed local server (started, or reused). */
  uri?: string;
  source: TrackingUriSource;
  /** Where the URI came from, for messages: "--tracking-uri", "MLFLOW_TRACKING_URI", … */
  origin: string;
}

export function chooseTrackingUri(options: {
  flag?: string;
  env?: NodeJS.ProcessEnv;
  /** The spec's tracking.uri and its file (commands without a spec leave it out). */
  spec?: { uri?: string; file: string };
}): TrackingChoice {
  const env = options.env ?? process.env;
  const flag = options.flag?.trim();
  const fromEnv = env.MLFLOW_TRACKING_URI?.trim();
  const fromSpec = options.spec?.uri?.trim();
  const choice: TrackingChoice = flag
    ? { uri: flag, source: 'flag', origin: '--tracking-uri' }
    : fromEnv
      ? { uri: fromEnv, source: 'env', origin: 'MLFLOW_TRACKING_URI' }
      : fromSpec
        ? { uri: fromSpec, source: 'spec', origin: `tracking.uri of ${options.spec!.file}` }
        : { source: 'managed', origin: 'the managed local server' };
  if (choice.uri !== undefined && !/^https?:\/\//.test(choice.uri))
    throw new UserError(`${choice.origin} "${choice.uri}" is not an http(s) MLflow server`, {
      hint: `vcp-exp talks to MLflow over its REST API: name \`mlflow server\` (http://host:port); the server is chosen by ${TRACKING_URI_RULE}`,
    });
  return choice;
}

/** How to point a command elsewhere when the chosen server is not the right one. */
export function changeHint(choice: TrackingChoice): string {
  const how: Record<TrackingUriSource, string> = {
    flag: 'check that it is running, or pass another --tracking-uri',
    env: "check that it is running, or unset MLFLOW_TRACKING_URI (then the spec's tracking.uri or the managed local server is used)",
    spec: "check that it is running, or edit the spec's tracking.uri (MLFLOW_TRACKING_URI or --tracking-uri override it)",
    managed: 'see .vcp-exp/mlflow-server.log',
  };
  return `${how[choice.source]}; the server is chosen by ${TRACKING_URI_RULE}`;
}
