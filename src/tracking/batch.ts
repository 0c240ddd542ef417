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
  if (
    key.length === 0 ||
    key.length > LIMITS.keyLength ||
    !KEY_PATTERN.test(key) ||
    key.split('/').includes('..')
  ) {
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
      throw new UserError(
        `MLflow param "${p.key}" is ${p.value.length} characters long; MLflow keeps at most ${LIMITS.paramValueLength}`,
        {
          hint: 'log long values as an artifact (RunLogger.logArtifact) and keep a short summary as the param',
        },
      );
    }
  }
  for (const t of batch.tags) {
    checkKey('tag', t.key);
    if (t.value.length > LIMITS.tagValueLength) {
      throw new UserError(
        `MLflow tag "${t.key}" is ${t.value.length} characters long; MLflow keeps at most ${LIMITS.tagValueLength}`,
      );
    }
  }
  for (const m of batch.metrics) {
    checkKey('metric', m.key);
    if (!Number.isInteger(m.step) || !Number.isInteger(m.timestamp)) {
      throw new UserError(
        `MLflow metric "${m.key}": step (${m.step}) and timestamp (${m.timestamp}) must be integers`,
      );
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
 * Splits a batch into as few log-batch requests as MLflow's limits allow, keeping the order
 * of each kind of entity: every request takes up to 100 params and 100 tags, then metrics up
 * to 1000 items in all (and under the byte limit).
 */
export function splitBatch(batch: Batch): Batch[] {
  const out: Batch[] = [];
  const next = { params: 0, tags: 0, metrics: 0 };
  const total = batch.params.length + batch.tags.length + batch.metrics.length;
  while (next.params + next.tags + next.metrics < total) {
    const chunk: Batch = { metrics: [], params: [], tags: [] };
    let bytes = 0;
    let items = 0;
    const take = <K extends keyof Batch>(kind: K, max: number) => {
      const source = batch[kind] as Batch[K][number][];
      while (
        next[kind] < source.length &&
        chunk[kind].length < max &&
        items < LIMITS.entitiesPerBatch
      ) {
        const size = sizeOf(source[next[kind]]);
        if (items > 0 && bytes + size > LIMITS.requestBytes) return;
        (chunk[kind] as Batch[K][number][]).push(source[next[kind]++]);
        bytes += size;
        items++;
      }
    };
    take('params', LIMITS.paramsPerBatch);
    take('tags', LIMITS.tagsPerBatch);
    take('metrics', LIMITS.metricsPerBatch);
    out.push(chunk);
  }
  return out;
}

export function isEmptyBatch(batch: Batch): boolean {
  return batch.metrics.length === 0 && batch.params.length === 0 && batch.tags.length === 0;
}
