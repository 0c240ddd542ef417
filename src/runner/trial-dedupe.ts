/**
 * Trial ids are unique in a plan: two sweep points that resolve to the same config (two
 * variants setting what the base already has, a zip group repeating a pair) are one trial.
 * It runs once, under the first point; a warning names both, so a report row that seems to
 * be missing is explained.
 */
import type { IssueSink } from './issues.js';
import type { JsonPath } from './spec-error.js';
import type { Trial } from './spec-types.js';

/** How a trial is named in the warning: its variant, else its swept values. */
function label(trial: Trial): string {
  if (trial.variant !== undefined) return `variant "${trial.variant}"`;
  const point = Object.entries(trial.point)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  return point ? `sweep point ${point}` : 'the base config';
}

/** Where the duplicate was written: the variant's name, else the first value its point sets. */
function origin(trial: Trial): JsonPath {
  const paths = Object.values(trial.origins).filter((p) => p[0] === 'sweep');
  if (trial.variant !== undefined) {
    const variant = paths.find((p) => p[1] === 'variants');
    if (variant) return ['sweep', 'variants', variant[2], 'name'];
  }
  return paths[0] ?? ['sweep'];
}

/** The trials with every repeated id dropped (first kept, re-indexed), one warning per pair of points. */
export function mergeEquivalentTrials(trials: readonly Trial[], sink: IssueSink): Trial[] {
  const first = new Map<string, Trial>();
  const warned = new Set<string>();
  const kept: Trial[] = [];
  for (const trial of trials) {
    const earlier = first.get(trial.id);
    if (!earlier) {
      first.set(trial.id, trial);
      kept.push({ ...trial, index: kept.length });
      continue;
    }
    const pair = `${label(earlier)}\u0000${label(trial)}`;
    if (warned.has(pair)) continue; // one warning per pair of points, not per seed
    warned.add(pair);
    sink.warning(
      origin(trial),
      'value',
      `${label(trial)} resolves to the same trial config as ${label(earlier)} (trial id ${trial.id}): it runs once and is reported as ${label(earlier)}`,
    );
  }
  return kept;
}
