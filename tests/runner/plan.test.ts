import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { planCache, trialEntryBytes } from '../../src/runner/cache-plan.js';
import { planSpec } from '../../src/runner/plan.js';
import { loadSpec } from '../../src/runner/spec.js';

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['bin/vcp-exp.js', ...args], { encoding: 'utf8' });

test('vcp-exp plan prints the trial table and trainings vs evaluations', () => {
  const r = cli('plan', 'experiments/quickstart.yaml');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(
    lines.find((l) => l.startsWith('#'))!,
    /^#\s+trial\s+heads\s+alpha\s+seed\s+training\s+done$/,
  );
  assert.equal(lines.filter((l) => /^\d+\s+[0-9a-f]{12}\s/.test(l)).length, 12);
  assert.match(r.stdout, /12 trials: 6 trainings, 12 evaluations/);
  // α is post-forward: each training's two α values are one evaluation group.
  assert.match(r.stdout, /evaluation groups: 12 evaluations in 6 trial processes/);
  assert.match(r.stdout, /^feature cache: .*budget [\d.]+ GB/m);
});

test('vcp-exp plan --feature-cache-gb: the budget it plans with, or a clear error', () => {
  const r = cli('plan', 'experiments/quickstart.yaml', '--feature-cache-gb', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /budget 3\.0 GB \(--feature-cache-gb\)/);
  const bad = cli('plan', 'experiments/quickstart.yaml', '--feature-cache-gb', 'lots');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--feature-cache-gb: got lots, expected a number of GB ≥ 0/);
});

test('planCache: the entries an α × PRO sweep reads at the paper scale, and the hit rate the pins promise', async () => {
  // ViT-L-14-336 at 518 px, 4 layers: 4 × 1369 × 1024 float32 per image (+ the global vector).
  const spec = await loadSpec('tests/fixtures/specs/ok/alpha-only.yaml');
  const entry = trialEntryBytes(spec.trials[0], 'float32')!;
  assert.ok(Math.abs(entry - 4 * 1369 * 1024 * 4) < 8 * 1024, `${entry}`);
  assert.ok(Math.abs(trialEntryBytes(spec.trials[0], 'float16')! - entry / 2) < 8 * 1024);
  const images = 100;
  const plan = (bytes: number) =>
    planCache(spec, spec.trials, { bytes, source: 'test' }, () => images);
  // α × 2 PRO variants: 2 evaluation groups (PRO is not post-forward), one feature key.
  const fits = plan(1e12);
  assert.equal(fits.entries, images);
  assert.equal(fits.reads, 2 * images);
  assert.equal(fits.neededBytes, images * entry);
  assert.equal(fits.hitRate, 0.5, 'the second group hits everything');
  // A quarter of the entries fit: those stay, so the second pass hits a quarter of its reads.
  assert.equal(plan(images * entry * 0.25).hitRate, 0.125);
  assert.equal(plan(0).hitRate, 0);
  const unknown = planCache(spec, spec.trials, { bytes: 1e9, source: 'test' }, () => undefined);
  assert.equal(unknown.hitRate, undefined);
});

test('vcp-exp plan exits 2 and lists every error of a broken spec', () => {
  const file = 'tests/fixtures/specs/broken/many-errors.yaml';
  const r = cli('plan', file);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid experiment spec: 5 errors/);
  assert.ok(r.stderr.includes(`${file}:11:3 base.colour unknown key "colour"`));
});

test('planSpec: finished trials come from the lookup; their trainings are not counted again', async () => {
  const spec = await loadSpec('tests/fixtures/specs/ok/alpha-only.yaml');
  const done = new Set(spec.trials.slice(0, 3).map((t) => t.id));
  const plan = await planSpec(spec, async (ids) => new Set(ids.filter((id) => done.has(id))));
  assert.equal(plan.finished.size, 3);
  assert.equal(plan.evaluationsToRun, 5);
  assert.equal(plan.trainings, 1);
  assert.equal(plan.trainingsToRun, 1);
  const all = await planSpec(spec, async (ids) => new Set(ids));
  assert.equal(all.trainingsToRun, 0);
  assert.equal(all.evaluationsToRun, 0);
});

test('the quickstart spec validates against the JSON Schema with ajv', async () => {
  const { createRequire } = await import('node:module');
  const Ajv = (
    createRequire(import.meta.url)('ajv/dist/2020') as {
      default: new (o: object) => { compile(s: object): (d: unknown) => boolean };
    }
  ).default;
  const { parse } = await import('yaml');
  const validate = new Ajv({ strict: true }).compile(
    JSON.parse(readFileSync('schemas/experiment.schema.json', 'utf8')),
  );
  assert.equal(validate(parse(readFileSync('experiments/quickstart.yaml', 'utf8'))), true);
  assert.equal(
    validate({
      name: 'x',
      train: { dataset: { format: 'mvtec', root: 'a' } },
      eval: { datasets: [] },
    }),
    false,
  );
});

test('every schema object forbids unknown keys and every field has a description', () => {
  const schema = JSON.parse(readFileSync('schemas/experiment.schema.json', 'utf8')) as Record<
    string,
    unknown
  >;
  const problems: string[] = [];
  const walk = (node: unknown, at: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
    if (typeof node !== 'object' || node === null) return;
    const s = node as Record<string, unknown>;
    if (s.properties) {
      if (s.additionalProperties !== false)
        problems.push(`${at}: additionalProperties is not false`);
      for (const [k, v] of Object.entries(
        s.properties as Record<string, Record<string, unknown>>,
      )) {
        if (typeof v.description !== 'string' && typeof v.$ref !== 'string')
          problems.push(`${at}/properties/${k}: no description`);
      }
    }
    for (const [k, v] of Object.entries(s))
      if (k !== 'enum' && k !== 'const') walk(v, `${at}/${k}`);
  };
  walk(schema, '#');
  assert.deepEqual(problems, []);
});
