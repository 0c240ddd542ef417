/**
 * Which trial runs next on which worker. Trials sharing a training key run one after another
 * (the first trains and saves the checkpoint, the others reuse it); a training no trial has
 * started yet goes first, so the workers train in parallel and evaluation-only trials fill
 * the gaps. A failure never stops the other trials unless `failFast`.
 */
import type { Trial } from '../spec-types.js';
import type { TrialSummary } from '../trial-events.js';

export type OutcomeStatus = 'FINISHED' | 'FAILED' | 'KILLED';

export interface TrialOutcome {
  trial: Trial;
  status: OutcomeStatus;
  /** Why it failed or was killed. */
  reason?: string;
  summary?: TrialSummary;
  runId?: string;
  seconds: number;
}

export interface PoolOptions {
  workers: number;
  /** Stop starting trials after the first failure. */
  failFast?: boolean;
  /** Stop starting trials (the running ones are the runner's to stop). */
  signal?: AbortSignal;
  /**
   * Awaited before each trial starts (it may wait, e.g. for the tracking server to be back);
   * a reason returned stops starting trials, as `halted`.
   */
  beforeStart?: () => Promise<string | undefined>;
  /** A reason to stop starting trials, read after each trial ends (e.g. a full disk). */
  haltAfter?: (outcome: TrialOutcome) => string | undefined;
}

export interface PoolResult {
  outcomes: TrialOutcome[];
  /** Trials never started (fail-fast, stopped or halted). */
  notStarted: Trial[];
  /** Why no more trials were started, when beforeStart or haltAfter said so. */
  halted?: string;
}

/** Runs `runOne(trial, worker)` for every trial on at most `workers` at once (worker = 0..workers-1). */
export async function runPool(
  trials: readonly Trial[],
  options: PoolOptions,
  runOne: (trial: Trial, worker: number) => Promise<TrialOutcome>,
): Promise<PoolResult> {
  const workers = Math.max(1, Math.floor(options.workers));
  const pending = [...trials];
  const busyKeys = new Set<string>();
  const startedKeys = new Set<string>();
  const freeWorkers = Array.from({ length: workers }, (_, i) => i).reverse();
  const running = new Map<
    string,
    Promise<{ id: string; worker: number; key: string; outcome: TrialOutcome }>
  >();
  const outcomes: TrialOutcome[] = [];
  let stop = false;
  let halted: string | undefined;

  const next = (): Trial | undefined => {
    const ready = pending.filter((t) => !busyKeys.has(t.trainingKey));
    return ready.find((t) => !startedKeys.has(t.trainingKey)) ?? ready[0];
  };

  for (;;) {
    while (!stop && !options.signal?.aborted && freeWorkers.length > 0) {
      if (!next()) break;
      const reason = await options.beforeStart?.();
      if (reason) {
        halted ??= reason;
        stop = true;
        break;
      }
      // Picked after the wait: a worker's trial may have ended meanwhile, freeing its key.
      const trial = next();
      if (!trial || options.signal?.aborted) break;
      pending.splice(pending.indexOf(trial), 1);
      const worker = freeWorkers.pop()!;
      busyKeys.add(trial.trainingKey);
      startedKeys.add(trial.trainingKey);
      const started = performance.now();
      const task = runOne(trial, worker).catch((error: unknown): TrialOutcome => ({
        trial,
        status: 'FAILED',
        reason: error instanceof Error ? error.message : String(error),
        seconds: (performance.now() - started) / 1000,
      }));
      running.set(
        trial.id,
        task.then((outcome) => ({ id: trial.id, worker, key: trial.trainingKey, outcome })),
      );
    }
    if (running.size === 0) break;
    const done = await Promise.race(running.values());
    running.delete(done.id);
    busyKeys.delete(done.key);
    freeWorkers.push(done.worker);
    outcomes.push(done.outcome);
    if (done.outcome.status !== 'FINISHED' && options.failFast) stop = true;
    const reason = options.haltAfter?.(done.outcome);
    if (reason) {
      halted ??= reason;
      stop = true;
    }
  }
  return { outcomes, notStarted: pending, ...(halted ? { halted } : {}) };
}
