/**
 * Hydra-style overrides (`key=value` after the spec): applied after `extends`, validated
 * exactly like the file (a spec file writing the same values gives the same trials and ids),
 * every problem reported at the override that wrote it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSpec } from '../../src/runner/spec.js';
import { SpecError } from '../../src/runner/spec-error.js';

const work = mkdtempSync(join(tmpdir(), 'vcp-overrides-'));
after(() => rmSync(work, { recursive: true, force: true }));

const BASE = `name: ov
base: { heads: 8, image_size: 224 }
train: { dataset: { format: mvtec, root: ./data }, epochs: 5 }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
sweep:
  grid:
    heads: [1, 2]
    alpha: [0.5, 0.75]
seeds: 1
`;

function specFile(name: string, text: string): string {
  const file = join(work, name);
  writeFileSync(file, text);
  return file;
}

async function errorsOf(file: string, overrides: string[]): Promise<string[]> {
  try {
    await loadSpec(file, { overrides });
  } catch (error) {
    assert.ok(error instanceof SpecError, String(error));
    assert.equal(error.exitCode, 2);
    return error.message.split('\n');
  }
  assert.fail(`${overrides.join(' ')} was accepted`);
}

test('overrides fix a swept field, replace an axis and the seeds; same trials as the file saying it', async () => {
  const file = specFile('base.yaml', BASE);
  const overrides = ['heads=4', 'train.epochs=2', 'sweep.grid.alpha=[0.5,0.8]', 'seeds=3'];
  const spec = await loadSpec(file, { overrides });
  assert.deepEqual(spec.axes, ['alpha']);
  assert.equal(spec.seeds.length, 3);
  assert.equal(spec.trials.length, 6);
  for (const t of spec.trials) {
    assert.equal((t.config.model as { heads: number }).heads, 4);
    assert.equal(t.config.train.epochs, 2);
  }
  assert.deepEqual(
    [...new Set(spec.trials.map((t) => (t.config.model as { alpha: number }).alpha))],
    [0.5, 0.8],
  );
  assert.deepEqual(spec.overrides, overrides);

  const written = specFile(
    'written.yaml',
    `name: ov
base: { heads: 4, image_size: 224 }
train: { dataset: { format: mvtec, root: ./data }, epochs: 2 }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
sweep:
  grid:
    alpha: [0.5, 0.8]
seeds: 3
`,
  );
  const same = await loadSpec(written);
  assert.deepEqual(
    spec.trials.map((t) => t.id),
    same.trials.map((t) => t.id),
    'an override and the file saying the same give the same trial ids',
  );
  assert.equal(spec.hash, same.hash);
  const plain = await loadSpec(file);
  assert.notEqual(plain.hash, spec.hash);
  assert.deepEqual(plain.overrides, []);
});

test('a later override wins; values are YAML (strings, maps)', async () => {
  const file = specFile('base2.yaml', BASE);
  const spec = await loadSpec(file, {
    overrides: ['train.epochs=3', 'train.epochs=1', 'train.augment={mosaic: 0}', 'seeds=[7]'],
  });
  assert.equal(spec.trials[0].config.train.epochs, 1);
  assert.equal(spec.trials[0].config.train.augment.mosaic, 0);
  assert.deepEqual(spec.seeds, [7]);
});

test('invalid overrides are errors naming the override, like errors in the file', async () => {
  const file = specFile('base3.yaml', BASE);
  const cases: [string, RegExp][] = [
    ['heads=0', /^override 'heads=0' base\.heads got 0, expected an integer in \[1, /m],
    ['train.epochs=two', /^override 'train\.epochs=two' train\.epochs .*integer/m],
    ['train.epoch=2', /^override 'train\.epoch=2' train.*epoch/m],
    ['heads', /^override 'heads' .*expected key=value/m],
    ['..x=1', /^override '\.\.x=1' .*dotted path/m],
    ['alpha=[0.5', /^override 'alpha=\[0\.5' .*YAML/m],
    ['seeds=0', /^override 'seeds=0' seeds /m],
  ];
  for (const [override, expected] of cases) {
    const message = (await errorsOf(file, [override])).join('\n');
    assert.match(message, expected, `${override}:\n${message}`);
  }
});

test('a field swept in a zip group or set by a variant cannot be overridden alone', async () => {
  const file = specFile(
    'zip.yaml',
    `name: zip
train: { dataset: { format: mvtec, root: ./data } }
eval: { datasets: [{ name: d, format: mvtec, root: ./data }] }
sweep:
  variants:
    - { name: baseline, set: { pre_vcp: false } }
    - { name: full, set: {} }
  zip:
    - n_ctx: [1, 2]
      topk: [8, 16]
`,
  );
  assert.match(
    (await errorsOf(file, ['n_ctx=3'])).join('\n'),
    /override 'n_ctx=3' .*swept together with topk in sweep\.zip\.0/,
  );
  assert.match(
    (await errorsOf(file, ['pre_vcp=true'])).join('\n'),
    /override 'pre_vcp=true' .*set by variant "baseline"/,
  );
});
