/**
 * Conversions between the JSON the MLflow server speaks and the typed entities in types.ts:
 * int64 fields may arrive as strings, and non-finite metric values travel as "NaN" /
 * "Infinity" / "-Infinity" (protobuf JSON), since JSON has no literal for them.
 */
import type { Batch, Experiment, FileInfo, Metric, Run, RunInfo, RunTag } from './types.js';

type Json = Record<string, unknown>;

const num = (v: unknown): number | undefined =>
  v === undefined || v === null || v === '' ? undefined : Number(v);

export function metricToWire(m: Metric): Json {
  return {
    key: m.key,
    value: Number.isFinite(m.value) ? m.value : String(m.value),
    timestamp: m.timestamp,
    step: m.step,
  };
}

export function metricFromWire(j: Json): Metric {
  return {
    key: String(j.key),
    value: Number(j.value),
    timestamp: num(j.timestamp) ?? 0,
    step: num(j.step) ?? 0,
  };
}

export function batchToWire(runId: string, batch: Batch): Json {
  return {
    run_id: runId,
    metrics: batch.metrics.map(metricToWire),
    params: batch.params,
    tags: batch.tags,
  };
}

function tagsFromWire(v: unknown): RunTag[] {
  return ((v as Json[] | undefined) ?? []).map((t) => ({
    key: String(t.key),
    value: String(t.value ?? ''),
  }));
}

export function experimentFromWire(j: Json): Experiment {
  return {
    experiment_id: String(j.experiment_id),
    name: String(j.name),
    artifact_location: j.artifact_location as string | undefined,
    lifecycle_stage: (j.lifecycle_stage as Experiment['lifecycle_stage']) ?? 'active',
    last_update_time: num(j.last_update_time),
    creation_time: num(j.creation_time),
    tags: tagsFromWire(j.tags),
  };
}

export function runFromWire(j: Json): Run {
  const info = (j.info ?? {}) as Json;
  const data = (j.data ?? {}) as Json;
  const runInfo: RunInfo = {
    run_id: String(info.run_id ?? info.run_uuid),
    run_name: info.run_name as string | undefined,
    experiment_id: String(info.experiment_id),
    user_id: info.user_id as string | undefined,
    status: info.status as RunInfo['status'],
    start_time: num(info.start_time),
    end_time: num(info.end_time),
    artifact_uri: String(info.artifact_uri ?? ''),
    lifecycle_stage: (info.lifecycle_stage as RunInfo['lifecycle_stage']) ?? 'active',
  };
  return {
    info: runInfo,
    data: {
      metrics: ((data.metrics as Json[] | undefined) ?? []).map(metricFromWire),
      params: tagsFromWire(data.params),
      tags: tagsFromWire(data.tags),
    },
  };
}

export function fileInfoFromWire(j: Json): FileInfo {
  return { path: String(j.path), is_dir: Boolean(j.is_dir), file_size: num(j.file_size) };
}

/** Record form of a run's tags or params. */
export function asRecord(
  entries: readonly { key: string; value: string }[],
): Record<string, string> {
  return Object.fromEntries(entries.map((e) => [e.key, e.value]));
}

/** Quotes a value for an MLflow search filter string. */
export function quoteFilterValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
