/**
 * Metric figures from the aggregated groups: curves of a metric against a swept axis (paper
 * Fig. 9; ours with ± std error bars beside the paper's values), bars, and the per-product
 * gain of one sweep point over another (paper Fig. 7). Each returns a Vega-Lite spec.
 */
import type { FigureSpec, Metric } from '../runner/spec-types.js';
import { UserError } from '../errors.js';
import { groupLabel, metricStat, type Group } from './aggregate.js';
import { axisTitle, KEY_SEPARATOR, METRIC_LABELS, metricUnit, toDisplay } from './labels.js';
import { productsOf } from './table.js';

type VlSpec = Record<string, unknown>;

const PAPER = 'paper';

interface Point {
  x: string;
  series: string;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

function xValues(groups: readonly Group[], x: string, datasets: readonly string[]): string[] {
  if (x === 'dataset') return [...datasets];
  const seen: string[] = [];
  for (const g of groups) if (!seen.includes(g.labels[x])) seen.push(g.labels[x]);
  return seen;
}

function yTitle(metric: Metric): string {
  return `${METRIC_LABELS[metric]} (${metricUnit(metric)})`;
}

/** Ours (mean ± std per x and series) and the paper's values for one metric and dataset panel. */
function panelData(
  fig: FigureSpec,
  groups: readonly Group[],
  metric: Metric,
  dataset: string | undefined,
  datasets: readonly string[],
) {
  const x = fig.x!;
  const points: Point[] = [];
  const panelDatasets = x === 'dataset' ? datasets : [dataset!];
  for (const g of groups) {
    for (const d of panelDatasets) {
      const stat = metricStat(g, `${d}.${metric}`, (v) => toDisplay(metric, v));
      if (!stat) continue;
      const xLabel = x === 'dataset' ? d : g.labels[x];
      const series = fig.series ? g.labels[fig.series] : 'ours';
      const sd = stat.std ?? 0;
      // "ours:" only tells ours from the paper's lines; without a reference it is noise.
      const label = fig.series ? (fig.reference ? `ours: ${series}` : series) : 'ours';
      points.push({
        x: xLabel,
        series: label,
        mean: stat.mean,
        lo: stat.mean - sd,
        hi: stat.mean + sd,
        n: stat.n,
      });
    }
  }
  const paper: { x: string; series: string; value: number }[] = [];
  const ref = fig.reference;
  const refDataset = ref?.dataset ?? datasets[0];
  if (ref && (x === 'dataset' || dataset === refDataset)) {
    const i = fig.metrics!.indexOf(metric);
    for (const [key, values] of Object.entries(ref.values)) {
      const [xLabel, seriesLabel] = key.split(KEY_SEPARATOR);
      if (values[i] === null || values[i] === undefined) continue; // not reported
      paper.push({
        x: xLabel,
        series: seriesLabel ? `${PAPER}: ${seriesLabel}` : PAPER,
        value: values[i]!,
      });
    }
  }
  return { points, paper };
}

/** A line (or bar) chart: one panel per metric × dataset. */
export function metricFigure(
  fig: FigureSpec,
  groups: readonly Group[],
  datasets: readonly string[],
): VlSpec {
  const x = fig.x!;
  const shown = fig.datasets ?? [...datasets];
  const order = xValues(groups, x, shown);
  const panels: VlSpec[] = [];
  const panelDatasets = x === 'dataset' ? [undefined] : shown;
  // Error bars only when some point has several seeds; with one seed each they would be empty.
  const spread = fig.metrics!.some((metric) =>
    panelDatasets.some((dataset) =>
      panelData(fig, groups, metric, dataset, shown).points.some((p) => p.n > 1),
    ),
  );
  for (const metric of fig.metrics!) {
    for (const dataset of panelDatasets) {
      const { points, paper } = panelData(fig, groups, metric, dataset, shown);
      for (const p of paper) if (!order.includes(p.x)) order.push(p.x);
      const xEnc = {
        field: 'x',
        type: 'ordinal',
        sort: order,
        title: axisTitle(x),
        axis: { labelAngle: order.some((o) => o.length > 6) ? -30 : 0 },
      };
      const yEnc = { type: 'quantitative', title: yTitle(metric), scale: { zero: false } };
      const legend = fig.series
        ? `${axisTitle(fig.series)}${fig.reference ? ' (ours, paper)' : ''}`
        : 'source';
      const color = {
        field: 'series',
        type: 'nominal',
        title: legend,
        scale: { scheme: 'tableau10' },
      };
      const bars: VlSpec[] =
        fig.kind === 'bar'
          ? [
              {
                data: { values: points },
                mark: { type: 'errorbar', ticks: true },
                encoding: {
                  x: xEnc,
                  xOffset: { field: 'series' },
                  y: { ...yEnc, field: 'lo' },
                  y2: { field: 'hi' },
                },
              },
            ]
          : [
              {
                data: { values: points },
                mark: { type: 'errorbar', ticks: true },
                encoding: { x: xEnc, y: { ...yEnc, field: 'lo' }, y2: { field: 'hi' }, color },
              },
            ];
      const layers: VlSpec[] =
        fig.kind === 'bar'
          ? [
              {
                data: { values: points },
                mark: { type: 'bar' },
                encoding: {
                  x: xEnc,
                  xOffset: { field: 'series' },
                  y: { ...yEnc, field: 'mean', scale: { zero: true } },
                  color,
                },
              },
              ...(spread ? bars : []),
            ]
          : [
              ...(spread ? bars : []),
              {
                data: { values: points },
                mark: { type: 'line', point: { size: 50 } },
                encoding: { x: xEnc, y: { ...yEnc, field: 'mean' }, color },
              },
            ];
      if (paper.length > 0) {
        layers.push({
          data: { values: paper },
          mark: {
            type: 'line',
            strokeDash: [5, 4],
            point: { shape: 'diamond', size: 80, filled: true },
          },
          encoding: { x: xEnc, y: { ...yEnc, field: 'value' }, color },
        });
      }
      const title = `${METRIC_LABELS[metric]}${dataset ? ` on ${dataset}` : ''}`;
      panels.push({ width: Math.max(220, 46 * order.length), height: 200, title, layer: layers });
    }
  }
  const subtitle = [
    spread
      ? 'mean ± sample std over seeds (error bars)'
      : `one seed per point${groups.some((g) => g.results.length > 0) ? '' : ' (no finished runs)'}`,
    ...(fig.reference ? [`dashed: ${fig.reference.source}`] : []),
  ];
  return {
    title: { text: fig.title ?? fig.name, subtitle },
    concat: panels,
    columns: 3,
    resolve: { scale: { color: 'shared', y: 'independent' } },
  };
}

/**
 * The two sweep points of a gain figure: `baseline` / `target` name a point by its label over
 * the varying axes ("VCP-CLIP", or "2 | 0.75" with several axes) or by its value along x when
 * that is unique; by default the first and last points.
 */
export function gainEnds(
  fig: FigureSpec,
  groups: readonly Group[],
  varying: readonly string[],
): { baseline: Group; target: Group } {
  const find = (label: string | undefined, fallback: Group | undefined, role: string): Group => {
    if (label === undefined && fallback) return fallback;
    const full = groups.filter((g) => groupLabel(g, varying) === label);
    const alongX = groups.filter((g) => g.labels[fig.x!] === label);
    const hit = full.length === 1 ? full[0] : alongX.length === 1 ? alongX[0] : undefined;
    if (!hit) {
      throw new UserError(`figure ${fig.name}: ${role} "${label}" does not name one sweep point`, {
        hint: `use one of: ${groups.map((g) => groupLabel(g, varying)).join('; ')}`,
      });
    }
    return hit;
  };
  return {
    baseline: find(fig.baseline, groups[0], 'baseline'),
    target: find(fig.target, groups.at(-1), 'target'),
  };
}

/** Per-product bars of target − baseline (means over seeds), one panel per metric × dataset. */
export function gainFigure(
  fig: FigureSpec,
  groups: readonly Group[],
  datasets: readonly string[],
  varying: readonly string[],
): VlSpec {
  const ends = gainEnds(fig, groups, varying);
  const [baseline, target] = [groupLabel(ends.baseline, varying), groupLabel(ends.target, varying)];
  const [base, tgt] = [[ends.baseline], [ends.target]];
  const panels: VlSpec[] = [];
  for (const metric of fig.metrics!) {
    for (const dataset of fig.datasets ?? datasets) {
      const products = productsOf([base[0], tgt[0]], dataset, [metric]);
      const values = [...products, 'mean'].flatMap((p) => {
        const key = p === 'mean' ? `${dataset}.${metric}` : `${dataset}.${p}.${metric}`;
        const [b, t] = [
          metricStat(base[0], key, (v) => toDisplay(metric, v)),
          metricStat(tgt[0], key, (v) => toDisplay(metric, v)),
        ];
        if (!b || !t) return [];
        const gain = t.mean - b.mean;
        return [{ product: p, gain, sign: gain >= 0 ? 'gain' : 'loss' }];
      });
      panels.push({
        width: Math.max(260, 26 * values.length),
        height: 200,
        title: `${METRIC_LABELS[metric]} on ${dataset}`,
        data: { values },
        mark: { type: 'bar' },
        encoding: {
          x: {
            field: 'product',
            type: 'nominal',
            sort: values.map((v) => v.product),
            title: 'product',
            axis: { labelAngle: -45 },
          },
          y: {
            field: 'gain',
            type: 'quantitative',
            title: `Δ ${METRIC_LABELS[metric]} (${metric === 'ms_per_image' ? 'ms' : 'percentage points'})`,
          },
          color: {
            field: 'sign',
            type: 'nominal',
            title: 'sign of Δ',
            scale: { domain: ['gain', 'loss'], range: ['#4c78a8', '#e45756'] },
          },
        },
      });
    }
  }
  return {
    title: {
      text: fig.title ?? fig.name,
      subtitle: `${target} − ${baseline}, per product (means over seeds)`,
    },
    concat: panels,
    columns: 2,
  };
}
