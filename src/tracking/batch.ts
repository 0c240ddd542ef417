/**
 * MLflow's per-request limits for runs/log-batch and the splitting of any batch into requests
 * that respect them. The numbers are MLflow 3.x's (mlflow/utils/validation.py).
 */
import { UserError } from '../errors.js';
import type { Batch, KeyValue, Metric } from './types.js';

export const LIMITS = Object.freeze({
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  /** The server rejects log-batch bodies over 1 MB; stay clearly below. */
  requestBytes: 900_000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
});

const KEY_PATTERN = /^[\w\-. /:]+$/; // letters, digits, _ - . space / :

function checkKey(kind: string, key: string): void {
  if (key.length === 0 || key.length > LIMITS.keyLength || !KEY_PATTERN.test(key) || key.split('/').includes('..')) {
    throw new UserError(`MLflow ${kind} key "${key.slice(0, 80)}" is invalid`, {
      hint: `keys must be 1-${LIMITS.keyLength} characters of letters, digits, "_", "-", ".", " " and "/"`,
    });
  }
}

/** Throws a UserError naming the entry that MLflow would reject, before anything is sent. */
export function validateBatch(batch: Batch): void {
  for (const p of batch.params) {
    checkKey('param', p.key);
    if (p.value.length > LIMITS.paramValueLength) {
      throw new UserError(`MLflow param "${p.key}" is ${p.value.length} characters long; MLflow keeps at most ${LIMITS.paramValueLength}`, {
        hint: 'log long values as an artifact (RunLogger.logArtifact) and keep a short summary as the param',
      });
    }
  }
  for (const t of batch.tags) {
    checkKey('tag', t.key);
    if (t.value.length > LIMITS.tagValueLength) {
      throw new UserError(`MLflow tag "${t.key}" is ${t.value.length} characters long; MLflow keeps at most ${LIMITS.tagValueLength}`);
    }
  }
  for (const m of batch.metrics) {
    checkKey('metric', m.key);
    if (!Number.isInteger(m.step) || !Number.isInteger(m.timestamp)) {
      throw new UserError(`MLflow metric "${m.key}": step (${m.step}) and timestamp (${m.timestamp}) must be integers`);
    }
  }
}

/** Cuts `value` to MLflow's tag length, marking the cut. */
export function truncateTagValue(value: string): string {
  if (value.length <= LIMITS.tagValueLength) return value;
  const marker = '… [truncated]';
  return value.slice(0, LIMITS.tagValueLength - marker.length) + marker;
}

const sizeOf = (item: KeyValue | Metric) => JSON.stringify(item).length + 1;

/**
 * Splits a batch into log-batch requests within MLflow's limits, keeping the order of each
 * kind of entity (params, then tags, then metrics fill each request in turn).
 */
export function splitBatch(batch: Batch): Batch[] {
  const out: Batch[] = [];
  let current: Batch = { metrics: [], params: [], tags: [] };
  let bytes = 0;
  const count = () => current.metrics.length + current.params.length + current.tags.length;
  const push = <K extends keyof Batch>(kind: K, item: Batch[K][number], max: number) => {
    const size = sizeOf(item);
    if (current[kind].length >= max || count() >= LIMITS.entitiesPerBatch || (count() > 0 && bytes + size > LIMITS.requestBytes)) {
      out.push(current);
      current = { metrics: [], params: [], tags: [] };
      bytes = 0;
    }
    (current[kind] as Batch[K][number][]).push(item);
    bytes += size;
  };
  for (const p of batch.params) push('params', p, LIMITS.paramsPerBatch);
  for (const t of batch.tags) push('tags', t, LIMITS.tagsPerBatch);
  for (const m of batch.metrics) push('metrics', m, LIMITS.metricsPerBatch);
  if (count() > 0) out.push(current);
  return out;
}

export function isEmptyBatch(batch: Batch): boolean {
  return batch.metrics.length === 0 && batch.params.length === 0 && batch.tags.length === 0;
}
