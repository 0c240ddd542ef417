/**
 * Checks of the non-sweep sections that JSON Schema cannot make: numbers JSON cannot hold,
 * seeds vs base.seed, the number of trials, unique eval dataset names, test-time prompt
 * slots, report axes/datasets/reference widths, workers vs GPUs.
 */
import { defaultWorkers, deviceSlotProblem, gpuIndex } from './executors/devices.js';
import { isPlainObject } from './extends.js';
import type { IssueSink } from './issues.js';
import { show, suggest } from '../io/wording.js';
import { DEFAULT_MAX_TRIALS } from './limits.js';
import type { JsonPath } from './spec-error.js';
import { DEFAULT_SEED, EXECUTION_DEFAULTS } from './spec-types.js';
import type { Axis } from './sweep-input.js';

/**
 * Numbers a spec cannot mean: .nan, ±.inf (or a literal too large for a double) and integers
 * beyond 2^53, which YAML hands over already rounded. Reported first and settled: the
 * schema's complaint about the same value would only repeat it less clearly.
 */
export function checkNumbers(value: unknown, sink: IssueSink, path: JsonPath = []): void {
  const visit = (v: unknown, at: JsonPath): void => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) sink.settle(at, 'value', `got ${show(v)}, expected a finite number`);
      else if (Number.isInteger(v) && !Number.isSafeInteger(v))
        sink.settle(
          at,
          'value',
          `got ${show(v)}, beyond 2^53: numbers this large are not exact as written (YAML rounds such integers), and no spec field takes one`,
        );
    } else if (Array.isArray(v)) v.forEach((x, i) => visit(x, [...at, i]));
    else if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) visit(x, [...at, k]);
  };
  visit(value, path);
}

/** execution.max_trials when it is a valid override, else the default limit. */
export function maxTrials(spec: Record<string, unknown>): number {
  const execution = isPlainObject(spec.execution) ? spec.execution : {};
  const limit = execution.max_trials;
  return Number.isSafeInteger(limit) && (limit as number) >= 1
    ? (limit as number)
    : DEFAULT_MAX_TRIALS;
}

const LIMIT_HINT = 'raise execution.max_trials if you mean it';

/**
 * Errors when variants × grid × zip groups × seeds exceeds the trial limit; checked before
 * any trial is built, so a huge sweep costs nothing.
 */
export function checkSweepSize(
  axes: readonly Axis[],
  seeds: number,
  limit: number,
  sink: IssueSink,
): boolean {
  const factors = axes.map((a) => ({ name: a.names.join('+'), n: a.points.length }));
  const total = factors.reduce((p, f) => p * f.n, seeds);
  if (total <= limit) return true;
  const product = [
    ...factors.map((f) => `${f.n} ${f.name}`),
    `${seeds} seed${seeds === 1 ? '' : 's'}`,
  ].join(' × ');
  sink.error(
    axes.length > 0 ? ['sweep'] : ['seeds'],
    'key',
    `the sweep expands to ${total.toLocaleString('en-US')} trials (${product}), more than the limit of ${limit.toLocaleString('en-US')}; ${LIMIT_HINT}`,
  );
  return false;
}

/** The seeds every sweep point runs with (none when their count is beyond the trial limit). */
export function readSeeds(
  spec: Record<string, unknown>,
  sink: IssueSink,
  limit = maxTrials(spec),
): number[] {
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
  const count = Number.isSafeInteger(seeds) && (seeds as number) >= 1 ? (seeds as number) : 1;
  if (count > limit) {
    sink.error(
      ['seeds'],
      'value',
      `got ${count.toLocaleString('en-US')} seeds, more than the limit of ${limit.toLocaleString('en-US')} trials; ${LIMIT_HINT}`,
    );
    return [];
  }
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
  const h2h = isPlainObject(report.head_to_head) ? report.head_to_head : undefined;
  if (h2h) {
    const at = ['report', 'head_to_head'];
    if (typeof h2h.name === 'string' && seen.has(h2h.name))
      sink.error(
        [...at, 'name'],
        'value',
        `got duplicate report name ${show(h2h.name)}, expected unique names (they are file names)`,
      );
    if (axes.length === 0)
      sink.error(
        at,
        'key',
        'got a head-to-head comparison, but the spec sweeps nothing: compare two sweep points (e.g. two variants)',
      );
    if (Array.isArray(h2h.compare) && h2h.compare[0] === h2h.compare[1])
      sink.error([...at, 'compare'], 'value', 'got the same sweep point twice, expected two');
    if (Array.isArray(h2h.datasets))
      h2h.datasets.forEach((d, j) => {
        if (typeof d === 'string' && !datasets.includes(d))
          sink.error(
            [...at, 'datasets', j],
            'value',
            `got dataset ${show(d)}, expected one of eval.datasets: ${datasets.join(', ')}`,
          );
      });
  }
}

/**
 * The local executor's workers must fit the GPUs: at most `trials_per_device` trials at once on
 * each (executors/devices.ts). Returns the workers the spec runs (a GPU spec that names none
 * fills every GPU slot).
 */
export function checkExecution(spec: Record<string, unknown>, sink: IssueSink): number {
  const ex = isPlainObject(spec.execution) ? spec.execution : {};
  const devices = Array.isArray(ex.devices)
    ? ex.devices.filter((d): d is string => typeof d === 'string')
    : EXECUTION_DEFAULTS.devices;
  const perDevice = Number.isInteger(ex.trials_per_device)
    ? (ex.trials_per_device as number)
    : EXECUTION_DEFAULTS.trials_per_device;
  // Slurm hands out GPUs itself (execution.slurm.gpus / gres): devices are the local executor's.
  if (ex.executor === 'slurm')
    return Number.isInteger(ex.workers) ? (ex.workers as number) : EXECUTION_DEFAULTS.workers;
  const workers = Number.isInteger(ex.workers)
    ? (ex.workers as number)
    : defaultWorkers(devices, perDevice);
  if (ex.trials_per_device !== undefined && !devices.some((d) => gpuIndex(d) !== undefined))
    sink.warning(
      ['execution', 'trials_per_device'],
      'key',
      `trials_per_device applies to GPUs and execution.devices lists none (${show(devices)})`,
    );
  const problem = deviceSlotProblem(devices, workers, perDevice);
  if (problem)
    sink.error(['execution', ex.workers !== undefined ? 'workers' : 'devices'], 'value', problem);
  return workers;
}
