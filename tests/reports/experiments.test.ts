/**
 * Every spec in experiments/ loads (missing dataset roots and checkpoints are warnings only), and every paper
 * reference key names a row the report will draw, so no paper value is silently dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { groupLabel, groupTrials, varyingAxes } from '../../src/reports/aggregate.js';
import { KEY_SEPARATOR } from '../../src/reports/labels.js';
import { datasetNames } from '../../src/reports/report.js';
import { buildTable } from '../../src/reports/table.js';
import { loadSpec } from '../../src/runner/spec.js';

const DIR = 'experiments';
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('experiments/ holds the quickstart and a spec per paper result', () => {
  for (const f of [
    'quickstart.yaml',
    'main-visa-to-others.yaml',
    'main-mvtec-to-visa.yaml',
    'ablation-components.yaml',
    'ablation-layers.yaml',
    'ablation-prompt-templates.yaml',
    'ablation-resolution.yaml',
    'ablation-backbone.yaml',
    'ablation-heads.yaml',
    'ablation-n-ctx.yaml',
    'ablation-deep-prompt-len.yaml',
    'ablation-alpha.yaml',
    'ablation-dtp-position.yaml',
    'ablation-test-prompts-mvtec.yaml',
    'ablation-test-prompts-visa.yaml',
    'image-level-mvtec.yaml',
    'image-level-visa.yaml',
  ]) {
    assert.ok(files.includes(f), `experiments/${f} is missing`);
  }
});

for (const file of files) {
  test(`experiments/${file} loads and its paper values name rows of its tables`, async () => {
    const spec = await loadSpec(join(DIR, file));
    for (const w of spec.warnings)
      assert.match(w, /(root|checkpoint) .* does not exist (here|yet)/, `unexpected warning: ${w}`);
    assert.ok(spec.report.tables.length > 0, 'no report table');
    const groups = groupTrials(spec, new Map());
    const datasets = datasetNames(spec);
    for (const table of spec.report.tables) {
      const model = buildTable({ table, axes: spec.axes, groups, datasets });
      const rows = new Set(model.rows.map((r) => r.keys.join(KEY_SEPARATOR)));
      for (const key of Object.keys(table.reference?.values ?? {}))
        assert.ok(
          rows.has(key),
          `${table.name}: reference row "${key}" matches no row (${[...rows].join('; ')})`,
        );
      const productsRow = table.reference?.products_row;
      if (productsRow)
        assert.ok(
          groups.some((g) => groupLabel(g, varyingAxes(spec.axes, groups)) === productsRow),
          `${table.name}: products_row "${productsRow}"`,
        );
    }
  });
}
