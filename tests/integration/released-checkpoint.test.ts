/**
 * The authors' checkpoint from the CLI to a report, against a real MLflow server: `vcp-exp
 * import vcp-clip` of a .pth written by the public code's modules, `vcp-exp run` of a spec whose
 * train.checkpoint names it (evaluated, not trained, logged like any trial with the checkpoint
 * as its artifact), `vcp-exp report`, then `vcp-exp predict --run <trial id>` taking that
 * checkpoint back from MLflow.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { loadSpec } from '../../src/runner/spec.js';
import { projectRoot } from '../../src/tracking/server.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

const PUBLIC = join(projectRoot(), 'tests/fixtures/vcp-clip-public');
const SPEC = `name: it-released
method: vcp-clip
base:
  backbone: ${join(PUBLIC, 'tiny-clip')}
  image_size: 24
  layers: [1, 2]
  heads: 8
  sigma: 2
  topk: 50
sweep:
  grid:
    alpha: [0.75, 0.8]
train:
  checkpoint: ./released
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth }
report:
  tables:
    - { name: released, title: Released checkpoint, rows: alpha, metrics: [pixel_auroc, pro, pixel_ap] }
`;

let server: TestServer;
let dir: string;
const exec = promisify(execFile);
const cli = (...args: string[]) =>
  exec(process.execPath, [join(projectRoot(), 'bin/vcp-exp.js'), ...args], {
    cwd: dir,
    env: {
      ...process.env,
      VCP_EXP_STATE_DIR: join(dir, 'state'),
      VCP_EXP_CACHE: join(dir, 'cache'),
      MLFLOW_TRACKING_URI: '',
    },
    maxBuffer: 16 << 20,
  });

before(async () => {
  server = await startTestServer('released');
  dir = mkdtempSync(join(tmpdir(), 'vcp-released-'));
  writeFileSync(join(dir, 'spec.yaml'), SPEC);
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle'],
    size: 48,
    trainGood: 0,
    testGood: 2,
    testDefect: 2,
  });
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('import → run (evaluate the checkpoint) → report → predict --run', async (t) => {
  if (!server.ok) return t.skip(server.reason);
  const url = server.server.url;
  await cli(
    'import',
    'vcp-clip',
    join(PUBLIC, 'public.pth'),
    '--clip',
    join(PUBLIC, 'tiny-clip'),
    '--layers',
    '1,2',
    '--image-size',
    '24',
    '--out',
    'released',
  );
  const run = await cli('run', 'spec.yaml', '--progress', 'plain', '--tracking-uri', url);
  assert.match(run.stdout + run.stderr, /evaluating .*released/);

  const spec = await loadSpec(join(dir, 'spec.yaml'));
  const client = server.client();
  const [experiment] = (await client.searchExperiments({ viewType: 'ACTIVE_ONLY' })).filter(
    (e) => e.name === 'it-released',
  );
  const runs = await client.searchRuns({
    experimentIds: [experiment.experiment_id],
    filter: `tags."vcp.run_kind" = 'trial'`,
  });
  assert.equal(runs.length, 2);
  for (const r of runs) {
    assert.equal(r.info.status, 'FINISHED');
    const tags = Object.fromEntries(r.data.tags.map((x) => [x.key, x.value]));
    assert.equal(tags['vcp.trained'], 'false');
    assert.equal(tags['vcp.checkpoint_from'], join(dir, 'released'));
    assert.ok(r.data.metrics.some((m) => m.key === 'synth.pixel_auroc'));
    assert.ok(!r.data.metrics.some((m) => m.key === 'train.loss'));
  }

  const report = await cli('report', 'spec.yaml', '--tracking-uri', url, '--out', 'report');
  assert.match(report.stdout, /wrote \d+ files/);
  const table = readFileSync(join(dir, 'report', 'released.md'), 'utf8');
  assert.match(table, /0\.8/);

  const trial = spec.trials.find((x) => x.config.model.alpha === 0.8)!;
  const image = join(dir, 'synth', 'bottle', 'test', 'good', '000.png');
  const predicted = await cli(
    'predict',
    '--run',
    trial.id,
    '--tracking-uri',
    url,
    '--out',
    'predicted',
    image,
  );
  assert.match(predicted.stderr, /checkpoint of .*: MLflow run [0-9a-f]{32}/);
  assert.match(predicted.stdout, /000\.png\s+score \d/);
  assert.ok(existsSync(join(dir, 'predicted', '000_overlay.png')));
});
