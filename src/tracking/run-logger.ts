/**
 * Logs one MLflow run without losing anything: metrics are buffered and sent in batches;
 * whatever the server cannot take (after the client's retries) goes to a fsync'd journal and
 * is delivered, in order and once, as soon as the server answers again.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { ArtifactStore } from './artifacts.js';
import { splitBatch, truncateTagValue, validateBatch } from './batch.js';
import type { MlflowClient } from './client.js';
import { replayJournal } from './delivery.js';
import { MlflowUnreachableError } from './http.js';
import { RunJournal } from './journal.js';
import type { Batch, Metric, RunStatus } from './types.js';

export const FAILURE_REASON_TAG = 'vcp.failure_reason';

export interface RunLoggerOptions {
  client: MlflowClient;
  runId: string;
  /** Where undelivered data is journaled, e.g. `<state>/journal`. */
  journalDir: string;
  /** Send once this many metric points are buffered (default 200). */
  flushEvery?: number;
  /** …or once the oldest buffered point is this old (default 5 s). */
  flushIntervalMs?: number;
  /** Called when data goes to the journal or comes back from it (default: stderr). */
  onJournal?: (message: string) => void;
}

export type ParamValue = string | number | boolean;

export interface EndResult {
  /** False when the server was unreachable: the rest waits in `journal`. */
  delivered: boolean;
  journal?: string;
}

export class RunLogger {
  readonly client: MlflowClient;
  readonly runId: string;
  readonly journal: RunJournal;
  private readonly artifacts: ArtifactStore;
  private readonly flushEvery: number;
  private readonly flushIntervalMs: number;
  private readonly onJournal: (message: string) => void;
  private buffer: Batch = { metrics: [], params: [], tags: [] };
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private offline = false;
  private error: unknown;
  private ended = false;

  constructor(options: RunLoggerOptions) {
    this.client = options.client;
    this.runId = options.runId;
    this.journal = new RunJournal(options.journalDir, options.runId);
    this.artifacts = new ArtifactStore(options.client);
    this.flushEvery = options.flushEvery ?? 200;
    this.flushIntervalMs = options.flushIntervalMs ?? 5_000;
    this.onJournal = options.onJournal ?? ((m) => console.error(`[mlflow] ${m}`));
    // A journal left by an earlier process for this run is delivered before anything new.
    this.offline = !this.journal.isEmpty;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Queues params (validated now, so a bad key fails at the call that made it). */
  logParams(params: Record<string, ParamValue>): void {
    const entries = Object.entries(params).map(([key, value]) => ({ key, value: String(value) }));
    validateBatch({ metrics: [], params: entries, tags: [] });
    this.buffer.params.push(...entries);
    this.schedule(true);
  }

  setTags(tags: Record<string, string>): void {
    const entries = Object.entries(tags).map(([key, value]) => ({ key, value }));
    validateBatch({ metrics: [], params: [], tags: entries });
    this.buffer.tags.push(...entries);
    this.schedule(true);
  }

  /** Buffers one point; the timestamp is fixed now so that a resend is recognisable. */
  logMetric(key: string, value: number, step = 0, timestamp = Date.now()): void {
    const metric: Metric = { key, value, step, timestamp };
    validateBatch({ metrics: [metric], params: [], tags: [] });
    this.buffer.metrics.push(metric);
    this.schedule(this.buffer.metrics.length >= this.flushEvery);
  }

  logMetrics(values: Record<string, number>, step = 0): void {
    const timestamp = Date.now();
    for (const [key, value] of Object.entries(values)) this.logMetric(key, value, step, timestamp);
  }

  /** Uploads a file to `<artifactPath>/<file name>`; kept in the journal when the server is away. */
  async logArtifact(localPath: string, artifactPath = ''): Promise<void> {
    const target = posix.join(artifactPath.replace(/^\/+|\/+$/g, ''), basename(localPath));
    await this.flush();
    await this.enqueue(async () => {
      if (!this.offline) {
        try {
          await this.artifacts.putFile(this.runId, localPath, target);
          return;
        } catch (error) {
          if (!(error instanceof MlflowUnreachableError)) throw error;
          this.goOffline(error);
        }
      }
      mkdirSync(this.journal.filesDir, { recursive: true });
      const file = `${Date.now()}-${basename(localPath)}`;
      copyFileSync(localPath, join(this.journal.filesDir, file));
      this.journal.add([{ t: 'artifact', file, target }]);
    });
  }

  /** Sends everything buffered (or journals it); rethrows an error the server gave earlier. */
  async flush(): Promise<void> {
    this.clearTimer();
    const chunks = splitBatch(this.buffer);
    this.buffer = { metrics: [], params: [], tags: [] };
    if (chunks.length > 0) await this.enqueue(() => this.deliver(chunks));
    else await this.chain;
    this.throwIfFailed();
  }

  /**
   * Flushes, delivers the journal and marks the run `status`; with a reason, it is kept in
   * the `vcp.failure_reason` tag. When the server is unreachable, the rest (status included)
   * stays in the journal for replayJournals.
   */
  async end(status: RunStatus = 'FINISHED', reason?: string): Promise<EndResult> {
    if (this.ended) return { delivered: this.journal.isEmpty };
    this.ended = true;
    if (reason !== undefined)
      this.buffer.tags.push({ key: FAILURE_REASON_TAG, value: truncateTagValue(reason) });
    const endTime = Date.now();
    try {
      await this.flush();
    } catch (error) {
      if (status === 'FINISHED') throw error;
      // A run that is failing anyway still gets its status; the server's complaint goes in the reason.
    }
    await this.enqueue(async () => {
      if (this.offline) await this.tryReplay(true);
      if (!this.offline) {
        try {
          await this.client.updateRun(this.runId, { status, endTime });
          return;
        } catch (error) {
          if (!(error instanceof MlflowUnreachableError)) throw error;
          this.goOffline(error);
        }
      }
      this.journal.add([{ t: 'end', status, endTime }]);
    });
    this.throwIfFailed();
    const delivered = this.journal.isEmpty;
    if (!delivered)
      this.onJournal(
        `run ${this.runId} ended offline; its remaining data is kept in ${this.journal.path}`,
      );
    return delivered ? { delivered } : { delivered, journal: this.journal.path };
  }

  private schedule(now: boolean): void {
    if (now) {
      this.clearTimer();
      void this.flush().catch((error: unknown) => (this.error ??= error));
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush().catch((error: unknown) => (this.error ??= error));
      }, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private throwIfFailed(): void {
    if (this.error === undefined) return;
    const error = this.error;
    this.error = undefined;
    throw error;
  }

  /** Runs deliveries one after another, so data reaches the server in the order it was logged. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.chain.then(task);
    this.chain = next.catch((error: unknown) => {
      this.error ??= error;
    });
    return this.chain;
  }

  private async deliver(chunks: Batch[]): Promise<void> {
    if (this.offline) await this.tryReplay(false);
    for (const [index, chunk] of chunks.entries()) {
      if (this.offline) {
        this.journal.add(chunks.slice(index).map((batch) => ({ t: 'batch' as const, batch })));
        return;
      }
      try {
        await this.client.logBatchRequest(this.runId, chunk);
      } catch (error) {
        if (!(error instanceof MlflowUnreachableError)) throw error;
        this.goOffline(error);
        this.journal.add([{ t: 'batch', batch: chunk, uncertain: error.uncertain }]);
        this.journal.add(chunks.slice(index + 1).map((batch) => ({ t: 'batch' as const, batch })));
        return;
      }
    }
  }

  private goOffline(error: MlflowUnreachableError): void {
    if (!this.offline)
      this.onJournal(`${error.message}; journaling to ${this.journal.path} until it is back`);
    this.offline = true;
  }

  /** Delivers the journal when the server answers; `wait` uses the full retry budget first. */
  private async tryReplay(wait: boolean): Promise<void> {
    if (!wait && !(await this.client.isReachable())) return;
    try {
      const count = await replayJournal(this.client, this.journal, this.artifacts);
      this.offline = false;
      if (count > 0)
        this.onJournal(`server back: delivered ${count} journaled entries of run ${this.runId}`);
    } catch (error) {
      if (!(error instanceof MlflowUnreachableError)) throw error;
    }
  }
}
