/**
 * Sweep progress: a listr2 tree (sweep → trials → current phase, with counts and an ETA) on
 * a terminal, or one plain line per event for CI logs. The executor reports to a
 * `SweepReporter`; the reporter never decides anything.
 */
import { Listr, type ListrTaskWrapper } from 'listr2';
import type { TrialOutcome } from './executors/pool.js';
import { runName } from './executors/local.js';
import type { Trial } from './spec-types.js';
import type { TrialEvent } from './trial-events.js';
import { inCI } from '../io/ci.js';
import { plural } from '../io/wording.js';

export type ProgressMode = 'plain' | 'fancy';

export interface SweepReporter {
  start(info: { name: string; trials: readonly Trial[]; skipped: number; workers: number }): void;
  /** `where`: e.g. "cpu (worker 0)" locally, "node12, Slurm task 345_6" on Slurm. */
  trialStarted(trial: Trial, where: string): void;
  /** An event of a job's process, for the trials it concerns (an evaluation group: all members). */
  trialEvent(trials: readonly Trial[], event: TrialEvent): void;
  trialEnded(outcome: TrialOutcome): void;
  /** Called once, after the last trial ended (or was left out). */
  end(notStarted: readonly Trial[]): Promise<void>;
}

export function chooseProgress(
  flag: string | undefined,
  isTTY = Boolean(process.stdout.isTTY),
): ProgressMode {
  if (flag === 'plain' || flag === 'fancy') return flag;
  return isTTY && !inCI() ? 'fancy' : 'plain';
}

export function createReporter(
  mode: ProgressMode,
  write: (line: string) => void = (l) => console.log(l),
): SweepReporter {
  return mode === 'fancy' ? new ListrReporter() : new PlainReporter(write);
}

/** One line per event. */
export function describeEvent(event: TrialEvent): string | undefined {
  switch (event.type) {
    case 'phase':
      return `${event.phase}: ${event.detail}`;
    case 'epoch':
      return `epoch ${event.epoch + 1}/${event.epochs}: loss ${event.loss.toFixed(4)}`;
    case 'product':
      return `evaluate ${event.dataset}: ${event.product} (${event.done}/${event.total})`;
    case 'images':
      return `evaluate ${event.dataset}: ${event.done}/${event.total} images, ${event.rate.toFixed(1)} images/s`;
    case 'log':
      return undefined;
    case 'step':
      return `epoch ${event.epoch + 1}/${event.epochs} step ${event.step + 1}/${event.stepsPerEpoch}: loss ${event.loss.toFixed(4)}`;
    case 'done':
      return undefined;
  }
}

/** How a log line names the trials of one process: `a`, `a+b+c`, or `a+7 more` for a group. */
export function groupLabel(trials: readonly Trial[]): string {
  if (trials.length <= 3) return trials.map((t) => t.id).join('+');
  return `${trials[0].id}+${trials.length - 1} more`;
}

/** Seconds left: mean trial time so far × trials left ÷ workers. */
export function estimateRemaining(
  doneSeconds: readonly number[],
  left: number,
  workers: number,
): number | undefined {
  if (doneSeconds.length === 0) return undefined;
  const mean = doneSeconds.reduce((a, b) => a + b, 0) / doneSeconds.length;
  return (mean * left) / Math.max(1, Math.min(workers, left));
}

export function formatSeconds(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

class Counter {
  total = 0;
  workers = 1;
  done: number[] = [];
  failed = 0;

  line(): string {
    const eta = estimateRemaining(
      this.done,
      this.total - this.done.length - this.failed,
      this.workers,
    );
    return `${this.done.length + this.failed}/${this.total} trials (${this.failed} failed or killed)${eta === undefined ? '' : `, ~${formatSeconds(eta)} left`}`;
  }
}

export class PlainReporter implements SweepReporter {
  private readonly count = new Counter();

  constructor(private readonly write: (line: string) => void) {}

  private say(text: string): void {
    this.write(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
  }

  start(info: { name: string; trials: readonly Trial[]; skipped: number; workers: number }): void {
    this.count.total = info.trials.length;
    this.count.workers = info.workers;
    this.say(
      `sweep ${info.name}: ${plural(info.trials.length, 'trial')} to run on ${plural(info.workers, 'worker')}, ${info.skipped} skipped`,
    );
  }

  trialStarted(trial: Trial, where: string): void {
    this.say(`${trial.id} start (${runName(trial)}) on ${where}`);
  }

  trialEvent(trials: readonly Trial[], event: TrialEvent): void {
    if (event.type === 'step') return; // epochs are enough in a log
    const text = describeEvent(event);
    if (text) this.say(`${groupLabel(trials)} ${text}`);
  }

  trialEnded(outcome: TrialOutcome): void {
    if (outcome.status === 'FINISHED') this.count.done.push(outcome.seconds);
    else this.count.failed++;
    const what =
      outcome.status === 'FINISHED'
        ? `finished in ${formatSeconds(outcome.seconds)}`
        : `${outcome.status}: ${(outcome.reason ?? '').split('\n')[0]}`;
    this.say(`${outcome.trial.id} ${what}; ${this.count.line()}`);
  }

  async end(notStarted: readonly Trial[]): Promise<void> {
    if (notStarted.length > 0) this.say(`${plural(notStarted.length, 'trial')} not started`);
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

interface Handle {
  started: Deferred<string>;
  ended: Deferred<TrialOutcome | undefined>;
  task?: ListrTaskWrapper<unknown, never, never>;
  title: string;
}

function withResolvers<T>(): Deferred<T> {
  let resolve!: (value: T | PromiseLike<T>) => void;
  let reject!: (reason?: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class ListrReporter implements SweepReporter {
  private readonly handles = new Map<string, Handle>();
  private readonly count = new Counter();
  private sweepTask: ListrTaskWrapper<unknown, never, never> | undefined;
  private name = '';
  private running: Promise<unknown> = Promise.resolve();

  start(info: { name: string; trials: readonly Trial[]; skipped: number; workers: number }): void {
    this.count.total = info.trials.length;
    this.count.workers = info.workers;
    this.name = `sweep ${info.name}${info.skipped ? ` (${info.skipped} skipped: already finished)` : ''}`;
    for (const t of info.trials)
      this.handles.set(t.id, {
        started: withResolvers(),
        ended: withResolvers(),
        title: `${t.id} ${runName(t)}`,
      });
    const list = new Listr(
      [
        {
          title: `${this.name}: ${this.count.line()}`,
          task: (_ctx, task) => {
            this.sweepTask = task as never;
            return task.newListr(
              info.trials.map((t) => ({
                title: `${this.handles.get(t.id)!.title} · queued`,
                task: async (_c: unknown, sub: ListrTaskWrapper<unknown, never, never>) => {
                  const handle = this.handles.get(t.id)!;
                  handle.task = sub;
                  const device = await Promise.race([
                    handle.started.promise,
                    handle.ended.promise.then(() => undefined),
                  ]);
                  if (device !== undefined) sub.title = `${handle.title} · ${device}`;
                  const outcome = await handle.ended.promise;
                  if (!outcome) return sub.skip(`${handle.title} · not started`);
                  if (outcome.status !== 'FINISHED')
                    throw new Error(
                      `${handle.title}: ${outcome.status} ${(outcome.reason ?? '').split('\n')[0]}`,
                    );
                  sub.title = `${handle.title} · ${formatSeconds(outcome.seconds)}${outcome.summary?.trained === false ? ' (checkpoint reused)' : ''}`;
                },
              })),
              { concurrent: true, exitOnError: false },
            );
          },
        },
      ],
      { exitOnError: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
    );
    this.running = list.run().catch(() => undefined);
  }

  trialStarted(trial: Trial, where: string): void {
    this.handles.get(trial.id)?.started.resolve(where);
  }

  trialEvent(trials: readonly Trial[], event: TrialEvent): void {
    const text = describeEvent(event);
    for (const trial of trials) {
      const task = this.handles.get(trial.id)?.task;
      if (text && task) task.output = text;
    }
  }

  trialEnded(outcome: TrialOutcome): void {
    if (outcome.status === 'FINISHED') this.count.done.push(outcome.seconds);
    else this.count.failed++;
    this.handles.get(outcome.trial.id)?.ended.resolve(outcome);
    if (this.sweepTask) this.sweepTask.title = `${this.name}: ${this.count.line()}`;
  }

  async end(notStarted: readonly Trial[]): Promise<void> {
    for (const t of notStarted) this.handles.get(t.id)?.ended.resolve(undefined);
    await this.running;
  }
}
