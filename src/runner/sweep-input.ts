/**
 * The sweep section read into axes of patches, with the checks JSON Schema cannot make:
 * axis paths that exist in the trial config, values valid for their field, zip groups of
 * equal length, unique variant names, no field swept twice.
 */
import { isMethodName, unknownMethodMessage, type MethodName } from '../model/methods/index.js';
import { fieldSchema, isObjectField, validateAt } from './schema.js';
import { show, unknownKeyMessage } from '../io/wording.js';
import type { JsonPath } from './spec-error.js';
import { isPlainObject } from './extends.js';
import type { IssueSink } from './issues.js';

/** One field set by a sweep point. */
export interface Patch {
  /** Axis path segments, e.g. ['train', 'epochs'] or ['heads']. */
  path: string[];
  value: unknown;
  /** Where the value was written in the spec. */
  origin: JsonPath;
}

/** One point of an axis: the fields it sets and the label shown for it. */
export interface AxisPoint {
  patches: Patch[];
  /** Values keyed by axis path for the trial's `point` (variants add `variant`). */
  labels: Record<string, unknown>;
  /** A variant's own method (its trials start from that method's defaults, without `base`). */
  method?: MethodName;
  /** Where that method was written. */
  methodOrigin?: JsonPath;
}

export interface Axis {
  /** Axis paths this axis sets (zip groups: several; variants: `variant`). */
  names: string[];
  points: AxisPoint[];
}

const RESERVED: Record<string, string> = {
  seed: 'seeds are set by the top-level `seeds` (a list or a count), not by a sweep axis',
  method:
    '`method` varies by variant only: give each compared method a variant with `method: <name>` (and its fields in `set`)',
};

/** Checks an axis path; reports an unknown one at `where` and returns undefined. */
function lookupAxis(
  axis: string,
  where: JsonPath,
  sink: IssueSink,
  method: MethodName,
): { pointer: string; schema: Record<string, unknown> } | undefined {
  if (axis in RESERVED) {
    sink.error(where, 'key', `got axis ${JSON.stringify(axis)}: ${RESERVED[axis]}`);
    return undefined;
  }
  const segs = axis.split('.');
  const found = fieldSchema(segs, method);
  if (!found.ok) {
    const prefix = segs.slice(0, found.index).join('.');
    const allowed = found.allowed.map((k) => (prefix ? `${prefix}.${k}` : k));
    sink.error(where, 'key', unknownKeyMessage('axis path', axis, allowed));
    return undefined;
  }
  return found;
}

function checkValue(pointer: string, value: unknown, where: JsonPath, sink: IssueSink): void {
  for (const p of validateAt(pointer, value)) sink.error([...where, ...p.path], p.at, p.message);
}

/**
 * Reads grid/zip/variants into axes (in expansion order: variants, grid axes, zip groups);
 * model-field paths are those of `method`'s config schema.
 */
export function readSweep(sweep: unknown, sink: IssueSink, method: MethodName): Axis[] {
  if (!isPlainObject(sweep)) return [];
  const axes: Axis[] = [];
  const sweptAt = new Map<string, JsonPath>();
  const claim = (axis: string, where: JsonPath): void => {
    const first = sweptAt.get(axis);
    if (first)
      sink.error(
        where,
        'key',
        `got axis ${JSON.stringify(axis)} a second time, expected each field swept once (already swept at ${sink.where(first)})`,
      );
    else sweptAt.set(axis, where);
  };

  const axisValues = (values: unknown, where: JsonPath, pointer: string | undefined): unknown[] => {
    if (!Array.isArray(values)) return [];
    if (pointer) values.forEach((v, i) => checkValue(pointer, v, [...where, i], sink));
    return values;
  };

  const gridAxes: Axis[] = [];
  if (isPlainObject(sweep.grid)) {
    for (const [axis, values] of Object.entries(sweep.grid)) {
      const where: JsonPath = ['sweep', 'grid', axis];
      const found = lookupAxis(axis, where, sink, method);
      claim(axis, where);
      const list = axisValues(values, where, found?.pointer);
      gridAxes.push({
        names: [axis],
        points: list.map((value, i) => ({
          patches: [{ path: axis.split('.'), value, origin: [...where, i] }],
          labels: { [axis]: value },
        })),
      });
    }
  }

  const zipAxes: Axis[] = [];
  if (Array.isArray(sweep.zip)) {
    sweep.zip.forEach((group, g) => {
      if (!isPlainObject(group)) return;
      const entries = Object.entries(group).filter(([, v]) => Array.isArray(v)) as [
        string,
        unknown[],
      ][];
      if (entries.length === 0) return;
      const [firstAxis, firstValues] = entries[0];
      for (const [axis, values] of Object.entries(group)) {
        const where: JsonPath = ['sweep', 'zip', g, axis];
        const found = lookupAxis(axis, where, sink, method);
        claim(axis, where);
        axisValues(values, where, found?.pointer);
        if (Array.isArray(values) && values.length !== firstValues.length) {
          sink.error(
            where,
            'key',
            `got ${values.length} values, expected ${firstValues.length} like ${JSON.stringify(firstAxis)}: the axes of a zip group vary together`,
          );
        }
      }
      const n = Math.min(...entries.map(([, v]) => v.length));
      zipAxes.push({
        names: entries.map(([a]) => a),
        points: Array.from({ length: n }, (_, i) => ({
          patches: entries.map(([axis, values]) => ({
            path: axis.split('.'),
            value: values[i],
            origin: ['sweep', 'zip', g, axis, i],
          })),
          labels: Object.fromEntries(entries.map(([axis, values]) => [axis, values[i]])),
        })),
      });
    });
  }

  if (Array.isArray(sweep.variants)) {
    const names = new Map<string, JsonPath>();
    const points: AxisPoint[] = [];
    sweep.variants.forEach((variant, v) => {
      if (!isPlainObject(variant)) return;
      const name = variant.name;
      if (typeof name === 'string') {
        const first = names.get(name);
        if (first)
          sink.error(
            ['sweep', 'variants', v, 'name'],
            'value',
            `got duplicate variant name ${JSON.stringify(name)}, expected unique names (first at ${sink.where(first)})`,
          );
        else names.set(name, ['sweep', 'variants', v, 'name']);
      }
      let own: MethodName | undefined;
      if (variant.method !== undefined) {
        if (isMethodName(variant.method)) own = variant.method;
        else
          sink.error(
            ['sweep', 'variants', v, 'method'],
            'value',
            unknownMethodMessage(variant.method),
          );
      }
      if (variant.set === undefined && variant.method === undefined)
        sink.error(
          ['sweep', 'variants', v],
          'key',
          `got variant ${show(name)} without \`set\` or \`method\`, expected what it changes: \`set\` (fields over base) and/or \`method\` (another method)`,
        );
      const patches: Patch[] = [];
      if (isPlainObject(variant.set))
        flattenSet(variant.set, [], ['sweep', 'variants', v, 'set'], patches, sink, own ?? method);
      for (const p of patches) {
        const axis = p.path.join('.');
        const clash = sweptAt.get(axis);
        if (clash)
          sink.error(
            p.origin,
            'key',
            `got ${JSON.stringify(axis)} set by variant ${show(name)} and swept at ${sink.where(clash)}, expected each field to vary in one place`,
          );
      }
      points.push({
        patches,
        labels: { variant: name },
        ...(own && own !== method
          ? { method: own, methodOrigin: ['sweep', 'variants', v, 'method'] }
          : {}),
      });
    });
    if (points.length > 0) axes.push({ names: ['variant'], points });
  }
  return [...axes, ...gridAxes, ...zipAxes];
}

/** A variant's `set`: dotted keys and nested maps down to the leaf fields of the trial config. */
function flattenSet(
  set: Record<string, unknown>,
  prefix: string[],
  where: JsonPath,
  out: Patch[],
  sink: IssueSink,
  method: MethodName,
): void {
  for (const [key, value] of Object.entries(set)) {
    const segs = [...prefix, ...key.split('.')];
    const origin = [...where, key];
    const found = lookupAxis(segs.join('.'), origin, sink, method);
    if (!found) continue;
    if (isPlainObject(value) && isObjectField(found.schema)) {
      flattenSet(value, segs, origin, out, sink, method);
    } else {
      checkValue(found.pointer, value, origin, sink);
      out.push({ path: segs, value, origin });
    }
  }
}
