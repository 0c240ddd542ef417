import { hostname } from 'node:os';
import { UserError } from '../errors.js';
import { MlflowClient } from '../tracking/client.js';
import {
  compareUrl,
  experimentUrl,
  HEADLINE_VIEW_ID,
  SHARED_VIEW_PREFIX,
} from '../tracking/mlflow-ui.js';
import {
  isAlive,
  resolveStateDir,
  serverStatus,
  startLocalServer,
  stopLocalServer,
} from '../tracking/server.js';

export interface MlflowCommandOptions {
  port?: number | string;
  /** ui: print the UI link comparing these runs ("<run id>,<run id>"). */
  compare?: string;
  host?: string;
}

/** `vcp-exp mlflow ui|stop|status`: the managed local MLflow server of this directory. */
export async function mlflowCommand(action: string, options: MlflowCommandOptions): Promise<void> {
  const stateDir = resolveStateDir();
  switch (action) {
    case 'ui':
      return ui(stateDir, options);
    case 'stop': {
      const stopped = await stopLocalServer(stateDir);
      console.log(
        stopped
          ? `stopped the MLflow server of ${stateDir}`
          : `no MLflow server was running for ${stateDir}`,
      );
      return;
    }
    case 'status': {
      const status = await serverStatus(stateDir);
      if (status.state === 'running')
        console.log(`MLflow server running at ${status.server.url} (pid ${status.server.pid})`);
      else if (status.state === 'orphaned')
        console.log(
          `MLflow server of ${stateDir}: its main process ${status.server.pid} is gone, but its worker process${status.pids.length > 1 ? 'es' : ''} ${status.pids.join(', ')} ${status.serving ? `still serve${status.pids.length > 1 ? '' : 's'} ${status.server.url}` : 'still run'}; stop ${status.pids.length > 1 ? 'them' : 'it'} with vcp-exp mlflow stop`,
        );
      else console.log(`no MLflow server running for ${stateDir}`);
      return;
    }
    default:
      throw new UserError(`unknown mlflow action "${action}"`, {
        hint: 'use one of: vcp-exp mlflow ui [--port N], vcp-exp mlflow stop, vcp-exp mlflow status',
      });
  }
}

async function ui(stateDir: string, options: MlflowCommandOptions): Promise<void> {
  const port = options.port === undefined ? undefined : Number(options.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new UserError(`--port ${options.port}: expected a port number between 1 and 65535`);
  }
  console.log(`starting MLflow (state in ${stateDir}; this takes several seconds)…`);
  const host = options.host?.trim() || undefined;
  if (host !== undefined && !/^[A-Za-z0-9.:-]+$/.test(host))
    throw new UserError(`--host ${options.host}: expected an IP address or a host name`);
  const server = await startLocalServer({ stateDir, port, host });
  if (server.reused) {
    const note =
      port !== undefined && port !== server.port
        ? ` (not on ${port}: stop it first with \`vcp-exp mlflow stop\`)`
        : '';
    console.log(
      `MLflow UI: ${server.url}  — already running${note}; it stays up after you leave (vcp-exp mlflow stop).`,
    );
  } else {
    console.log(`MLflow UI: ${server.url}  — press Ctrl-C to stop`);
  }
  if (host !== undefined && !['127.0.0.1', 'localhost', '::1'].includes(host))
    console.log(
      `listening on ${host}: other machines (e.g. Slurm nodes) reach it as http://${host === '0.0.0.0' || host === '::' ? hostname() : host}:${server.port}; anyone who can reach this port can read and write your runs`,
    );
  for (const line of await uiLinks(server.url, options.compare)) console.log(line);
  const stoppedElsewhere = await new Promise<boolean>((resolve) => {
    const watch = setInterval(() => !isAlive(server.pid) && resolve(true), 1_000);
    const onSignal = () => (clearInterval(watch), resolve(false));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  if (stoppedElsewhere) {
    console.log('the MLflow server has stopped');
    process.exit(0); // the watch timer and signal listeners would keep the process alive
  }
  await server.stop();
  if (!server.reused) console.log('MLflow server stopped');
}

/** Each experiment's runs (its headline view when vcp-exp saved one), and the compare link asked for. */
async function uiLinks(url: string, compare: string | undefined): Promise<string[]> {
  const client = new MlflowClient({ trackingUri: url, retry: { attempts: 2 } });
  const lines: string[] = [];
  if (compare !== undefined) {
    const ids = compare.split(',').map((id) => id.trim());
    if (ids.length < 2 || ids.some((id) => !/^[0-9a-f]{32}$/.test(id)))
      throw new UserError(`--compare ${compare}: expected two or more run ids, comma-separated`, {
        hint: 'vcp-exp compare <a> <b> prints the command with the run ids',
      });
    const runs = await Promise.all(ids.map((id) => client.getRun(id)));
    lines.push(
      `compare: ${compareUrl(
        url,
        ids,
        runs.map((r) => r.info.experiment_id),
      )}`,
    );
  }
  const experiments = await client.searchExperiments({ viewType: 'ACTIVE_ONLY' });
  for (const e of experiments) {
    const view = e.tags.some((t) => t.key === `${SHARED_VIEW_PREFIX}${HEADLINE_VIEW_ID}`);
    if (e.name === 'Default' && !view) continue;
    lines.push(`  ${e.name}: ${experimentUrl(url, e.experiment_id, view)}`);
  }
  return lines;
}
