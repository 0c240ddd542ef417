/**
 * The experiment JSON Schema (schemas/experiment.schema.json) through ajv's 2020-12 build:
 * validation of whole specs and of single fields (sweep values), ajv errors turned into
 * "got X, expected Y" issues, and the field schema behind a dotted axis path.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv2020 as Ajv2020Class } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { show, suggest, unknownKeyMessage, type JsonPath } from './spec-error.js';

type Schema = Record<string, unknown>;
// ajv ships CommonJS with `exports.default`; require gives the class without ESM interop guesswork.
const Ajv2020 = (
  createRequire(import.meta.url)('ajv/dist/2020') as { default: typeof Ajv2020Class }
).default;

export const SCHEMA_URL = new URL('../../schemas/experiment.schema.json', import.meta.url);
export const experimentSchema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as Schema;
const SCHEMA_ID = experimentSchema.$id as string;

const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
ajv.addSchema(experimentSchema);
const validators = new Map<string, ValidateFunction>();

function validatorAt(pointer: string): ValidateFunction {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.getSchema(`${SCHEMA_ID}#${pointer}`);
    if (!v) throw new Error(`no schema at ${pointer}`);
    validators.set(pointer, v);
  }
  return v;
}

/** A problem at `path` (relative to the validated value); `at` says whether to point at the key or the value. */
export interface SchemaProblem {
  path: JsonPath;
  at: 'key' | 'value';
  message: string;
}

/** Validates `value` against the schema at a JSON pointer ('' = the whole spec). */
export function validateAt(pointer: string, value: unknown): SchemaProblem[] {
  const validate = validatorAt(pointer);
  return validate(value) ? [] : toProblems(validate.errors ?? []);
}

export function resolveRef(schema: Schema): Schema {
  let s = schema;
  for (let guard = 0; typeof s.$ref === 'string' && guard < 20; guard++) {
    const target = pointerGet(experimentSchema, (s.$ref as string).replace(/^#/, ''));
    const { $ref: _ref, ...rest } = s;
    s = { ...(target as Schema), ...rest };
  }
  return s;
}

function pointerGet(root: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], root);
}

function parsePointer(instancePath: string): JsonPath {
  if (!instancePath) return [];
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^(0|[1-9][0-9]*)$/.test(p) ? Number(p) : p));
}

/** Human description of what a schema accepts: "an integer ≥ 1", "one of gelu, quick_gelu". */
export function describe(input: Schema): string {
  const s = resolveRef(input);
  if (Array.isArray(s.anyOf)) return (s.anyOf as Schema[]).map(describe).join(', or ');
  if (Array.isArray(s.enum))
    return `one of ${(s.enum as unknown[]).map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`;
  if ('const' in s) return JSON.stringify(s.const);
  const range = (): string => {
    const lo = s.minimum ?? s.exclusiveMinimum;
    const hi = s.maximum ?? s.exclusiveMaximum;
    if (lo !== undefined && hi !== undefined)
      return ` in ${s.minimum !== undefined ? '[' : '('}${lo}, ${hi}${s.maximum !== undefined ? ']' : ')'}`;
    if (lo !== undefined) return s.minimum !== undefined ? ` ≥ ${lo}` : ` > ${lo}`;
    if (hi !== undefined) return s.maximum !== undefined ? ` ≤ ${hi}` : ` < ${hi}`;
    return '';
  };
  switch (s.type) {
    case 'integer':
      return `an integer${range()}`;
    case 'number':
      return `a number${range()}`;
    case 'boolean':
      return 'true or false';
    case 'string':
      if (typeof s.pattern === 'string') return `a string matching /${s.pattern}/`;
      return s.minLength ? 'a non-empty string' : 'a string';
    case 'array': {
      if (Array.isArray(s.prefixItems))
        return `a list of ${(s.prefixItems as Schema[]).length} items (${(s.prefixItems as Schema[]).map(describe).join(', ')})`;
      const of =
        s.items && typeof s.items === 'object' ? ` of ${plural(describe(s.items as Schema))}` : '';
      const lead = s.minItems ? 'a non-empty list' : 'a list';
      return `${lead}${s.uniqueItems ? ' of distinct items' : ''}${of}`;
    }
    case 'object':
      return 'a map';
    default:
      return 'a value';
  }
}

function plural(description: string): string {
  return description.replace(/^an? /, '').replace(/^(integer|number|string|list|map)/, '$1s');
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return typeof value;
}

/** One problem per mistake: anyOf branches are collapsed, propertyNames point at the key. */
export function toProblems(errors: readonly ErrorObject[]): SchemaProblem[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const badNames = errors.filter((e) => e.keyword === 'propertyNames');
  const problems: SchemaProblem[] = [];
  for (const e of errors) {
    const path = parsePointer(e.instancePath);
    const parent = (e.parentSchema ?? {}) as Schema;
    const owner = anyOfs.find(
      (a) =>
        e !== a &&
        e.schemaPath.startsWith(`${a.schemaPath}/`) &&
        e.instancePath.startsWith(a.instancePath),
    );
    if (owner) {
      // Inside an anyOf: keep the error only if it is deeper than the anyOf (the branch whose type matched).
      if (e.instancePath === owner.instancePath) continue;
    }
    if (e.keyword === 'anyOf') {
      const deeper = errors.some(
        (c) =>
          c !== e &&
          c.schemaPath.startsWith(`${e.schemaPath}/`) &&
          c.instancePath.length > e.instancePath.length,
      );
      if (!deeper)
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)} (${jsonType(e.data)}), expected ${describe(parent)}`,
        });
      continue;
    }
    if (
      badNames.some(
        (b) =>
          b !== e &&
          b.instancePath === e.instancePath &&
          e.data === (b.params as { propertyName: string }).propertyName,
      )
    )
      continue;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const allowed = Object.keys((parent.properties ?? {}) as Schema);
        problems.push({
          path: [...path, key],
          at: 'key',
          message: unknownKeyMessage('key', key, allowed),
        });
        break;
      }
      case 'required': {
        const key = (e.params as { missingProperty: string }).missingProperty;
        const field = resolveRef(((parent.properties ?? {}) as Record<string, Schema>)[key] ?? {});
        const what =
          typeof field.description === 'string' ? ` (${field.description.replace(/\.$/, '')})` : '';
        problems.push({
          path,
          at: path.length === 0 ? 'value' : 'key',
          message: `missing required key ${JSON.stringify(key)}${what}`,
        });
        break;
      }
      case 'propertyNames': {
        const key = (e.params as { propertyName: string }).propertyName;
        problems.push({
          path: [...path, key],
          at: 'key',
          message: `got key ${JSON.stringify(key)}, expected ${describe((parent.propertyNames ?? {}) as Schema)}`,
        });
        break;
      }
      case 'enum': {
        const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
        const guess = typeof e.data === 'string' ? suggestValue(e.data, allowed) : '';
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)}, expected one of ${allowed.join(', ')}${guess}`,
        });
        break;
      }
      case 'items':
      case 'minItems':
      case 'maxItems':
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)} (${Array.isArray(e.data) ? e.data.length : 0} items), expected ${describe(parent)}`,
        });
        break;
      case 'uniqueItems': {
        const { i, j } = e.params as { i: number; j: number };
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)} (items ${j} and ${i} are equal), expected ${describe(parent)}`,
        });
        break;
      }
      case 'minProperties':
        problems.push({
          path,
          at: 'value',
          message: 'got an empty map, expected at least one entry',
        });
        break;
      default:
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)}${e.keyword === 'type' ? ` (${jsonType(e.data)})` : ''}, expected ${describe(parent)}`,
        });
    }
  }
  return problems;
}

function suggestValue(value: string, allowed: string[]): string {
  const lower = value.toLowerCase();
  const close = allowed.find((a) => a.toLowerCase() === lower) ?? suggest(value, allowed);
  return close ? `; did you mean ${JSON.stringify(close)}?` : '';
}

/** Result of looking up the schema of a dotted trial-config path. */
export type FieldLookup =
  { ok: true; pointer: string; schema: Schema } | { ok: false; index: number; allowed: string[] };

/**
 * The schema of a trial-config field: model fields at the root (`heads`), the sections as
 * `train.<field>` / `eval.<field>`.
 */
export function fieldSchema(path: readonly string[], modelDef = 'vcpClipConfig'): FieldLookup {
  const rootProps: Record<string, string> = {};
  for (const k of Object.keys(defProperties(modelDef)))
    rootProps[k] = `/$defs/${modelDef}/properties/${k}`;
  rootProps.train = '/$defs/train';
  rootProps.eval = '/$defs/eval';
  if (path.length === 0 || !(path[0] in rootProps))
    return { ok: false, index: 0, allowed: Object.keys(rootProps) };
  let pointer = rootProps[path[0]];
  for (let i = 1; i < path.length; i++) {
    const s = resolveRef(pointerGet(experimentSchema, pointer) as Schema);
    const props = (s.properties ?? {}) as Record<string, Schema>;
    if (!(path[i] in props)) return { ok: false, index: i, allowed: Object.keys(props) };
    pointer = `${refPointer(pointer)}/properties/${path[i]}`;
  }
  return { ok: true, pointer, schema: resolveRef(pointerGet(experimentSchema, pointer) as Schema) };
}

/** A pointer whose target is only a $ref is replaced by the ref's target, so children can be appended. */
function refPointer(pointer: string): string {
  let p = pointer;
  for (let guard = 0; guard < 20; guard++) {
    const s = pointerGet(experimentSchema, p) as Schema;
    if (typeof s?.$ref !== 'string') return p;
    p = (s.$ref as string).replace(/^#/, '');
  }
  return p;
}

export function defProperties(def: string): Record<string, Schema> {
  return ((pointerGet(experimentSchema, `/$defs/${def}`) as Schema).properties ?? {}) as Record<
    string,
    Schema
  >;
}

/** Whether a value at this field is itself a map of fields (so nested partial configs recurse). */
export function isObjectField(schema: Schema): boolean {
  const s = resolveRef(schema);
  return s.type === 'object' && typeof s.properties === 'object';
}
