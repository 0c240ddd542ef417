/**
 * How a spec's experiment presents itself in MLflow: the description and the saved headline
 * view (src/tracking/mlflow-ui.ts): the swept params and the metrics of the spec's first report
 * table (else the paper's headline metrics) on each eval dataset, as columns.
 */
import type { ExperimentPresentation } from '../tracking/layout.js';
import type { Metric, Spec } from './spec-types.js';

/** The paper's headline metrics, used when a spec has no report table. */
export const HEADLINE_METRICS: readonly Metric[] = [
  'pixel_auroc',
  'pro',
  'pixel_ap',
  'image_auroc',
];
/** Metric columns in the view at most (the UI stays readable). */
const MAX_METRIC_COLUMNS = 12;

/** The MLflow param key of a sweep axis (params are the flattened trial config). */
export function axisParamKey(axis: string): string | undefined {
  if (axis === 'variant') return undefined; // the run name carries it
  return axis.startsWith('train.') || axis.startsWith('eval.') ? axis : `model.${axis}`;
}

export function experimentPresentation(
  spec: Pick<Spec, 'description' | 'axes' | 'report' | 'trials'>,
): ExperimentPresentation {
  const datasets = [
    ...new Set(spec.trials.flatMap((t) => t.config.eval.datasets.map((d) => d.name))),
  ];
  const metrics = spec.report.tables[0]?.metrics ?? HEADLINE_METRICS;
  return {
    description: spec.description || undefined,
    view: {
      params: spec.axes.map(axisParamKey).filter((k): k is string => k !== undefined),
      metrics: datasets
        .flatMap((d) => metrics.map((m) => `${d}.${m}`))
        .slice(0, MAX_METRIC_COLUMNS),
    },
  };
}
