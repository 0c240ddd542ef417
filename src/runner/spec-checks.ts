/**
 * Checks of the non-sweep sections that JSON Schema cannot make: seeds vs base.seed, unique
 * eval dataset names, test-time prompt slots, report axes/datasets/reference widths.
 */
import { isPlainObject } from './extends.js';
import type { IssueSink } from './issues.js';
import { show, suggest } from '../io/wording.js';
import { DEFAULT_SEED } from './spec-types.js';

/** The seeds every sweep point runs with. */
export function readSeeds(spec: Record<string, unknown>, sink: IssueSink): number[] {
  const base = isPlainObject(spec.base) ? spec.base : {};
  const baseSeed = Number.isInteger(base.seed) ? (base.seed as number) : undefined;
  const seeds = spec.seeds;
  if (Array.isArray(seeds)) {
    if (baseSeed !== undefined) {
      sink.error(
        ['base', 'seed'],
        'key',
        `got base.seed ${baseSeed} and a list of seeds, expected one of them: with \`seeds: [...]\` each trial's seed comes from the list`,
      );
    }
    return seeds.filter((s): s is number => Number.isInteger(s) && s >= 0);
  }
  const start = baseSeed ?? DEFAULT_SEED;
  const count = Number.isInteger(seeds) && (seeds as number) >= 1 ? (seeds as number) : 1;
  return Array.from({ length: count }, (_, i) => start + i);
}

function countSlot(text: string, slot: string): number {
  return text.split(slot).length - 1;
}

/** Eval dataset names (checked for uniqueness) and prompt slots. */
export function checkEval(spec: Record<string, unknown>, sink: IssueSink): string[] {
  const ev = isPlainObject(spec.eval) ? spec.eval : {};
  const names: string[] = [];
  if (Array.isArray(ev.datasets)) {
    ev.datasets.forEach((d, i) => {
      if (!isPlainObject(d) || typeof d.name !== 'string') return;
      if (names.includes(d.name))
        sink.error(
          ['eval', 'datasets', i, 'name'],
          'value',
          `got duplicate dataset name ${show(d.name)}, expected unique names (they prefix the metric names)`,
        );
      names.push(d.name);
    });
  }
  if (Array.isArray(ev.prompts)) {
    ev.prompts.forEach((p, i) => {
      if (!isPlainObject(p)) return;
      for (const side of ['normal', 'abnormal'] as const) {
        const text = p[side];
        if (typeof text !== 'string') continue;
        if (countSlot(text, '{cls}') !== 1 || text.includes('{state}')) {
          sink.error(
            ['eval', 'prompts', i, side],
            'value',
            `got ${show(text)}, expected a sentence with exactly one {cls} slot and no {state} slot, e.g. "a photo of a damaged {cls}"`,
          );
        }
      }
    });
  }
  return names;
}

/** Report axes must be swept; datasets must be evaluated; reference rows must have one value per metric. */
export function checkReport(
  spec: Record<string, unknown>,
  axes: string[],
  datasets: string[],
  sink: IssueSink,
): void {
  const report = isPlainObject(spec.report) ? spec.report : {};
  const seen = new Map<string, string>();
  for (const kind of ['tables', 'figures'] as const) {
    const list = report[kind];
    if (!Array.isArray(list)) continue;
    list.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      const at = ['report', kind, i];
      if (typeof item.name === 'string') {
        if (seen.has(item.name))
          sink.error(
            [...at, 'name'],
            'value',
            `got duplicate report name ${show(item.name)}, expected unique names (they are file names)`,
          );
        seen.set(item.name, kind);
      }
      if (
        kind === 'figures' &&
        ['line', 'bar', 'gain', undefined].includes(item.kind as string | undefined)
      ) {
        for (const field of ['x', 'metrics']) {
          if (item[field] === undefined)
            sink.error(
              at,
              'key',
              `got no \`${field}\`, expected one: a ${String(item.kind ?? 'line')} figure plots metrics against an axis`,
            );
        }
      }
      for (const field of kind === 'tables' ? ['rows'] : ['x', 'series']) {
        const axis = item[field];
        // `dataset` is the pseudo-axis of the eval datasets (one row or x value per dataset).
        if (typeof axis === 'string' && axis !== 'dataset' && !axes.includes(axis)) {
          const guess = suggest(axis, axes);
          const message =
            axes.length === 0
              ? `got axis ${show(axis)}, expected a swept axis, but the spec sweeps nothing`
              : `got axis ${show(axis)}${guess ? `; did you mean ${show(guess)}?` : ''}, expected a swept axis: ${axes.join(', ')}`;
          sink.error([...at, field], 'value', message);
        }
      }
      if (Array.isArray(item.datasets)) {
        item.datasets.forEach((d, j) => {
          if (typeof d !== 'string' || datasets.includes(d)) return;
          const guess = suggest(d, datasets);
          sink.error(
            [...at, 'datasets', j],
            'value',
            `got dataset ${show(d)}${guess ? `; did you mean ${show(guess)}?` : ''}, expected one of eval.datasets: ${datasets.join(', ')}`,
          );
        });
      }
      const logged = isPlainObject(spec.eval) ? spec.eval.samples_per_product : undefined;
      if (
        kind === 'figures' &&
        (item.kind === 'samples' || item.kind === 'attention') &&
        typeof item.max_items === 'number' &&
        typeof logged === 'number' &&
        item.max_items > logged
      )
        sink.error(
          [...at, 'max_items'],
          'value',
          `got ${item.max_items}, expected at most ${logged}: the trials log ${logged} sample image${logged === 1 ? '' : 's'} per product (eval.samples_per_product)`,
        );
      const metrics = Array.isArray(item.metrics) ? item.metrics.length : 0;
      const ref = isPlainObject(item.reference) ? item.reference : undefined;
      if (ref && isPlainObject(ref.values)) {
        for (const [row, values] of Object.entries(ref.values)) {
          if (Array.isArray(values) && values.length !== metrics) {
            sink.error(
              [...at, 'reference', 'values', row],
              'value',
              `got ${values.length} values, expected ${metrics}: one per metric (${(item.metrics as string[]).join(', ')})`,
            );
          }
        }
      }
      if (ref && isPlainObject(ref.products)) {
        for (const [dataset, products] of Object.entries(ref.products)) {
          if (!datasets.includes(dataset))
            sink.error(
              [...at, 'reference', 'products', dataset],
              'key',
              `got dataset ${show(dataset)}, expected one of eval.datasets: ${datasets.join(', ')}`,
            );
          if (!isPlainObject(products)) continue;
          for (const [product, values] of Object.entries(products)) {
            if (Array.isArray(values) && values.length !== metrics) {
              sink.error(
                [...at, 'reference', 'products', dataset, product],
                'value',
                `got ${values.length} values, expected ${metrics}: one per metric (${(item.metrics as string[]).join(', ')})`,
              );
            }
          }
        }
      }
      if (ref && typeof ref.dataset === 'string' && !datasets.includes(ref.dataset)) {
        sink.error(
          [...at, 'reference', 'dataset'],
          'value',
          `got dataset ${show(ref.dataset)}, expected one of eval.datasets: ${datasets.join(', ')}`,
        );
      }
    });
  }
}
