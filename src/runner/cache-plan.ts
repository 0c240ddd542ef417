/**
 * What a sweep asks of the frozen-feature cache, for `plan`: the entries its pending
 * evaluations read (one per test image and feature key), their size against the budget, and
 * the hit rate the admission policy promises (src/model/feature-cache.ts): the running sweep
 * pins its feature keys, so the first entries that fit stay and every later read of them hits,
 * while the rest is recomputed on every read. With a fraction f = min(1, budget / needed) of
 * the entries held, a sweep reading R times over N distinct entries hits f · (R − N) times.
 * Counted from an empty cache and for evaluation reads only: training reads hit too where
 * augmentation leaves an image unchanged.
 */
import { entryBytes } from '../model/feature-cache.js';
import { resolveBackbone } from '../model/backbones.js';
import type { CacheBudget } from './cache-budget.js';
import { formGroups, maxGroupOf } from './groups.js';
import type { Spec, Trial } from './spec-types.js';

export interface CachePlan {
  /** Distinct (feature key, test image) entries the pending evaluations read. */
  entries: number | undefined;
  /** Their bytes on disk at the configured precision. */
  neededBytes: number | undefined;
  budget: CacheBudget;
  dtype: 'float32' | 'float16';
  /** Feature reads of the pending evaluations: each evaluation group reads its test images once. */
  reads: number | undefined;
  /** Expected fraction of `reads` served by the cache (undefined when an image count is unknown). */
  hitRate: number | undefined;
}

/** Bytes of one image's cache entry for a trial: `layer.<i>` [L, Dv] per layer and `global` [D]. */
export function trialEntryBytes(trial: Trial, dtype: 'float32' | 'float16'): number | undefined {
  const info = resolveBackbone(String(trial.config.model.backbone), '/');
  if ('error' in info) return undefined;
  const { patchSize, visionWidth, embedDim } = info.shape;
  const tokens = (trial.featureKey.image_size / patchSize) ** 2;
  const shapes = [...trial.featureKey.layers.map(() => [tokens, visionWidth]), [embedDim]];
  return entryBytes(shapes, dtype);
}

/**
 * The cache plan of the pending trials, grouped as the runner groups them.
 * @param count images of a dataset's test split (undefined when its root is missing)
 */
export function planCache(
  spec: Spec,
  pending: readonly Trial[],
  budget: CacheBudget,
  count: (root: string, products: 'all' | string[]) => number | undefined,
): CachePlan {
  const dtype = spec.execution.feature_cache.dtype;
  const distinct = new Map<string, { images: number | undefined; bytes: number | undefined }>();
  let reads: number | undefined = 0;
  for (const group of formGroups(pending, maxGroupOf(spec))) {
    const lead = group[0];
    for (const d of lead.config.eval.datasets) {
      const images = count(d.root, d.products);
      reads = reads === undefined || images === undefined ? undefined : reads + images;
      const key = JSON.stringify([lead.featureKey.id, d.root, d.products]);
      if (!distinct.has(key)) {
        const per = trialEntryBytes(lead, dtype);
        distinct.set(key, {
          images,
          bytes: images === undefined || per === undefined ? undefined : images * per,
        });
      }
    }
  }
  let entries: number | undefined = 0;
  let neededBytes: number | undefined = 0;
  for (const { images, bytes } of distinct.values()) {
    entries = entries === undefined || images === undefined ? undefined : entries + images;
    neededBytes =
      neededBytes === undefined || bytes === undefined ? undefined : neededBytes + bytes;
  }
  let hitRate: number | undefined;
  if (reads !== undefined && entries !== undefined && neededBytes !== undefined) {
    const held = neededBytes === 0 ? 1 : Math.min(1, budget.bytes / neededBytes);
    hitRate = reads === 0 ? 0 : (held * (reads - entries)) / reads;
  }
  return { entries, neededBytes, budget, dtype, reads, hitRate };
}
