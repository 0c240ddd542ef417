/**
 * `extends: <path>`: a spec inherits a base spec (path relative to the spec's own file) and
 * overrides it. Maps merge key by key, recursively; lists and scalars replace. Every merged
 * value keeps the position of the file that wrote it. A base must be a YAML map read under
 * the same bounds as the spec itself, and a chain holds at most MAX_EXTENDS_CHAIN files.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { MAX_EXTENDS_CHAIN } from './limits.js';
import type { JsonPath, SpecIssue } from './spec-error.js';
import { loadYamlFile, type Located, type YamlSource } from './yaml-source.js';

export interface MergedSpec {
  /** The merged data without the `extends` keys (undefined if the root file did not parse). */
  value: unknown;
  issues: SpecIssue[];
  /** Files from the root spec down to its furthest base. */
  chain: string[];
  /** Where a path was written, in the most derived file that wrote it. */
  locate(path: JsonPath): Located | undefined;
}

/** How a file is named in messages: relative to the working directory when it is inside it. */
export function displayName(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Base ⊕ override: maps merge recursively, anything else in `override` replaces. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? deepMerge(base[k], v) : v;
  return out;
}

export function loadWithExtends(file: string): MergedSpec {
  const sources: YamlSource[] = [];
  const issues: SpecIssue[] = [];
  const seen: string[] = [];
  let abs = resolve(file);
  for (;;) {
    const source = loadYamlFile(displayName(abs));
    seen.push(abs);
    issues.push(
      ...(source.value === undefined && sources.length > 0
        ? blameExtends(sources.at(-1)!, source.issues)
        : source.issues),
    );
    if (source.value === undefined) break;
    if (sources.length > 0 && !isPlainObject(source.value)) {
      const at = sources.at(-1)!.locate(['extends'])?.value;
      issues.push({
        ...(at ?? { file: source.file, line: 0, col: 0 }),
        path: ['extends'],
        severity: 'error',
        message: `base spec ${source.file} is ${describeValue(source.value)}, expected a YAML map of spec sections (name, base, sweep, train, eval, …)`,
      });
      break;
    }
    sources.push(source);
    const ext = isPlainObject(source.value) ? source.value.extends : undefined;
    if (ext === undefined) break;
    const at = source.locate(['extends'])?.value ?? { file: source.file, line: 0, col: 0 };
    if (typeof ext !== 'string' || ext.length === 0) {
      issues.push({
        ...at,
        path: ['extends'],
        severity: 'error',
        message: `got ${JSON.stringify(ext)}, expected a path to a base spec file, relative to ${source.file}`,
      });
      break;
    }
    const next = resolve(dirname(abs), ext);
    if (seen.length >= MAX_EXTENDS_CHAIN) {
      issues.push({
        ...at,
        path: ['extends'],
        severity: 'error',
        message: `extends chain longer than ${MAX_EXTENDS_CHAIN} files (${seen.map(displayName).join(' → ')} → …); a spec needs one or two bases`,
      });
      break;
    }
    if (seen.includes(next)) {
      const names = [...seen, next].map(displayName).join(' → ');
      issues.push({
        ...at,
        path: ['extends'],
        severity: 'error',
        message: `extends cycle: ${names}`,
      });
      break;
    }
    abs = next;
  }
  let value: unknown = undefined;
  for (const s of [...sources].reverse()) {
    const own = isPlainObject(s.value)
      ? Object.fromEntries(Object.entries(s.value).filter(([k]) => k !== 'extends'))
      : s.value;
    value = value === undefined ? own : deepMerge(value, own);
  }
  if (sources.length === 0) value = undefined;
  return {
    value,
    issues,
    chain: seen.map(displayName),
    locate(path) {
      for (const s of sources) {
        const found = s.locate(path);
        if (found) return found;
      }
      return undefined;
    },
  };
}

/** "a list", "a string", … for messages about a value of the wrong kind. */
export function describeValue(value: unknown): string {
  if (value === null) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${/^[aeiou]/.test(typeof value) ? 'an' : 'a'} ${typeof value}`;
}

/** A base file that cannot be read is reported at the `extends` line that names it. */
function blameExtends(child: YamlSource, baseIssues: SpecIssue[]): SpecIssue[] {
  const at = child.locate(['extends'])?.value;
  return baseIssues.map((i) =>
    i.line === 0 && at
      ? {
          ...at,
          path: ['extends'],
          severity: 'error' as const,
          message: `${i.message.replace('cannot read spec', 'cannot read base spec')}: ${i.file}`,
        }
      : i,
  );
}
