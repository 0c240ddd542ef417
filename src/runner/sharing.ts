/**
 * What the sweep points of a spec share: trainings (one checkpoint serves every point with the
 * same training key) and frozen CLIP features (one cache entry per image serves every point
 * with the same feature key). For `vcp-exp plan`, so a comparison shows what it reuses and why
 * not (e.g. two methods that build CLIP differently share no features).
 */
import { canonicalJson } from './canonical.js';
import type { Trial } from './spec-types.js';

export interface Sharing {
  /** Sweep point labels in expansion order. */
  points: string[];
  /** Training keys used by more than one point, with those points. */
  sharedTrainings: { key: string; points: string[] }[];
  /** Feature keys used by more than one point, with those points. */
  sharedFeatures: { key: string; points: string[] }[];
  /** Per distinct feature key: the points using it and its fields. */
  featureKeys: { key: string; points: string[]; fields: Record<string, unknown> }[];
}

/** The label of a trial's sweep point (its swept values, `variant` first). */
export function pointLabel(trial: Pick<Trial, 'point'>): string {
  const values = Object.values(trial.point).map((v) =>
    typeof v === 'string' ? v : JSON.stringify(v),
  );
  return values.length > 0 ? values.join(' | ') : '(the only point)';
}

export function sharingOf(trials: readonly Trial[]): Sharing {
  const points: string[] = [];
  const byKey = (keyOf: (t: Trial) => string) => {
    const map = new Map<string, string[]>();
    for (const t of trials) {
      const label = pointLabel(t);
      if (!points.includes(label)) points.push(label);
      const list = map.get(keyOf(t)) ?? [];
      if (!list.includes(label)) list.push(label);
      map.set(keyOf(t), list);
    }
    return map;
  };
  const trainings = byKey((t) => t.trainingKey);
  const features = byKey((t) => t.featureKey.id);
  const shared = (map: Map<string, string[]>) =>
    [...map].filter(([, p]) => p.length > 1).map(([key, p]) => ({ key, points: p }));
  const fieldsOf = new Map(trials.map((t) => [t.featureKey.id, t.featureKey]));
  return {
    points,
    sharedTrainings: shared(trainings),
    sharedFeatures: shared(features),
    featureKeys: [...features].map(([key, p]) => {
      const { id: _id, ...fields } = fieldsOf.get(key)!;
      return { key, points: p, fields };
    }),
  };
}

/** What an absent optional feature-key field means (FeatureKey: only non-default forms are written). */
const FEATURE_DEFAULTS: Record<string, unknown> = { tokens: 'raw', global: 'ln_post' };

/** Fields whose values differ between feature keys, e.g. "activation gelu / quick_gelu". */
export function featureDifferences(sharing: Sharing): string[] {
  const keys = sharing.featureKeys;
  if (keys.length < 2) return [];
  const names = [...new Set(keys.flatMap((k) => Object.keys(k.fields)))].sort();
  const text = (v: unknown) => (typeof v === 'string' ? v : canonicalJson(v ?? null));
  return names.flatMap((name) => {
    const values = [...new Set(keys.map((k) => text(k.fields[name] ?? FEATURE_DEFAULTS[name])))];
    return values.length > 1 ? [`${name} ${values.join(' / ')}`] : [];
  });
}

/** The plan's lines about sharing; none for a spec with one sweep point. */
export function formatSharing(sharing: Sharing): string[] {
  if (sharing.points.length < 2) return [];
  const list = (items: { key: string; points: string[] }[]) =>
    items.length === 0 ? 'none' : items.map((s) => `${s.key} (${s.points.join(', ')})`).join('; ');
  const lines = [
    `trainings shared between sweep points: ${list(sharing.sharedTrainings)}`,
    `frozen features shared between sweep points: ${list(sharing.sharedFeatures)}`,
  ];
  const differences = featureDifferences(sharing);
  if (differences.length > 0)
    lines.push(
      `  ${sharing.featureKeys.length} feature keys (${sharing.featureKeys.map((k) => `${k.key}: ${k.points.join(', ')}`).join('; ')}), differing in ${differences.join('; ')}`,
    );
  return lines;
}
