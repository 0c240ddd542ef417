/**
 * Two sweep points compared on identical data, seeds and metrics (e.g. VCP-CLIP vs ViP²-CLIP as
 * two variants): who wins each product, a paired significance test over seeds × products, and
 * what each costs (trainable parameters, training time, inference time per image), from the
 * MLflow results the runner logged. No paper reports any of this; the paper values go in the
 * spec's ordinary tables beside ours.
 */
import type { HeadToHeadSpec, Metric } from '../runner/spec-types.js';

export type { HeadToHeadSpec };
import { groupLabel, summarize, varyingAxes, type Group, type Stat } from './aggregate.js';
import { METRIC_LABELS, metricUnit, toDisplay } from './labels.js';
import { productsOf } from './table.js';
import { wilcoxonSignedRank, type WilcoxonResult } from './wilcoxon.js';

/** MLflow keys of the cost measurements a trial logs. */
export const COST_KEYS = Object.freeze({
  parameters: 'model.parameters',
  trainSeconds: 'time.train_s',
  /** Frozen CLIP encoder + method head + post-processing, per test image. */
  inferMs: 'time.infer_ms_per_image',
  trained: 'model.trained',
});

export interface ProductRow {
  dataset: string;
  product: string;
  metric: Metric;
  /** Means over the seeds where the metric exists, display units (percent). */
  a: Stat | null;
  b: Stat | null;
  /** Label of the winner, 'tie', or null when one side is missing. */
  winner: string | null;
  /** a − b in display units (points). */
  margin: number | null;
}

export interface MetricTest {
  metric: Metric;
  /** Pairs (seed, product) where both sides have the metric. */
  pairs: number;
  seeds: number;
  products: number;
  /** Mean of a − b over the pairs, in points. */
  meanDifference: number | null;
  test: WilcoxonResult | null;
  wins: [number, number];
  ties: number;
}

export interface Costs {
  label: string;
  /** tfjs backends the trials ran on (their vcp.backend tags). */
  backends: string[];
  parameters: number | null;
  /** Seconds per training (trials that trained, not those that reused a checkpoint). */
  trainSeconds: Stat | null;
  inferMs: Stat | null;
}

export interface HeadToHeadModel {
  spec: HeadToHeadSpec;
  labels: [string, string];
  seeds: number[];
  rows: ProductRow[];
  tests: MetricTest[];
  costs: [Costs, Costs];
  notes: string[];
}

/** A comparison the spec asks for that the sweep cannot give (e.g. an unknown label). */
export class HeadToHeadError extends Error {}

/** Equal at the shown precision (2 decimals of a percent) counts as a tie. */
const TIE = 0.005;

export function buildHeadToHead(
  spec: HeadToHeadSpec,
  axes: readonly string[],
  groups: readonly Group[],
  datasets: readonly string[],
): HeadToHeadModel {
  const varying = varyingAxes(axes, groups);
  const labels = groups.map((g) => groupLabel(g, varying));
  const find = (label: string): Group => {
    const matches = groups.filter((_, i) => labels[i] === label);
    if (matches.length !== 1)
      throw new HeadToHeadError(
        `head-to-head ${spec.name}: "${label}" names ${matches.length} sweep points (they are: ${labels.join('; ')})`,
      );
    return matches[0];
  };
  const [ga, gb] = spec.compare.map(find);
  const notes: string[] = [];
  const seedsA = new Set(ga.results.map((r) => r.seed));
  const seeds = [...new Set(gb.results.map((r) => r.seed))].filter((s) => seedsA.has(s)).sort();
  const bySeed = (g: Group) => new Map(g.results.map((r) => [r.seed, r.metrics]));
  const [ma, mb] = [bySeed(ga), bySeed(gb)];
  const shown = spec.datasets ?? [...datasets];
  const rows: ProductRow[] = [];
  const tests: MetricTest[] = [];
  for (const metric of spec.metrics) {
    const xs: number[] = [];
    const ys: number[] = [];
    const products = new Set<string>();
    const wins: [number, number] = [0, 0];
    let ties = 0;
    for (const dataset of shown) {
      for (const product of productsOf([ga, gb], dataset, [metric])) {
        const key = `${dataset}.${product}.${metric}`;
        const values = (m: Map<number, Record<string, number>>) =>
          seeds
            .map((s) => m.get(s)?.[key])
            .map((v) => (v === undefined ? NaN : toDisplay(metric, v)));
        const va = values(ma);
        const vb = values(mb);
        seeds.forEach((_, i) => {
          if (Number.isFinite(va[i]) && Number.isFinite(vb[i])) {
            xs.push(va[i]);
            ys.push(vb[i]);
            products.add(`${dataset}.${product}`);
          }
        });
        const a = summarize(va);
        const b = summarize(vb);
        let winner: string | null = null;
        let margin: number | null = null;
        if (a && b) {
          margin = a.mean - b.mean;
          const higher = metric === 'ms_per_image' ? -margin : margin;
          if (Math.abs(margin) < TIE) {
            winner = 'tie';
            ties++;
          } else {
            winner = higher > 0 ? spec.compare[0] : spec.compare[1];
            wins[higher > 0 ? 0 : 1]++;
          }
        }
        rows.push({ dataset, product, metric, a, b, winner, margin });
      }
    }
    const meanDifference =
      xs.length > 0 ? xs.reduce((acc, x, i) => acc + x - ys[i], 0) / xs.length : null;
    tests.push({
      metric,
      pairs: xs.length,
      seeds: seeds.length,
      products: products.size,
      meanDifference,
      test: xs.length > 0 ? wilcoxonSignedRank(xs, ys) : null,
      wins,
      ties,
    });
  }
  if (seeds.length < Math.max(ga.results.length, gb.results.length))
    notes.push(
      `only the ${seeds.length} seeds finished for both sides are compared (${spec.compare[0]}: ${ga.results.length}, ${spec.compare[1]}: ${gb.results.length})`,
    );
  return {
    spec,
    labels: spec.compare,
    seeds,
    rows,
    tests,
    costs: [costsOf(spec.compare[0], ga), costsOf(spec.compare[1], gb)],
    notes,
  };
}

function costsOf(label: string, group: Group): Costs {
  const values = (key: string, keep: (m: Record<string, number>) => boolean = () => true) =>
    group.results.filter((r) => key in r.metrics && keep(r.metrics)).map((r) => r.metrics[key]);
  const parameters = values(COST_KEYS.parameters);
  const backends = [
    ...new Set(group.results.map((r) => r.tags?.['vcp.backend']).filter((b) => b !== undefined)),
  ].sort() as string[];
  return {
    label,
    backends,
    parameters: parameters.length > 0 ? parameters[0] : null,
    trainSeconds: summarize(values(COST_KEYS.trainSeconds, (m) => m[COST_KEYS.trained] === 1)),
    inferMs: summarize(values(COST_KEYS.inferMs)),
  };
}

const fixed = (v: number, d = 2) => v.toFixed(d);
/** With a typographic minus, as the tables' Δ columns. */
const signed = (v: number) =>
  v < 0 && fixed(v) !== '-0.00' ? `−${fixed(-v)}` : fixed(Math.abs(v));
const pm = (s: Stat | null, d = 2) =>
  s === null ? '–' : `${fixed(s.mean, d)} ± ${s.std === null ? '–' : fixed(s.std, d)}`;
const mdEscape = (s: string) => s.replaceAll('|', '\\|').replaceAll('_', '\\_');

/** p in plain words: 4 significant digits, or "< 1e-12". */
export function formatP(p: number | null): string {
  if (p === null) return 'undefined (every difference is zero)';
  if (p < 1e-12) return '< 1e-12';
  return p >= 0.001 ? p.toFixed(4) : p.toExponential(2);
}

/** The sentence stating the test of one metric. */
export function testSentence(model: HeadToHeadModel, t: MetricTest): string {
  const [a, b] = model.labels;
  if (!t.test)
    return `${METRIC_LABELS[t.metric]}: no (seed, product) pair where both have the metric.`;
  const r = t.test;
  const method =
    r.method === 'exact'
      ? 'exact null distribution'
      : r.method === 'permutation'
        ? `exact sign-flip permutation (${2 ** r.n} patterns; ties or zero differences)`
        : 'normal approximation with tie correction';
  return (
    `${METRIC_LABELS[t.metric]}: Wilcoxon signed-rank test, two-sided, paired over ${t.pairs} (seed, product) pairs ` +
    `(${t.seeds} seeds × ${t.products} products${r.zeros ? `, ${r.zeros} zero differences dropped` : ''}), ${method}: ` +
    `W = ${fixed(r.statistic, 1)}, p = ${formatP(r.pValue)}; mean ${a} − ${b} = ${signed(t.meanDifference!)} points.`
  );
}

/** The head-to-head section as Markdown (winner table, tests, costs). */
export function headToHeadMarkdown(
  model: HeadToHeadModel,
  context: { workers?: number } = {},
): string {
  const [a, b] = model.labels;
  const out: string[] = [];
  out.push(
    `Compared: **${a}** vs **${b}**, ${model.seeds.length} seeds (${model.seeds.join(', ')}), identical datasets and metrics.`,
    '',
  );
  out.push('### Who wins where (mean over seeds, per product)', '');
  const metrics = model.spec.metrics;
  const head = [
    'dataset',
    'product',
    ...metrics.map((m) => `${METRIC_LABELS[m]} (${metricUnit(m)})`),
  ];
  out.push(
    `| ${head.map(mdEscape).join(' | ')} |`,
    `|${head.map((_, i) => (i < 2 ? ' --- ' : ' :---: ')).join('|')}|`,
  );
  const keys = [...new Set(model.rows.map((r) => `${r.dataset}\u0000${r.product}`))];
  for (const key of keys) {
    const [dataset, product] = key.split('\u0000');
    const cells = metrics.map((m) => {
      const r = model.rows.find(
        (x) => x.dataset === dataset && x.product === product && x.metric === m,
      );
      if (!r || r.winner === null) return '–';
      if (r.winner === 'tie') return `tie (${fixed(r.a!.mean)})`;
      return `${r.winner} +${fixed(Math.abs(r.margin!))}`;
    });
    out.push(`| ${[dataset, product].map(mdEscape).join(' | ')} | ${cells.join(' | ')} |`);
  }
  out.push(
    '',
    `Cells: the winner and its lead in points (means over seeds; ties: equal to 2 decimals). Products won per metric: ` +
      model.tests
        .map(
          (t) =>
            `${METRIC_LABELS[t.metric]} ${a} ${t.wins[0]}, ${b} ${t.wins[1]}${t.ties ? `, ties ${t.ties}` : ''}`,
        )
        .join('; ') +
      '.',
    '',
  );
  out.push('### Paired significance over seeds × products', '');
  for (const t of model.tests) out.push(`- ${testSentence(model, t)}`);
  out.push(
    '',
    'A test per metric, not corrected for multiple comparisons; the pairs share products across seeds, so they are not independent and the p-values are optimistic.',
    '',
  );
  out.push('### Cost, measured in the trials on the same machine', '');
  out.push(
    '| method | trainable parameters | training time per training (s) | inference (ms / image) |',
    '| --- | ---: | ---: | ---: |',
  );
  for (const c of model.costs)
    out.push(
      `| ${mdEscape(c.label)} | ${c.parameters === null ? '–' : c.parameters.toLocaleString('en-US')} | ${pm(c.trainSeconds, 1)} | ${pm(c.inferMs, 1)} |`,
    );
  out.push(
    '',
    'Training time: wall time of the trainings (trials that reused a checkpoint are left out), mean ± std. Inference: frozen CLIP encoder (computed, not from the feature cache) + method head + post-processing, per test image at batch 1.' +
      ` Backend: ${[...new Set(model.costs.flatMap((c) => c.backends))].join(', ') || 'unknown'}` +
      (context.workers && context.workers > 1
        ? `; ${context.workers} trials ran at once on the machine, so the times are comparable between the methods but not a benchmark.`
        : '.'),
    '',
  );
  for (const n of model.notes) out.push(`_Note: ${n}._`, '');
  return out.join('\n');
}

/** Tidy CSV of the per-product comparison. */
export function headToHeadCsv(model: HeadToHeadModel): string {
  const [a, b] = model.labels;
  const lines = [`dataset,product,metric,${a} mean,${b} mean,winner,margin`];
  for (const r of model.rows)
    lines.push(
      [
        r.dataset,
        r.product,
        r.metric,
        r.a?.mean ?? '',
        r.b?.mean ?? '',
        r.winner ?? '',
        r.margin ?? '',
      ]
        .map((v) => (/[",\n]/.test(String(v)) ? `"${String(v).replaceAll('"', '""')}"` : String(v)))
        .join(','),
    );
  return `${lines.join('\n')}\n`;
}
