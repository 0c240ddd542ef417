/**
 * Human labels of sweep values (table rows, figure ticks, reference keys) and of metrics.
 * Labels are what a reader of the paper would write: layers [6, 12] → "6,12", state words
 * [[good, damaged]] → "good/damaged", a prompt pair → "normal / abnormal".
 */
import { basename } from 'node:path';
import type { Metric } from '../runner/spec-types.js';

/** Joins the labels of a row's axes (the reference key of a multi-axis row). */
export const KEY_SEPARATOR = ' | ';

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The label of one swept value. */
export function formatAxisValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '–';
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'number')) return value.join(',');
    // [normal, abnormal] word pairs and prompt pairs read as "a/b", a list of them as "x + y".
    if (value.every((v) => Array.isArray(v)))
      return value.map((v) => (v as unknown[]).map(formatAxisValue).join('/')).join(' + ');
    return value.map(formatAxisValue).join(' + ');
  }
  if (isRecord(value)) {
    if (typeof value.normal === 'string' && typeof value.abnormal === 'string')
      return `${value.normal} / ${value.abnormal}`;
    if (typeof value.name === 'string') return value.name;
    if (typeof value.format === 'string' && typeof value.root === 'string')
      return `${value.format}:${basename(value.root)}`;
    return JSON.stringify(value);
  }
  return String(value);
}

export const METRIC_LABELS = {
  pixel_auroc: 'pixel AUROC',
  pro: 'PRO',
  pixel_ap: 'pixel AP',
  pixel_f1_max: 'pixel F1-max',
  image_auroc: 'image AUROC',
  image_ap: 'image AP',
  image_f1_max: 'image F1-max',
  ms_per_image: 'ms / image',
} as const satisfies Record<Metric, string>;

/** Unit shown on axes and in headers. */
export function metricUnit(metric: Metric): string {
  return metric === 'ms_per_image' ? 'ms' : '%';
}

/** Lower is better only for time. */
export function higherIsBetter(metric: Metric): boolean {
  return metric !== 'ms_per_image';
}

/**
 * MLflow holds the metrics as src/eval computes them: fractions in [0, 1], except
 * ms_per_image in milliseconds. Reports show percent, as the paper does.
 */
export function toDisplay(metric: Metric, value: number): number {
  return metric === 'ms_per_image' ? value : value * 100;
}

/** Title of an axis path in tables and figures: the last segment, underscores as spaces. */
export function axisTitle(axis: string): string {
  const titles: Record<string, string> = {
    variant: 'variant',
    dataset: 'dataset',
    n_ctx: 'n_ctx (r, learnable [cls] vectors)',
    deep_prompt_len: 'deep_prompt_len (n, vectors per layer)',
    heads: 'Post-VCP heads',
    alpha: 'α (weight of the VCP map)',
    image_size: 'input resolution (px)',
    layers: 'image layers',
  };
  return titles[axis] ?? axis.split('.').at(-1)!.replaceAll('_', ' ');
}
