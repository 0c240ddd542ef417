/**
 * One runner per experiment and state directory at a time. Two `vcp-exp run` of one spec
 * would each run every unfinished trial (twice the FINISHED runs, two trainings writing one
 * checkpoint directory), so the second one stops at once, naming the first.
 *
 * The lock is a file `<state>/locks/<experiment>.lock` created with O_EXCL, holding the
 * holder's pid, host, process start time and start date. A lock whose holder is gone (same
 * host, pid not alive or reused by another process) is stale: it is taken over, with a
 * message. Taking over is itself serialised by a short-lived second lock, so two runners
 * finding the same stale lock cannot both take it. A lock held on another host cannot be
 * checked from here and is never taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { isAlive } from '../tracking/server.js';

export interface LockHolder {
  pid: number;
  host: string;
  /** The process's start in clock ticks since boot (/proc/<pid>/stat), to tell a reused pid. */
  processStart?: string;
  /** ISO date the lock was taken. */
  since: string;
  /** What holds it, e.g. "vcp-exp run experiments/quickstart.yaml". */
  command: string;
}

export interface RunLock {
  path: string;
  holder: LockHolder;
  /** Removes the lock if it is still this process's. */
  release(): void;
}

/** A takeover lock older than this belongs to a process that died in the few ms it takes. */
const TAKEOVER_STALE_MS = 30_000;
/** An unreadable lock younger than this may be being written: wait instead of taking it. */
const TORN_LOCK_MS = 5_000;

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return Infinity;
  }
}

/** Field 22 of /proc/<pid>/stat (start time), or undefined without /proc. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True when the holder is certainly gone: same host, and its pid is dead or now another process. */
export function isStale(holder: LockHolder, host = hostname()): boolean {
  if (holder.host !== host) return false;
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return true;
  if (holder.pid === process.pid) return false;
  if (!isAlive(holder.pid)) return true;
  const start = processStartTime(holder.pid);
  return holder.processStart !== undefined && start !== undefined && start !== holder.processStart;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return typeof holder === 'object' && holder !== null ? holder : undefined;
  } catch {
    return undefined; // missing, or torn by a crash between create and write
  }
}

function createExclusive(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A file-name-safe name for an experiment (distinct names stay distinct). */
function lockName(experiment: string): string {
  const safe = experiment.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return safe === experiment
    ? safe
    : `${safe}-${Buffer.from(experiment).toString('hex').slice(0, 16)}`;
}

export interface AcquireOptions {
  stateDir: string;
  /** What the lock guards: the MLflow experiment of the spec. */
  experiment: string;
  command: string;
  log: (line: string) => void;
}

/** Takes the lock or throws a UserError naming the runner that holds it. */
export function acquireRunLock(options: AcquireOptions): RunLock {
  const dir = join(options.stateDir, 'locks');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${lockName(options.experiment)}.lock`);
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    processStart: processStartTime(process.pid),
    since: new Date().toISOString(),
    command: options.command,
  };
  const text = `${JSON.stringify(holder, null, 2)}\n`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (createExclusive(path, text)) return handle(path, holder);
    const current = readHolder(path);
    if (!current && ageMs(path) < TORN_LOCK_MS) {
      // Just created by another runner that has not written its holder yet.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    if (current && !isStale(current)) {
      throw new UserError(
        `another vcp-exp runner holds experiment "${options.experiment}" in ${options.stateDir}: pid ${current.pid} on ${current.host}, since ${current.since} (${current.command})`,
        {
          hint:
            current.host === hostname()
              ? `wait for it to finish, or stop it (Ctrl-C in its terminal, or kill ${current.pid}); then run this command again`
              : `it runs on another host; if that runner is gone, delete ${path}`,
        },
      );
    }
    if (takeOver(path, current, text)) {
      options.log(
        current
          ? `taking over the lock of experiment "${options.experiment}" from pid ${current.pid} (${current.command}, since ${current.since}), which is no longer running`
          : `taking over an unreadable lock of experiment "${options.experiment}" (${path})`,
      );
      return handle(path, holder);
    }
  }
  throw new UserError(`could not take the lock ${path}: other runners keep taking it`, {
    hint: 'run one vcp-exp run per spec at a time',
  });
}

/** Replaces a stale lock under the takeover lock; false when another process got there first. */
function takeOver(path: string, stale: LockHolder | undefined, text: string): boolean {
  const guard = `${path}.takeover`;
  if (!createExclusive(guard, String(process.pid))) {
    try {
      if (Date.now() - statSync(guard).mtimeMs > TAKEOVER_STALE_MS) rmSync(guard, { force: true });
    } catch {
      // removed meanwhile
    }
    return false;
  }
  try {
    // Still the same stale holder? (Another runner may have taken over and be running now.)
    const now = readHolder(path);
    if (JSON.stringify(now) !== JSON.stringify(stale)) return false;
    rmSync(path, { force: true });
    return createExclusive(path, text);
  } finally {
    rmSync(guard, { force: true });
  }
}

function handle(path: string, holder: LockHolder): RunLock {
  return {
    path,
    holder,
    release: () => {
      const current = readHolder(path);
      if (current?.pid === holder.pid && current.since === holder.since)
        rmSync(path, { force: true });
    },
  };
}
