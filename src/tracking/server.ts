/**
 * The managed local MLflow server: `mlflow server` (from the venv of mlflow-install.ts) on 127.0.0.1 with a SQLite
 * store and proxied artifacts under the project's state directory. A state file (pid, port)
 * lets later commands reuse a running server instead of starting another.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { projectRoot } from '../io/package-root.js';
import { mlflowBin, mlflowVenv } from './mlflow-install.js';

export { MLFLOW_VERSION } from './mlflow-install.js';
export { projectRoot };

const STATE_FILE = 'mlflow-server.json';
const LOCK_FILE = 'mlflow-server.lock';
const LOG_FILE = 'mlflow-server.log';

export interface ServerState {
  pid: number;
  port: number;
  /** Address the server listens on (127.0.0.1 unless asked otherwise). */
  host?: string;
  url: string;
  stateDir: string;
  startedAt: string;
}

export interface LocalServer {
  url: string;
  port: number;
  pid: number;
  /** True when an already running server was reused (stop() then leaves it running). */
  reused: boolean;
  logPath: string;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  stateDir: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  /**
   * Address to listen on (default 127.0.0.1, this machine only). Another address, e.g.
   * 0.0.0.0 for a server Slurm's compute nodes must reach, also allows the Host headers of
   * this machine's names and addresses (MLflow refuses others, against DNS rebinding).
   */
  host?: string;
  /** The mlflow executable (default: $VCP_EXP_MLFLOW, else the venv of `vcp-exp setup`). */
  mlflowBin?: string;
  /** How long to wait for /health (default 120 s: the first start creates the database). */
  startTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** `.vcp-exp/` in the working directory, or $VCP_EXP_STATE_DIR. */
export function resolveStateDir(cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): string {
  return resolve(cwd, env.VCP_EXP_STATE_DIR || '.vcp-exp');
}

export function mlflowExecutable(env: NodeJS.ProcessEnv = process.env): string {
  const bin = mlflowBin(env);
  if (!existsSync(bin)) {
    throw new UserError(`MLflow is not installed: ${bin} does not exist`, {
      hint: 'run `vcp-exp setup mlflow` (`npm run setup:mlflow` in a checkout; it needs python3 with venv: apt-get install python3-venv), or set MLFLOW_TRACKING_URI to a running server',
    });
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolvePort(port));
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `pid` is an MLflow server (a recycled pid of another program must never be killed). */
export function isMlflowProcess(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('mlflow');
  } catch {
    return false; // no /proc: leave the process alone
  }
}

export async function isHealthy(url: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** The URL host of a listen address: a wildcard address is reached through loopback here. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Host headers a non-loopback server accepts: this machine's names and addresses, with and without the port. */
export function allowedHosts(host: string, port: number): string[] {
  const names = new Set(['localhost', '127.0.0.1', hostname()]);
  if (host !== '0.0.0.0' && host !== '::') names.add(host);
  else
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) if (a.family === 'IPv4') names.add(a.address);
  return [...names].flatMap((n) => [n, `${n}:${port}`]);
}

export function readServerState(stateDir: string): ServerState | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, STATE_FILE), 'utf8')) as ServerState;
  } catch {
    return undefined;
  }
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Serialises starts across processes sharing a state directory (stale locks are taken over). */
async function withLock<T>(stateDir: string, body: () => Promise<T>): Promise<T> {
  const lock = join(stateDir, LOCK_FILE);
  for (let waited = 0; ; waited += 200) {
    try {
      closeSync(openSync(lock, 'wx'));
      writeFileSync(lock, String(process.pid));
      break;
    } catch {
      const owner = Number(readFileSync(lock, 'utf8').trim() || 0);
      if ((owner && !isAlive(owner)) || waited > 180_000) rmSync(lock, { force: true });
      else await sleep(200);
    }
  }
  try {
    return await body();
  } finally {
    rmSync(lock, { force: true });
  }
}

/**
 * The MLflow processes of the process group `pgid` (the server and its uvicorn worker share
 * the group the server leads), leader included while it lives. Without /proc: none known.
 */
export function serverGroupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const group = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (group === pgid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('mlflow'))
        members.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return members;
}

/** Sends SIGTERM to the server's process group, then SIGKILL if it lingers. */
export async function killServer(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s); // the server and its uvicorn worker share a process group
    } catch {
      try {
        process.kill(pid, s);
      } catch {
        // already gone
      }
    }
  };
  // The group outlives its leader when the leader alone was killed: wait for every member.
  const lingering = () => isAlive(pid) || serverGroupMembers(pid).length > 0;
  signal('SIGTERM');
  for (let waited = 0; waited < graceMs && lingering(); waited += 100) await sleep(100);
  if (lingering()) signal('SIGKILL');
}

function serverHandle(state: ServerState, reused: boolean, logPath: string): LocalServer {
  return {
    url: state.url,
    port: state.port,
    pid: state.pid,
    reused,
    logPath,
    stop: async () => {
      if (reused) return;
      await killServer(state.pid);
      if (readServerState(state.stateDir)?.pid === state.pid)
        rmSync(join(state.stateDir, STATE_FILE), { force: true });
    },
  };
}

/** Starts the managed server, or reuses the one recorded in the state directory if it is healthy. */
export async function startLocalServer(options: StartServerOptions): Promise<LocalServer> {
  const stateDir = resolve(options.stateDir);
  await mkdir(stateDir, { recursive: true });
  const logPath = join(stateDir, LOG_FILE);
  return withLock(stateDir, async () => {
    const previous = readServerState(stateDir);
    if (previous && isAlive(previous.pid) && (await isHealthy(previous.url)))
      return serverHandle(previous, true, logPath);
    // Hung, or its main process gone with a worker left holding the port: replace it.
    if (previous && (isMlflowProcess(previous.pid) || serverGroupMembers(previous.pid).length > 0))
      await killServer(previous.pid, 2_000);

    const bin = options.mlflowBin ?? mlflowExecutable(options.env);
    const port = options.port ?? (await freePort());
    const artifacts = join(stateDir, 'mlartifacts');
    await mkdir(artifacts, { recursive: true });
    const host = options.host ?? '127.0.0.1';
    const args = ['server', '--host', host, '--port', String(port), '--workers', '1'];
    if (!LOOPBACK.has(host)) args.push('--allowed-hosts', allowedHosts(host, port).join(','));
    args.push(
      '--backend-store-uri',
      `sqlite:///${join(stateDir, 'mlflow.db')}`,
      '--artifacts-destination',
      artifacts,
    );
    const log = openSync(logPath, 'a');
    const child = spawn(bin, args, {
      cwd: stateDir,
      detached: true, // own process group: survives our exit when kept, and is killed as a whole
      stdio: ['ignore', log, log],
      // The GenAI job runner is a second Python process that vcp-exp never uses; it doubles start-up time.
      env: {
        ...(options.env ?? process.env),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
        PYTHONUNBUFFERED: '1',
      },
    });
    closeSync(log);
    let exited: string | undefined;
    child.once('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
    child.once('error', (error) => (exited = error.message));
    child.unref();
    const state: ServerState = {
      pid: child.pid!,
      port,
      host,
      url: `http://${urlHost(host)}:${port}`,
      stateDir,
      startedAt: new Date().toISOString(),
    };

    const timeout = options.startTimeoutMs ?? 120_000;
    const started = Date.now();
    while (!(await isHealthy(state.url, 1_000))) {
      if (exited || Date.now() - started > timeout) {
        if (!exited) await killServer(state.pid, 2_000);
        throw new UserError(
          `the MLflow server (${bin}) did not start on ${state.url}: ${exited ?? `no answer from /health after ${timeout / 1000} s`}\n` +
            `last lines of ${logPath}:\n${tail(logPath)}`,
          {
            hint: exited
              ? `if MLflow itself is broken, reinstall it: rm -rf ${mlflowVenv()} && vcp-exp setup mlflow`
              : 'the machine may be busy; retry',
          },
        );
      }
      await sleep(250);
    }
    writeFileSync(join(stateDir, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
    return serverHandle(state, false, logPath);
  });
}

/** Stops the managed server of a state directory (its whole process group); false when none was running. */
export async function stopLocalServer(stateDir: string): Promise<boolean> {
  const state = readServerState(resolve(stateDir));
  rmSync(join(resolve(stateDir), STATE_FILE), { force: true });
  if (!state) return false;
  // A leader killed alone leaves its uvicorn worker serving the port: stop the group anyway.
  if (!isMlflowProcess(state.pid) && serverGroupMembers(state.pid).length === 0) return false;
  await killServer(state.pid);
  return true;
}

export type ServerStatus =
  | { state: 'running'; server: ServerState }
  /** The recorded leader is gone but MLflow processes of its group still run (and may serve). */
  | { state: 'orphaned'; server: ServerState; pids: number[]; serving: boolean }
  | { state: 'stopped'; server?: ServerState };

/** What runs of a state directory's managed server. */
export async function serverStatus(stateDir: string): Promise<ServerStatus> {
  const server = readServerState(resolve(stateDir));
  if (!server) return { state: 'stopped' };
  const healthy = await isHealthy(server.url);
  if (isAlive(server.pid) && healthy) return { state: 'running', server };
  const pids = serverGroupMembers(server.pid).filter((p) => p !== server.pid);
  if (!isAlive(server.pid) && pids.length > 0)
    return { state: 'orphaned', server, pids, serving: healthy };
  return { state: 'stopped', server };
}
