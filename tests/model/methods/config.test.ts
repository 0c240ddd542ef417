/**
 * A method's JSON Schema is the single source of its config's fields, types and defaults:
 * defaults and eval-only fields are read from it, the TypeScript type is generated from it
 * (and must be current), and one ConfigError lists every problem of a config.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  applyPostForward,
  ConfigError,
  evalOnlyFields,
  methodDefaults,
  postForwardFields,
  resolveMethodConfig,
  type MethodDefinition,
} from '../../../src/model/methods/config.js';
import { METHOD_NAMES, METHODS, methodDefinition } from '../../../src/model/methods/index.js';

type Schema = Record<string, unknown>;

test('every registered method has schemas/methods/<name>.schema.json, and every schema a method', () => {
  const files = readdirSync('schemas/methods').filter((f) => f.endsWith('.schema.json'));
  assert.deepEqual(
    files.map((f) => f.replace('.schema.json', '')).sort(),
    [...METHOD_NAMES].sort(),
  );
});

for (const name of METHOD_NAMES) {
  const def = METHODS[name] as unknown as MethodDefinition;
  const schema = JSON.parse(readFileSync(`schemas/methods/${name}.schema.json`, 'utf8')) as Schema;
  const properties = schema.properties as Record<string, Schema>;

  test(`${name}: every field has a description and a default, unknown keys are refused`, () => {
    assert.equal(schema.additionalProperties, false);
    for (const [key, field] of Object.entries(properties)) {
      assert.equal(typeof field.description, 'string', `${key}: description`);
      assert.ok('default' in field, `${key}: default`);
    }
  });

  test(`${name}: the defaults are the schema's, and they pass the schema and the method's checks`, () => {
    const defaults = methodDefaults(def);
    assert.deepEqual(
      defaults,
      Object.fromEntries(Object.entries(properties).map(([k, f]) => [k, f.default])),
    );
    assert.ok(Object.isFrozen(defaults));
    assert.deepEqual(resolveMethodConfig(def, {}), defaults);
  });

  test(`${name}: every post-forward field is also evaluation-only`, () => {
    const evalOnly = evalOnlyFields(def);
    for (const field of postForwardFields(def))
      assert.ok(evalOnly.includes(field), `${field} is x-post-forward but not x-eval-only`);
  });
}

test('vcp-clip: α, σ, the image-score rule and top-k are post-forward; a variant in anything else is refused', () => {
  const def = methodDefinition('vcp-clip');
  assert.deepEqual(postForwardFields(def), ['alpha', 'sigma', 'image_score', 'topk']);
  const base = methodDefaults(def);
  const variant = applyPostForward(def, base, { alpha: 0.5, topk: 10 });
  assert.deepEqual(variant, { ...base, alpha: 0.5, topk: 10 });
  assert.ok(Object.isFrozen(variant));
  assert.throws(
    () => applyPostForward(def, base, { heads: 4, alpha: 0.5 }),
    (e: ConfigError) =>
      e instanceof ConfigError &&
      e.field === 'heads' &&
      /not a post-forward field of vcp-clip \(those are: alpha, sigma, image_score, topk\)/.test(
        e.message,
      ),
  );
  assert.throws(
    () => applyPostForward(def, base, { alpha: 2 }),
    (e: ConfigError) => e instanceof ConfigError && e.field === 'alpha',
  );
});

test('vip2-clip: only the smoothing is evaluation-only (top-K and τ shape its training loss)', () => {
  assert.deepEqual(evalOnlyFields(methodDefinition('vip2-clip')), ['sigma']);
});

test('vcp-clip: the evaluation-only fields are the ones the schema marks', () => {
  assert.deepEqual(evalOnlyFields(methodDefinition('vcp-clip')), [
    'alpha',
    'sigma',
    'image_score',
    'topk',
  ]);
});

test('one ConfigError lists every problem, schema and cross-field alike', () => {
  const def = methodDefinition('vcp-clip');
  assert.throws(
    () => resolveMethodConfig(def, { n_ctx: 0, dtp: 'yes', colour: 1 }, { source: 'x.json' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.issues.length, 3);
      assert.equal(error.field, 'colour');
      assert.match(error.message, /^x\.json: /);
      assert.match(error.message, /colour: unknown key "colour"/);
      assert.match(error.message, /dtp: got "yes" \(string\), expected true or false/);
      return true;
    },
  );
  assert.throws(
    () => resolveMethodConfig(def, { heads: 7, image_size: 500 }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(
        error.issues.map((i) => i.path.join('.')),
        ['heads', 'image_size'],
      );
      return true;
    },
  );
});

test('the generated config types are current with the schemas', () => {
  const r = spawnSync(process.execPath, ['scripts/gen-config-types.mjs', '--check'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
});
