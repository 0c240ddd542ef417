/**
 * JSON Schema (2020-12, through ajv) with errors in words: every failed check becomes one
 * "got X, expected Y" problem at a JSON path. Specs (src/runner) and method configs
 * (src/model/methods) are validated through this one module, so both say the same thing
 * about the same mistake.
 *
 * Two non-standard annotations are understood: `x-expected` replaces the generated description
 * of what a schema accepts (for patterns that would read badly as a regular expression), and
 * `x-eval-only` marks a method config field that changes evaluation only.
 */
import { createRequire } from 'node:module';
import type { Ajv2020 as Ajv2020Class } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { show, suggestValue, unknownKeyMessage } from './wording.js';

export type Schema = Record<string, unknown>;
export type JsonPath = readonly (string | number)[];

// ajv ships CommonJS with `exports.default`; require gives the class without ESM interop guesswork.
const Ajv2020 = (
  createRequire(import.meta.url)('ajv/dist/2020') as { default: typeof Ajv2020Class }
).default;

/** A problem at `path` (relative to the validated value); `at` says whether to point at the key or the value. */
export interface SchemaProblem {
  path: JsonPath;
  at: 'key' | 'value';
  message: string;
}

/**
 * Schemas registered by `$id`, validated by reference (`<$id>#<JSON pointer>`).
 * With `useDefaults`, validation fills in every `default` of the schema (on the value given).
 */
export class SchemaSet {
  private readonly ajv: Ajv2020Class;
  private readonly roots = new Map<string, Schema>();
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(options: { useDefaults?: boolean } = {}) {
    this.ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      verbose: true,
      useDefaults: options.useDefaults ?? false,
    });
    this.ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
    this.ajv.addKeyword({ keyword: 'x-eval-only', schemaType: 'boolean' });
  }

  /** Registers a schema under its `$id` (once; later calls with the same id are ignored). */
  add(schema: Schema): string {
    const id = schema.$id;
    if (typeof id !== 'string') throw new Error('a schema needs an $id');
    if (!this.roots.has(id)) {
      this.ajv.addSchema(schema);
      this.roots.set(id, schema);
    }
    return id;
  }

  has(id: string): boolean {
    return this.roots.has(id);
  }

  /** Validates `value` against the schema at `<id>#<pointer>`. */
  validate(ref: string, value: unknown): SchemaProblem[] {
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.getSchema(ref);
      if (!validate) throw new Error(`no schema at ${ref}`);
      this.validators.set(ref, validate);
    }
    if (validate(value)) return [];
    return toProblems(validate.errors ?? [], (s) => this.resolveRef(s, rootOf(ref)));
  }

  /** The sub-schema at `<id>#<pointer>`, with `$ref`s at its top resolved. */
  schemaAt(ref: string): Schema {
    const [id, pointer = ''] = ref.split('#');
    return this.resolveRef(pointerGet(this.root(id), pointer) as Schema, id);
  }

  /** A schema with its top-level local `$ref` chain (`#/…` inside root `id`) resolved. */
  resolveRef(schema: Schema, id: string): Schema {
    let s = schema;
    for (let guard = 0; typeof s.$ref === 'string' && guard < 20; guard++) {
      const target = pointerGet(this.root(id), (s.$ref as string).replace(/^#/, ''));
      const { $ref: _ref, ...rest } = s;
      s = { ...(target as Schema), ...rest };
    }
    return s;
  }

  /** The pointer a `$ref`-only schema stands for (so children can be appended to it). */
  refPointer(ref: string): string {
    const [id, start = ''] = ref.split('#');
    let pointer = start;
    for (let guard = 0; guard < 20; guard++) {
      const s = pointerGet(this.root(id), pointer) as Schema;
      if (typeof s?.$ref !== 'string') break;
      pointer = (s.$ref as string).replace(/^#/, '');
    }
    return `${id}#${pointer}`;
  }

  /** "an integer ≥ 1", "one of gelu, quick_gelu": what the schema at `ref` accepts. */
  describe(ref: string): string {
    return describe(this.schemaAt(ref), (s) => this.resolveRef(s, rootOf(ref)));
  }

  private root(id: string): Schema {
    const root = this.roots.get(id);
    if (!root) throw new Error(`no schema registered as ${id}`);
    return root;
  }
}

function rootOf(ref: string): string {
  return ref.split('#')[0];
}

export function pointerGet(root: unknown, pointer: string): unknown {
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

type Resolve = (schema: Schema) => Schema;

/** Human description of what a schema accepts: "an integer ≥ 1", "one of gelu, quick_gelu". */
export function describe(input: Schema, resolve: Resolve = (s) => s): string {
  const s = resolve(input);
  if (typeof s['x-expected'] === 'string') return s['x-expected'];
  if (Array.isArray(s.anyOf))
    return (s.anyOf as Schema[]).map((b) => describe(b, resolve)).join(', or ');
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
        return `a list of ${(s.prefixItems as Schema[]).length} items (${(s.prefixItems as Schema[]).map((b) => describe(b, resolve)).join(', ')})`;
      const of =
        s.items && typeof s.items === 'object'
          ? ` of ${plural(describe(s.items as Schema, resolve))}`
          : '';
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
export function toProblems(
  errors: readonly ErrorObject[],
  resolve: Resolve = (s) => s,
): SchemaProblem[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const badNames = errors.filter((e) => e.keyword === 'propertyNames');
  const problems: SchemaProblem[] = [];
  const expected = (schema: Schema) => describe(schema, resolve);
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
          message: `got ${show(e.data)} (${jsonType(e.data)}), expected ${expected(parent)}`,
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
        const field = resolve(((parent.properties ?? {}) as Record<string, Schema>)[key] ?? {});
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
          message: `got key ${JSON.stringify(key)}, expected ${expected((parent.propertyNames ?? {}) as Schema)}`,
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
          message: `got ${show(e.data)} (${Array.isArray(e.data) ? e.data.length : 0} items), expected ${expected(parent)}`,
        });
        break;
      case 'uniqueItems': {
        const { i, j } = e.params as { i: number; j: number };
        problems.push({
          path,
          at: 'value',
          message: `got ${show(e.data)} (items ${j} and ${i} are equal), expected ${expected(parent)}`,
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
          message: `got ${show(e.data)}${e.keyword === 'type' ? ` (${jsonType(e.data)})` : ''}, expected ${expected(parent)}`,
        });
    }
  }
  return problems;
}

/**
 * Every `default` of an object schema's properties, as validation with defaults would fill
 * them into `{}` (the defaults of a method config, for example).
 */
export function schemaDefaults(set: SchemaSet, id: string): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  set.validate(`${id}#`, value);
  return value;
}
