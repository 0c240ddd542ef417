/**
 * Ends runs properly when their process is stopped: SIGINT/SIGTERM mark them KILLED, an
 * uncaught error marks them FAILED, each with the reason in `vcp.failure_reason`, after
 * flushing what was logged. Signal handlers are process-wide, so one set serves every
 * RunLogger registered here.
 */
import { constants } from 'node:os';
import { DISK_FULL_EXIT_CODE, diskFullReason, isDiskFull } from '../errors.js';
import type { RunLogger } from './run-logger.js';
import type { RunStatus } from './types.js';

const active = new Set<RunLogger>();
let installed = false;
let exiting = false;

/** Longest time spent ending runs before the process exits anyway (what is unsent stays journaled). */
const END_DEADLINE_MS = 20_000;

/** A run's failure reason: the stack, after a "disk full at <path>" line when that is the cause. */
export function describe(error: unknown): string {
  const text =
    error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  return isDiskFull(error) ? `${diskFullReason(error)}\n${text}` : text;
}

/** The exit code of a process that failed with `error`. */
export function failureExitCode(error: unknown): number {
  return isDiskFull(error) ? DISK_FULL_EXIT_CODE : 1;
}

async function endAll(status: RunStatus, reason: string): Promise<void> {
  const ends = [...active].map((logger) =>
    logger
      .end(status, reason)
      .catch((error: unknown) =>
        console.error(`[mlflow] could not end run ${logger.runId}: ${describe(error)}`),
      ),
  );
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, END_DEADLINE_MS).unref());
  await Promise.race([Promise.all(ends), deadline]);
}

/**
 * Ends every watched run with `status` and `reason` (what was logged is flushed first), then
 * exits with `code`. For stops that come from outside: a signal, or the parent gone.
 */
export function endRunsAndExit(status: RunStatus, reason: string, code: number): void {
  if (exiting) return;
  exiting = true;
  void endAll(status, reason).finally(() => process.exit(code));
}

function onSignal(signal: NodeJS.Signals): void {
  endRunsAndExit('KILLED', `received ${signal}`, 128 + (constants.signals[signal] ?? 15));
}

function onFatal(error: unknown): void {
  if (exiting) return;
  console.error(describe(error));
  endRunsAndExit('FAILED', describe(error), failureExitCode(error));
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
}

function uninstallIfIdle(): void {
  if (!installed || active.size > 0) return;
  installed = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('uncaughtException', onFatal);
  process.off('unhandledRejection', onFatal);
}

/**
 * Ends `logger`'s run as KILLED on SIGINT/SIGTERM and FAILED on an uncaught error, then
 * exits. Returns a function that stops watching (also done by `runLogged`).
 */
export function endRunOnExit(logger: RunLogger): () => void {
  active.add(logger);
  install();
  return () => {
    active.delete(logger);
    uninstallIfIdle();
  };
}

/**
 * Runs `body` with the run watched: FINISHED when it resolves, FAILED with the reason when it
 * throws (the error is rethrown), KILLED on a signal.
 */
export async function runLogged<T>(
  logger: RunLogger,
  body: (logger: RunLogger) => Promise<T>,
): Promise<T> {
  const release = endRunOnExit(logger);
  try {
    const result = await body(logger);
    await logger.end('FINISHED');
    return result;
  } catch (error) {
    if (!logger.isEnded) await logger.end('FAILED', describe(error)).catch(() => undefined);
    throw error;
  } finally {
    release();
  }
}
