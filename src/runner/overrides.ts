/**
 * Command-line overrides in the style of Hydra: `key=value` after the spec, e.g.
 * `vcp-exp run spec.yaml heads=4 train.epochs=2 'sweep.grid.alpha=[0.5,0.8]' seeds=3`.
 *
 * - A key that starts with a spec section (`seeds`, `train`, `eval`, `sweep`, `base`, …) is a
 *   path into the spec; any other key is a field of the method config (`heads` = `base.heads`).
 * - The value is YAML (`4`, `true`, `[0.5, 0.8]`, `{mosaic: 0}`, a string); `key=` is "".
 * - Overriding a swept field fixes it: `heads=4` on a spec that sweeps `heads` in its grid
 *   drops that axis. A field swept by a zip group or set by variants is an error (override
 *   the group or the variants instead), as the value would not apply to every trial.
 * - Overrides apply after `extends`, in order (a later one wins), and the result is validated
 *   exactly like a file: every problem is reported at the override that wrote it, as
 *   `override 'heads=0' base.heads got 0, …`. Relative paths in values (dataset roots) are
 *   relative to the working directory.
 */
import { parse } from 'yaml';
import { isPlainObject } from './extends.js';
import type { JsonPath, SpecIssue } from './spec-error.js';
import type { Located, Position } from './yaml-source.js';

/** How an override names itself where a file would name `file:line:col`. */
export const OVERRIDE_PREFIX = 'override ';

export interface Override {
  /** As typed, e.g. "heads=4". */
  text: string;
  /** The spec path it sets (`base.heads` for `heads`). */
  path: JsonPath;
  value: unknown;
  /** A sweep axis it fixes (removed from `sweep.grid`). */
  axis?: string;
}

const positionOf = (text: string): Position => ({
  file: `${OVERRIDE_PREFIX}${JSON.stringify(text).replaceAll('"', "'")}`,
  line: 0,
  col: 0,
});

/** True for a position an override wrote (relative paths there are relative to the cwd). */
export const isOverridePosition = (file: string): boolean => file.startsWith(OVERRIDE_PREFIX);

function issue(text: string, path: JsonPath, message: string): SpecIssue {
  return { ...positionOf(text), path, message, severity: 'error' };
}

/**
 * Parses `key=value` arguments; `sections` are the spec's top-level keys. Malformed ones come
 * back as issues (reported with the spec's other errors).
 */
export function parseOverrides(
  texts: readonly string[],
  sections: readonly string[],
): { overrides: Override[]; issues: SpecIssue[] } {
  const overrides: Override[] = [];
  const issues: SpecIssue[] = [];
  for (const text of texts) {
    const eq = text.indexOf('=');
    const key = eq < 0 ? text : text.slice(0, eq).trim();
    if (eq < 0 || !/^[A-Za-z_][\w-]*(\.[\w-]+)*$/.test(key)) {
      issues.push(
        issue(
          text,
          [],
          eq < 0
            ? 'got no "=", expected key=value (e.g. heads=4, train.epochs=2, \'sweep.grid.alpha=[0.5,0.8]\')'
            : `got key ${JSON.stringify(key)}, expected a dotted path of names (e.g. train.epochs)`,
        ),
      );
      continue;
    }
    const raw = text.slice(eq + 1);
    let value: unknown = '';
    if (raw.trim() !== '') {
      try {
        value = parse(raw, { uniqueKeys: true });
      } catch (error) {
        issues.push(issue(text, [], `value: YAML ${(error as Error).message.split('\n')[0]}`));
        continue;
      }
    }
    const segments = key.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const inSpec = sections.includes(String(segments[0]));
    const path = inSpec ? segments : ['base', ...segments];
    // The sweep axis this value fixes: a model field (bare) or a train./eval. field.
    const axis = !inSpec || key.startsWith('train.') || key.startsWith('eval.') ? key : undefined;
    overrides.push({ text, path, value, ...(axis ? { axis } : {}) });
  }
  return { overrides, issues };
}

/** Where a variant's `set` names `axis` (flat dotted key or nested maps). */
function variantSets(set: unknown, axis: string): boolean {
  if (!isPlainObject(set)) return false;
  if (axis in set) return true;
  const [head, ...rest] = axis.split('.');
  return rest.length > 0 && variantSets(set[head], rest.join('.'));
}

function setAt(root: Record<string, unknown>, path: JsonPath, value: unknown): string | undefined {
  let node: unknown = root;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i];
    const container = node as Record<string | number, unknown>;
    let next = container[seg];
    if (next === undefined || next === null) {
      next = typeof path[i + 1] === 'number' ? [] : {};
      container[seg] = next;
    } else if (typeof next !== 'object') {
      return `cannot set ${path.slice(i + 1).join('.')} inside ${path.slice(0, i + 1).join('.')}, which is ${JSON.stringify(next)}`;
    }
    node = next;
  }
  const last = path.at(-1)!;
  if (Array.isArray(node) && typeof last !== 'number')
    return `${path.slice(0, -1).join('.')} is a list: index it with a number`;
  (node as Record<string | number, unknown>)[last] = value;
  return undefined;
}

export interface Overridden {
  value: unknown;
  issues: SpecIssue[];
  locate(path: JsonPath): Located | undefined;
}

/** Applies overrides to a merged spec (a copy); positions under an overridden path point to it. */
export function applyOverrides(
  merged: { value: unknown; locate(path: JsonPath): Located | undefined },
  overrides: readonly Override[],
): Overridden {
  const issues: SpecIssue[] = [];
  const value = structuredClone(merged.value) as Record<string, unknown>;
  const applied: Override[] = [];
  for (const o of overrides) {
    const sweep = isPlainObject(value.sweep) ? value.sweep : undefined;
    if (o.axis && sweep) {
      const zips = Array.isArray(sweep.zip) ? sweep.zip : [];
      const zip = zips.findIndex((g) => isPlainObject(g) && o.axis! in g);
      if (zip >= 0) {
        const others = Object.keys(zips[zip] as object).filter((k) => k !== o.axis);
        issues.push(
          issue(
            o.text,
            o.path,
            `${o.axis} is swept together with ${others.join(', ') || 'nothing else'} in sweep.zip.${zip}; override the whole group instead (sweep.zip.${zip}.${o.axis}=[…] keeps the others)`,
          ),
        );
        continue;
      }
      const variants = Array.isArray(sweep.variants) ? sweep.variants : [];
      const variant = variants.findIndex((v) => isPlainObject(v) && variantSets(v.set, o.axis!));
      if (variant >= 0) {
        issues.push(
          issue(
            o.text,
            o.path,
            `${o.axis} is set by variant ${JSON.stringify((variants[variant] as { name?: unknown }).name)} (sweep.variants.${variant}), which would replace this value in its trials; override sweep.variants.${variant}.set instead`,
          ),
        );
        continue;
      }
      if (isPlainObject(sweep.grid) && o.axis in sweep.grid) {
        delete sweep.grid[o.axis];
        if (Object.keys(sweep.grid).length === 0) delete sweep.grid;
      }
    }
    const problem = setAt(value, o.path, o.value);
    if (problem) issues.push(issue(o.text, o.path, problem));
    else applied.push(o);
  }
  const startsWith = (path: JsonPath, prefix: JsonPath) =>
    prefix.length <= path.length && prefix.every((s, i) => String(s) === String(path[i]));
  return {
    value,
    issues,
    locate(path) {
      for (let i = applied.length - 1; i >= 0; i--)
        if (startsWith(path, applied[i].path)) {
          const at = positionOf(applied[i].text);
          return { key: at, value: at };
        }
      return merged.locate(path);
    },
  };
}

/** The overrides as one line (recorded with the sweep's parent run). */
export function overridesLine(overrides: readonly string[]): string {
  return overrides.map((o) => (/[\s'"]/.test(o) ? JSON.stringify(o) : o)).join(' ');
}
