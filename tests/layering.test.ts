/**
 * The floors of src/ are enforced by eslint (eslint.config.js, `no-restricted-imports` per
 * folder). These cases lint imports that point up or sideways and expect the rule to fire,
 * and imports that point down and expect silence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const eslint = new ESLint();

async function floorErrors(filePath: string, specifier: string): Promise<string[]> {
  const code = `import * as m from '${specifier}';\nexport const used = m;\n`;
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

test('an import up the floors fails lint, naming what the folder may import', async () => {
  const cases: Array<[string, string]> = [
    ['src/io/x.ts', '../model/tf.js'],
    ['src/model/clip/x.ts', '../../runner/spec.js'],
    ['src/model/x.ts', '../commands/train.js'],
    ['src/datasets/x.ts', '../model/features.js'],
    ['src/eval/x.ts', '../datasets/open.js'],
    ['src/runner/executors/x.ts', '../../reports/report.js'],
    ['src/tracking/x.ts', '../runner/sweep.js'],
  ];
  for (const [file, specifier] of cases) {
    const errors = await floorErrors(file, specifier);
    assert.equal(errors.length, 1, `${file} importing ${specifier} should fail`);
    assert.match(errors[0], /may import only .* imports point down the floors/);
  }
  const [ioError] = await floorErrors('src/io/x.ts', '../model/tf.js');
  assert.match(ioError, /src\/io may import only src\/errors and itself/);
});

test('imports down the floors and within a folder pass', async () => {
  const cases: Array<[string, string]> = [
    ['src/model/clip/x.ts', '../../io/safetensors.js'],
    ['src/model/x.ts', '../datasets/open.js'],
    ['src/model/methods/vcp-clip/x.ts', '../../clip/config.js'],
    ['src/runner/x.ts', '../model/load.js'],
    ['src/reports/x.ts', '../runner/spec.js'],
    ['src/commands/x.ts', '../reports/report.js'],
    ['src/io/x.ts', '../errors.js'],
  ];
  for (const [file, specifier] of cases) {
    assert.deepEqual(await floorErrors(file, specifier), [], `${file} importing ${specifier}`);
  }
});
