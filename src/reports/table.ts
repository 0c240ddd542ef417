/**
 * The table model of a report table: rows (sweep points, or datasets), columns (dataset ×
 * metric), cells with mean ± std over seeds, the paper value and the delta, the best value
 * of each column marked. Renderers (render-table.ts) only format this model.
 */
import type { Metric, TableSpec } from '../runner/spec-types.js';
import { groupLabel, metricStat, varyingAxes, type Group, type Stat } from './aggregate.js';
import { axisTitle, higherIsBetter, KEY_SEPARATOR, toDisplay } from './labels.js';
import { productKey } from '../tracking/artifact-names.js';

export interface Column {
  /** The column's dataset (undefined when datasets are rows). */
  dataset?: string;
  /** Shown in the header only when the table has several datasets as columns. */
  showDataset: boolean;
  metric: Metric;
  /** The table has paper values in this column. */
  hasReference: boolean;
}

export interface Cell {
  stat: Stat | null;
  paper?: number;
  /** ours − paper, in display units. */
  delta?: number;
  best: boolean;
}

export interface Row {
  /** Label columns: the rows axis first, then the other axes that vary. */
  keys: string[];
  /** Finished seeds of the row's sweep point. */
  n: number;
  cells: Cell[];
}

export interface TableModel {
  name: string;
  title: string;
  keyHeaders: string[];
  columns: Column[];
  rows: Row[];
  referenceSource?: string;
}

/** Decimals shown for our means, stds and deltas (the paper uses one). */
export const DECIMALS = 2;

const rounded = (v: number) => Number(v.toFixed(DECIMALS));

function cellOf(
  group: Group,
  key: string,
  metric: Metric,
  reported: number | null | undefined,
): Omit<Cell, 'best'> {
  const stat = metricStat(group, key, (v) => toDisplay(metric, v));
  const paper = reported ?? undefined; // null: the paper reports none
  return { stat, paper, delta: stat && paper !== undefined ? stat.mean - paper : undefined };
}

/** Bold the best mean of each column (ties at the shown precision all bold). */
function markBest(rows: Row[], columns: Column[]): void {
  columns.forEach((col, c) => {
    const means = rows
      .map((r) => r.cells[c].stat)
      .filter((s): s is Stat => s !== null)
      .map((s) => rounded(s.mean));
    if (means.length < 2) return;
    const best = higherIsBetter(col.metric) ? Math.max(...means) : Math.min(...means);
    for (const r of rows) {
      const s = r.cells[c].stat;
      r.cells[c].best = s !== null && rounded(s.mean) === best;
    }
  });
}

/** Position of each value of `axis` in expansion order. */
function axisOrder(groups: readonly Group[], axis: string): Map<string, number> {
  const order = new Map<string, number>();
  for (const g of groups) if (!order.has(g.labels[axis])) order.set(g.labels[axis], order.size);
  return order;
}

export interface TableInput {
  table: TableSpec;
  axes: readonly string[];
  groups: readonly Group[];
  /** Eval dataset names in spec order. */
  datasets: readonly string[];
}

/** The main table of a TableSpec. */
export function buildTable({ table, axes, groups, datasets }: TableInput): TableModel {
  const shown = table.datasets ?? [...datasets];
  const ref = table.reference;
  const byDataset = table.rows === 'dataset';
  const others = varyingAxes(axes, groups).filter((a) => a !== table.rows);
  const keyHeaders = [axisTitle(table.rows), ...others.map(axisTitle)];
  const rows: Row[] = [];
  let columns: Column[];

  if (byDataset) {
    columns = table.metrics.map((metric) => ({
      metric,
      showDataset: false,
      hasReference: Boolean(ref),
    }));
    for (const dataset of shown) {
      for (const g of groups) {
        const keys = [dataset, ...others.map((a) => g.labels[a])];
        const paperRow = ref?.values[keys.join(KEY_SEPARATOR)];
        const cells = table.metrics.map((m, i) => ({
          ...cellOf(g, `${dataset}.${m}`, m, paperRow?.[i]),
          best: false,
        }));
        rows.push({ keys, n: g.results.length, cells });
      }
    }
  } else {
    const refDataset = ref?.dataset ?? shown[0];
    columns = shown.flatMap((dataset) =>
      table.metrics.map((metric) => ({
        dataset,
        showDataset: shown.length > 1,
        metric,
        hasReference: Boolean(ref) && dataset === refDataset,
      })),
    );
    const order = axisOrder(groups, table.rows);
    const sorted = [...groups].sort(
      (a, b) =>
        order.get(a.labels[table.rows])! - order.get(b.labels[table.rows])! || a.index - b.index,
    );
    for (const g of sorted) {
      const keys = [g.labels[table.rows], ...others.map((a) => g.labels[a])];
      const paperRow = ref?.values[keys.join(KEY_SEPARATOR)];
      const cells = shown.flatMap((dataset) =>
        table.metrics.map((m, i) => ({
          ...cellOf(g, `${dataset}.${m}`, m, dataset === refDataset ? paperRow?.[i] : undefined),
          best: false,
        })),
      );
      rows.push({ keys, n: g.results.length, cells });
    }
  }
  if (byDataset) markBestWithin(rows, columns, (r) => r.keys[0]);
  else markBest(rows, columns);
  return {
    name: table.name,
    title: table.title ?? table.name,
    keyHeaders,
    columns,
    rows,
    referenceSource: ref?.source,
  };
}

/** With datasets as rows, "best" compares the rows of one dataset only. */
function markBestWithin(rows: Row[], columns: Column[], blockOf: (r: Row) => string): void {
  for (const block of new Set(rows.map(blockOf)))
    markBest(
      rows.filter((r) => blockOf(r) === block),
      columns,
    );
}

/**
 * Products of a dataset found in the results' metric keys (`<dataset>.<product>.<metric>`),
 * sorted; with `defects`, also the per-defect-type entries `<product>/<defect>` (each after
 * its product).
 */
export function productsOf(
  groups: readonly Group[],
  dataset: string,
  metrics: readonly Metric[],
  defects = false,
): string[] {
  const found = new Set<string>();
  const prefix = `${dataset}.`;
  for (const g of groups) {
    for (const r of g.results) {
      for (const key of Object.keys(r.metrics)) {
        if (!key.startsWith(prefix)) continue;
        const rest = key.slice(prefix.length);
        const dot = rest.lastIndexOf('.');
        if (dot > 0 && (metrics as readonly string[]).includes(rest.slice(dot + 1))) {
          const product = rest.slice(0, dot);
          if (defects || !product.includes('/')) found.add(product);
        }
      }
    }
  }
  return [...found].sort();
}

/** "grid", or "grid: broken" for a defect type of grid. */
function productLabel(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key : `${key.slice(0, slash)}: ${key.slice(slash + 1)}`;
}

/**
 * Per-product table of one dataset: a row per product (× sweep point), each followed by its
 * defect types when evaluated separately, then the dataset mean.
 */
export function buildProductTable(
  { table, axes, groups }: TableInput,
  dataset: string,
): TableModel {
  const others = varyingAxes(axes, groups);
  const ref = table.reference;
  const written = ref?.products?.[dataset];
  // Metric keys carry product keys; the reference names products as the dataset does.
  const refValues =
    written && Object.fromEntries(Object.entries(written).map(([p, v]) => [productKey(p), v]));
  const refRow = ref?.products_row;
  const columns: Column[] = table.metrics.map((metric) => ({
    dataset,
    showDataset: false,
    metric,
    hasReference: Boolean(refValues),
  }));
  const rows: Row[] = [];
  const products = productsOf(groups, dataset, table.metrics, true);
  const refFor = (g: Group) =>
    refRow === undefined ? groups.length === 1 : groupLabel(g, others) === refRow;
  for (const product of [...products, 'mean']) {
    const block: Row[] = [];
    for (const g of groups) {
      const paperRow = product !== 'mean' && refFor(g) ? refValues?.[product] : undefined;
      const key = (m: Metric) =>
        product === 'mean' ? `${dataset}.${m}` : `${dataset}.${product}.${m}`;
      const cells = table.metrics.map((m, i) => ({
        ...cellOf(g, key(m), m, paperRow?.[i]),
        best: false,
      }));
      block.push({
        keys: [productLabel(product), ...others.map((a) => g.labels[a])],
        n: g.results.length,
        cells,
      });
    }
    if (others.length > 0) markBest(block, columns);
    rows.push(...block);
  }
  return {
    name: `${table.name}.${dataset}.products`,
    title: `${table.title ?? table.name}: ${dataset} per product`,
    keyHeaders: ['product', ...others.map(axisTitle)],
    columns,
    rows,
    referenceSource: refValues ? ref?.source : undefined,
  };
}
