/**
 * The experiment JSON Schema (schemas/experiment.schema.json) and the methods' config schemas
 * (schemas/methods/<method>.schema.json, for `base` and model-field sweep values), through
 * the one schema module (src/io/json-schema.ts): validation of whole specs, of a method's
 * `base` and of single fields (sweep values), and the field schema behind a dotted axis path.
 */
import { readFileSync } from 'node:fs';
import { SchemaSet, type Schema, type SchemaProblem } from '../io/json-schema.js';
import { METHODS, type MethodName } from '../model/methods/index.js';

export type { SchemaProblem } from '../io/json-schema.js';

export const SCHEMA_URL = new URL('../../schemas/experiment.schema.json', import.meta.url);
export const experimentSchema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as Schema;
const EXPERIMENT_ID = experimentSchema.$id as string;

const schemas = new SchemaSet();
schemas.add(experimentSchema);
for (const def of Object.values(METHODS)) schemas.add(def.schema);

const methodId = (method: MethodName): string => METHODS[method].schema.$id as string;

/** `''` or `/…`: a pointer into the experiment schema; anything else: a full `<$id>#<pointer>`. */
function refOf(pointer: string): string {
  return pointer === '' || pointer.startsWith('/') ? `${EXPERIMENT_ID}#${pointer}` : pointer;
}

/** Validates `value` against the schema at a JSON pointer ('' = the whole spec) or reference. */
export function validateAt(pointer: string, value: unknown): SchemaProblem[] {
  return schemas.validate(refOf(pointer), value);
}

/** Validates a spec's `base` against the method's config schema (paths relative to `base`). */
export function validateBase(method: MethodName, base: unknown): SchemaProblem[] {
  return schemas.validate(`${methodId(method)}#`, base);
}

/** Result of looking up the schema of a dotted trial-config path. */
export type FieldLookup =
  { ok: true; pointer: string; schema: Schema } | { ok: false; index: number; allowed: string[] };

/**
 * The schema of a trial-config field: the method's model fields at the root (`heads`), the
 * sections as `train.<field>` / `eval.<field>`. `pointer` is a reference `validateAt` takes.
 */
export function fieldSchema(path: readonly string[], method: MethodName = 'vcp-clip'): FieldLookup {
  const rootProps: Record<string, string> = {};
  const modelFields = (METHODS[method].schema.properties ?? {}) as Record<string, Schema>;
  for (const k of Object.keys(modelFields)) rootProps[k] = `${methodId(method)}#/properties/${k}`;
  rootProps.train = `${EXPERIMENT_ID}#/$defs/train`;
  rootProps.eval = `${EXPERIMENT_ID}#/$defs/eval`;
  if (path.length === 0 || !(path[0] in rootProps))
    return { ok: false, index: 0, allowed: Object.keys(rootProps) };
  let ref = rootProps[path[0]];
  for (let i = 1; i < path.length; i++) {
    const props = (schemas.schemaAt(ref).properties ?? {}) as Record<string, Schema>;
    if (!(path[i] in props)) return { ok: false, index: i, allowed: Object.keys(props) };
    ref = `${schemas.refPointer(ref)}/properties/${path[i]}`;
  }
  return { ok: true, pointer: ref, schema: schemas.schemaAt(ref) };
}

/** Whether a value at this field is itself a map of fields (so nested partial configs recurse). */
export function isObjectField(schema: Schema): boolean {
  return schema.type === 'object' && typeof schema.properties === 'object';
}
