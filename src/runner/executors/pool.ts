/**
 * Which job runs next on which worker. A job is one trial or an evaluation group (trials of
 * one training key evaluated from one forward pass; src/runner/groups.ts). Jobs sharing a
 * training key run one after another (the first trains and saves the checkpoint, the others
 * reuse it); a training no job has started yet goes first, so the workers train in parallel
 * and evaluation-only jobs fill the gaps. A failure never stops the others unless `failFast`.
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
   * Awaited before each job starts (it may wait, e.g. for the tracking server to be back);
   * a reason returned stops starting jobs, as `halted`.
   */
  beforeStart?: () => Promise<string | undefined>;
  /** A reason to stop starting jobs, read for each trial's outcome as its job ends (e.g. a full disk). */
  haltAfter?: (outcome: TrialOutcome) => string | undefined;
}

export interface PoolResult {
  outcomes: TrialOutcome[];
  /** Trials never started (fail-fast, stopped or halted). */
  notStarted: Trial[];
  /** Why no more trials were started, when beforeStart or haltAfter said so. */
  halted?: string;
}

/** A job's trials all share one training key (the first member's). */
function keyOf(job: readonly Trial[]): string {
  return job[0].trainingKey;
}

/**
 * Runs `runOne(job, worker)` for every job on at most `workers` at once (worker =
 * 0..workers-1); each job gives one outcome per trial.
 */
export async function runPool(
  jobs: readonly (readonly Trial[])[],
  options: PoolOptions,
  runOne: (job: readonly Trial[], worker: number) => Promise<TrialOutcome[]>,
): Promise<PoolResult> {
  const workers = Math.max(1, Math.floor(options.workers));
  const pending = jobs.filter((job) => job.length > 0);
  const busyKeys = new Set<string>();
  const startedKeys = new Set<string>();
  const freeWorkers = Array.from({ length: workers }, (_, i) => i).reverse();
  const running = new Map<
    readonly Trial[],
    Promise<{ job: readonly Trial[]; worker: number; outcomes: TrialOutcome[] }>
  >();
  const outcomes: TrialOutcome[] = [];
  let stop = false;
  let halted: string | undefined;

  const next = (): readonly Trial[] | undefined => {
    const ready = pending.filter((job) => !busyKeys.has(keyOf(job)));
    return ready.find((job) => !startedKeys.has(keyOf(job))) ?? ready[0];
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
      // Picked after the wait: a worker's job may have ended meanwhile, freeing its key.
      const job = next();
      if (!job || options.signal?.aborted) break;
      pending.splice(pending.indexOf(job), 1);
      const worker = freeWorkers.pop()!;
      busyKeys.add(keyOf(job));
      startedKeys.add(keyOf(job));
      const started = performance.now();
      const task = runOne(job, worker).catch((error: unknown): TrialOutcome[] =>
        job.map((trial) => ({
          trial,
          status: 'FAILED',
          reason: error instanceof Error ? error.message : String(error),
          seconds: (performance.now() - started) / 1000,
        })),
      );
      running.set(
        job,
        task.then((result) => ({ job, worker, outcomes: result })),
      );
    }
    if (running.size === 0) break;
    const done = await Promise.race(running.values());
    running.delete(done.job);
    busyKeys.delete(keyOf(done.job));
    freeWorkers.push(done.worker);
    outcomes.push(...done.outcomes);
    if (done.outcomes.some((o) => o.status !== 'FINISHED') && options.failFast) stop = true;
    for (const outcome of done.outcomes) {
      const reason = options.haltAfter?.(outcome);
      if (reason) {
        halted ??= reason;
        stop = true;
      }
    }
  }
  return { outcomes, notStarted: pending.flat(), ...(halted ? { halted } : {}) };
}
