/**
 * Typed client for an MLflow 3.x tracking server's REST API 2.0 (experiments, runs,
 * log-batch, metric history). Artifacts live in artifacts.ts, delivery guarantees in
 * delivery.ts and run-logger.ts.
 */
import { randomUUID } from 'node:crypto';
import { isEmptyBatch, splitBatch, validateBatch } from './batch.js';
import { MlflowApiError, MlflowHttp, type HttpOptions } from './http.js';
import type {
  Batch,
  CreateRunOptions,
  DatasetInput,
  Experiment,
  Metric,
  Run,
  RunStatus,
  SearchRunsOptions,
  ViewType,
} from './types.js';
import {
  batchToWire,
  experimentFromWire,
  metricFromWire,
  quoteFilterValue,
  runFromWire,
} from './wire.js';

type Json = Record<string, unknown>;

/** Tag that makes runs/create safe to retry: a run carrying it was already created. */
export const CREATE_TOKEN_TAG = 'vcp.create_token';

export type MlflowClientOptions = HttpOptions;

export class MlflowClient {
  readonly http: MlflowHttp;

  constructor(options: MlflowClientOptions) {
    this.http = new MlflowHttp(options);
  }

  get trackingUri(): string {
    return this.http.baseUrl;
  }

  // ---- experiments -------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.http.json<{ experiment: Json }>('GET', 'experiments/get-by-name', {
        experiment_name: name,
      });
      return experimentFromWire(r.experiment);
    } catch (error) {
      if (error instanceof MlflowApiError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST')
        return undefined;
      throw error;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const r = await this.http.json<{ experiment: Json }>('GET', 'experiments/get', {
      experiment_id: experimentId,
    });
    return experimentFromWire(r.experiment);
  }

  async createExperiment(
    name: string,
    options: { artifactLocation?: string; tags?: Record<string, string> } = {},
  ): Promise<string> {
    const r = await this.http.json<{ experiment_id: string }>('POST', 'experiments/create', {
      name,
      artifact_location: options.artifactLocation,
      tags: Object.entries(options.tags ?? {}).map(([key, value]) => ({ key, value })),
    });
    return String(r.experiment_id);
  }

  /** The experiment's id, creating it when missing (tolerates a concurrent creator). */
  async getOrCreateExperiment(
    name: string,
    options: { tags?: Record<string, string> } = {},
  ): Promise<string> {
    const found = await this.getExperimentByName(name);
    if (found) {
      if (found.lifecycle_stage === 'deleted')
        await this.http.json('POST', 'experiments/restore', { experiment_id: found.experiment_id });
      return found.experiment_id;
    }
    try {
      return await this.createExperiment(name, options);
    } catch (error) {
      // A retried create whose first attempt went through, or another process racing us.
      if (error instanceof MlflowApiError && error.errorCode === 'RESOURCE_ALREADY_EXISTS') {
        const again = await this.getExperimentByName(name);
        if (again) return again.experiment_id;
      }
      throw error;
    }
  }

  /** Sets (or replaces) one tag of an experiment. */
  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    await this.http.json('POST', 'experiments/set-experiment-tag', {
      experiment_id: experimentId,
      key,
      value,
    });
  }

  async searchExperiments(
    options: { filter?: string; orderBy?: string[]; viewType?: ViewType; pageSize?: number } = {},
  ): Promise<Experiment[]> {
    const out: Experiment[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.http.json<{ experiments?: Json[]; next_page_token?: string }>(
        'POST',
        'experiments/search',
        {
          filter: options.filter,
          order_by: options.orderBy,
          view_type: options.viewType,
          max_results: options.pageSize ?? 1000,
          page_token: pageToken,
        },
      );
      out.push(...(r.experiments ?? []).map(experimentFromWire));
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  // ---- runs --------------------------------------------------------------------------

  /** Creates a run; a retry after an ambiguous failure finds the first attempt's run instead of making a second. */
  async createRun(options: CreateRunOptions): Promise<Run> {
    const token = randomUUID();
    const tags = { ...options.tags, [CREATE_TOKEN_TAG]: token };
    const body = {
      experiment_id: options.experimentId,
      run_name: options.runName,
      start_time: options.startTime ?? Date.now(),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    };
    return this.http.once('runs/create', async ({ uncertain }) => {
      if (uncertain) {
        const [existing] = await this.searchRuns({
          experimentIds: [options.experimentId],
          filter: `tags."${CREATE_TOKEN_TAG}" = ${quoteFilterValue(token)}`,
          maxResults: 1,
        });
        if (existing) return existing;
      }
      const r = await this.http.sendOnce('POST', '/api/2.0/mlflow/runs/create', { json: body });
      return runFromWire(((await r.json()) as { run: Json }).run);
    });
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.http.json<{ run: Json }>('GET', 'runs/get', { run_id: runId });
    return runFromWire(r.run);
  }

  async updateRun(
    runId: string,
    update: { status?: RunStatus; endTime?: number; runName?: string },
  ): Promise<void> {
    await this.http.json('POST', 'runs/update', {
      run_id: runId,
      status: update.status,
      end_time: update.endTime,
      run_name: update.runName,
    });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.http.json('POST', 'runs/set-tag', { run_id: runId, key, value });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.http.json('POST', 'runs/delete-tag', { run_id: runId, key });
  }

  async deleteRun(runId: string): Promise<void> {
    await this.http.json('POST', 'runs/delete', { run_id: runId });
  }

  /** All runs matching `options`, following page tokens until exhausted (or `maxResults`). */
  async searchRuns(options: SearchRunsOptions): Promise<Run[]> {
    const out: Run[] = [];
    for await (const run of this.iterateRuns(options)) out.push(run);
    return out;
  }

  async *iterateRuns(options: SearchRunsOptions): AsyncGenerator<Run> {
    const limit = options.maxResults ?? Infinity;
    let pageToken: string | undefined;
    let yielded = 0;
    do {
      const pageSize = Math.min(options.pageSize ?? 1000, limit - yielded);
      const r = await this.http.json<{ runs?: Json[]; next_page_token?: string }>(
        'POST',
        'runs/search',
        {
          experiment_ids: options.experimentIds,
          filter: options.filter,
          order_by: options.orderBy,
          run_view_type: options.runViewType,
          max_results: pageSize,
          page_token: pageToken,
        },
      );
      for (const run of r.runs ?? []) {
        yield runFromWire(run);
        if (++yielded >= limit) return;
      }
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
  }

  // ---- logging -----------------------------------------------------------------------

  /** Records datasets as the run's inputs (idempotent: the server keeps one per name and digest). */
  async logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void> {
    if (datasets.length === 0) return;
    await this.http.json('POST', 'runs/log-inputs', { run_id: runId, datasets });
  }

  /** Logs any amount of data, split into requests within MLflow's limits, in order. */
  async logBatch(runId: string, batch: Batch): Promise<void> {
    validateBatch(batch);
    for (const chunk of splitBatch(batch)) await this.logBatchRequest(runId, chunk);
  }

  /**
   * Sends one request-sized batch exactly once. log-batch is applied in one transaction, but
   * a dropped connection leaves unknown whether it was; before resending, the metric
   * history tells which points already arrived (params and tags are idempotent).
   */
  async logBatchRequest(
    runId: string,
    chunk: Batch,
    options: { uncertain?: boolean } = {},
  ): Promise<void> {
    if (isEmptyBatch(chunk)) return;
    await this.http.once('runs/log-batch', async (state) => {
      let toSend = chunk;
      if (state.uncertain || options.uncertain) {
        toSend = await this.unappliedPart(runId, chunk);
        if (isEmptyBatch(toSend)) return;
      }
      await this.http.sendOnce('POST', '/api/2.0/mlflow/runs/log-batch', {
        json: batchToWire(runId, toSend),
      });
    });
  }

  /** The part of `chunk` whose metric points are not yet in the run's history. */
  async unappliedPart(runId: string, chunk: Batch): Promise<Batch> {
    if (chunk.metrics.length === 0) return chunk;
    const signature = (m: Metric) => `${m.step}|${m.timestamp}|${m.value}`;
    const present = new Map<string, Set<string>>();
    for (const key of new Set(chunk.metrics.map((m) => m.key))) {
      present.set(key, new Set((await this.getMetricHistory(runId, key)).map(signature)));
    }
    const metrics = chunk.metrics.filter((m) => !present.get(m.key)!.has(signature(m)));
    return { ...chunk, metrics };
  }

  /** Every logged point of one metric, page by page. */
  async getMetricHistory(
    runId: string,
    key: string,
    options: { pageSize?: number } = {},
  ): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.http.json<{ metrics?: Json[]; next_page_token?: string }>(
        'GET',
        'metrics/get-history',
        {
          run_id: runId,
          metric_key: key,
          max_results: options.pageSize ?? 25_000,
          page_token: pageToken,
        },
      );
      out.push(...(r.metrics ?? []).map(metricFromWire));
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /** True when the server answers /health now (one attempt, no retries). */
  async isReachable(timeoutMs = 5_000): Promise<boolean> {
    try {
      const r = await fetch(`${this.trackingUri}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      await r.body?.cancel();
      return r.ok;
    } catch {
      return false;
    }
  }
}
