/**
 * Trials → groups (sweep points: trials that differ only by seed) → mean ± std over seeds.
 * Groups come from the spec's expansion, so a group exists (with n = 0) even before any of
 * its runs finished, and the order is the spec's.
 */
import { canonicalJson } from '../runner/canonical.js';
import type { Spec } from '../runner/spec-types.js';
import { formatAxisValue, KEY_SEPARATOR } from './labels.js';

/** One FINISHED child run of a trial. */
export interface TrialResult {
  trialId: string;
  runId: string;
  seed: number;
  /** MLflow metric key (e.g. "MVTec-AD.pixel_ap", "MVTec-AD.bottle.pro") → latest value. */
  metrics: Record<string, number>;
  /** The run's tags (e.g. vcp.undefined.<dataset>: metrics the dataset cannot define). */
  tags?: Record<string, string>;
}

export interface Group {
  /** Position in the expansion (first trial's). */
  index: number;
  point: Record<string, unknown>;
  /** Label of each swept axis (spec.axes order). */
  labels: Record<string, string>;
  /** Results of the group's trials, by seed. */
  results: TrialResult[];
}

export interface Stat {
  mean: number;
  /** Sample standard deviation (ddof = 1); null when n = 1. */
  std: number | null;
  n: number;
}

/** Mean and sample std (ddof = 1) of finite values; null when there are none. */
export function summarize(values: readonly number[]): Stat | null {
  const xs = values.filter((v) => Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: null, n };
  const ss = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** Groups of the spec's trials (expansion order) holding the results found for them. */
export function groupTrials(
  spec: Pick<Spec, 'axes' | 'trials'>,
  results: ReadonlyMap<string, TrialResult>,
): Group[] {
  const groups = new Map<string, Group>();
  for (const trial of spec.trials) {
    const key = canonicalJson(trial.point);
    let group = groups.get(key);
    if (!group) {
      const labels = Object.fromEntries(spec.axes.map((a) => [a, formatAxisValue(trial.point[a])]));
      group = { index: trial.index, point: trial.point, labels, results: [] };
      groups.set(key, group);
    }
    const result = results.get(trial.id);
    if (result) group.results.push(result);
  }
  for (const g of groups.values())
    g.results.sort((a, b) => a.seed - b.seed || a.runId.localeCompare(b.runId));
  return [...groups.values()].sort((a, b) => a.index - b.index);
}

/** Swept axes that take more than one value among the groups (the others label nothing). */
export function varyingAxes(axes: readonly string[], groups: readonly Group[]): string[] {
  return axes.filter((a) => new Set(groups.map((g) => g.labels[a])).size > 1);
}

/** A group's label over `axes`, joined as reference keys are. */
export function groupLabel(group: Group, axes: readonly string[]): string {
  return axes.map((a) => group.labels[a]).join(KEY_SEPARATOR);
}

/** The statistic of one MLflow metric key over a group's seeds. */
export function metricStat(
  group: Group,
  key: string,
  transform: (v: number) => number = (v) => v,
): Stat | null {
  return summarize(
    group.results.filter((r) => key in r.metrics).map((r) => transform(r.metrics[key])),
  );
}
