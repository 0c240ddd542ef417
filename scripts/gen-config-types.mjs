#!/usr/bin/env node
// Generates the TypeScript type of each method's config from its JSON Schema, so the schema
// is the single source of the fields, their types and defaults:
//   schemas/methods/<method>.schema.json → src/model/methods/<method>/config.generated.ts
// Usage: npm run gen:config-types [-- --check]   (--check: exit 1 when a file is out of date)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMAS = join(ROOT, 'schemas', 'methods');
const check = process.argv.includes('--check');

const pascal = (name) =>
  name
    .split(/[^A-Za-z0-9]+/)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

function typeOf(schema) {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if ('const' in schema) return JSON.stringify(schema.const);
  if (Array.isArray(schema.anyOf)) return schema.anyOf.map(typeOf).join(' | ');
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      if (Array.isArray(schema.prefixItems))
        return `readonly [${schema.prefixItems.map(typeOf).join(', ')}]`;
      return `readonly (${schema.items ? typeOf(schema.items) : 'unknown'})[]`;
    case 'object':
      return 'Readonly<Record<string, unknown>>';
    default:
      throw new Error(`no TypeScript type for schema ${JSON.stringify(schema)}`);
  }
}

function source(method, schema) {
  const type = `${pascal(method)}Config`;
  const lines = [
    `// Generated from schemas/methods/${method}.schema.json by scripts/gen-config-types.mjs.`,
    '// Do not edit: change the schema and run `npm run gen:config-types`.',
    '',
    `/** ${schema.title ?? method}, resolved: every field filled in (defaults from the schema). */`,
    `export interface ${type} {`,
  ];
  for (const [key, field] of Object.entries(schema.properties)) {
    const notes = [field.description];
    if ('default' in field) notes.push(`Default: ${JSON.stringify(field.default)}.`);
    if (field['x-eval-only']) notes.push('Evaluation only.');
    lines.push(`  /** ${notes.join(' ')} */`, `  readonly ${key}: ${typeOf(field)};`);
  }
  lines.push(
    '}',
    '',
    `/** ${schema.title ?? method} as written: every field optional. */`,
    `export type ${type}Input = Partial<${type}>;`,
    '',
  );
  return lines.join('\n');
}

let stale = 0;
for (const file of readdirSync(SCHEMAS).filter((f) => f.endsWith('.schema.json'))) {
  const method = file.replace(/\.schema\.json$/, '');
  const schema = JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8'));
  const target = join(ROOT, 'src', 'model', 'methods', method, 'config.generated.ts');
  const options = { ...(await prettier.resolveConfig(target)), filepath: target };
  const text = await prettier.format(source(method, schema), options);
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (current === text) continue;
  if (check) {
    console.error(`${target} is out of date with ${file}: run npm run gen:config-types`);
    stale++;
  } else {
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  }
}
process.exit(stale ? 1 : 0);
