/**
 * The researcher's loop against a real MLflow server, through the CLI: `plan` estimates a
 * tiny sweep from a calibration on this machine (no earlier runs; how close `run` comes is
 * reported, not asserted); after the run, `plan` estimates the same work again from the run's
 * own MLflow records, within 2× of the run's wall time (asserted: same run, same load);
 * `rerun --seeds 2` adds a seed per sweep point (the spec still says `seeds: 1`), and
 * `report` keeps every FINISHED seed: n = 2 in its tables and a note naming the added seed.
 * A later `plan` with more seeds takes its per-image costs from those runs in MLflow. On the
 * way, what the MLflow UI shows of the runs: experiment kind and description, source tags,
 * dataset inputs, and each trial's logs/trial.log with its own progress.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateSynthDataset } from '../../src/datasets/synth.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import { projectRoot } from '../../src/tracking/server.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';

const SPEC = `name: it-rerun
description: rerun then report
method: vcp-clip
base:
  backbone: ${join(projectRoot(), 'assets/clip/tiny-clip')}
  activation: quick_gelu
  image_size: 32
  layers: [1, 2, 3]
  n_ctx: 2
  deep_prompt_len: 1
  pre_vcp: false
  topk: 16
  heads: 1
sweep:
  grid:
    alpha: [0.5, 0.75]
seeds: 1
train:
  dataset: { format: mvtec, root: ./synth, products: [carpet] }
  epochs: 1
  batch_size: 4
  augment: { mosaic: 0 }
eval:
  datasets:
    - { name: synth, format: mvtec, root: ./synth, products: [bottle] }
  samples_per_product: 1
execution: { executor: local, workers: 1 }
report:
  tables:
    - { name: alpha, title: Alpha, rows: alpha, metrics: [pixel_auroc] }
`;

let server: TestServer;
let dir: string;

before(async () => {
  server = await startTestServer('rerun');
  dir = mkdtempSync(join(tmpdir(), 'vcp-rerun-'));
  writeFileSync(join(dir, 'spec.yaml'), SPEC);
  await generateSynthDataset(join(dir, 'synth'), {
    products: ['carpet', 'bottle'],
    size: 64,
    trainGood: 1,
    testGood: 3,
    testDefect: 1,
  });
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in `dir`; resolves to its output and the wall time it took. */
function cli(
  args: string[],
): Promise<{ code: number | null; out: string; err: string; s: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(projectRoot(), 'bin/vcp-exp.js'), ...args], {
    cwd: dir,
    env: { ...process.env, VCP_EXP_STATE_DIR: join(dir, 'state'), MLFLOW_TRACKING_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve) =>
    child.on('exit', (code) =>
      resolve({ code, out, err, s: (performance.now() - started) / 1000 }),
    ),
  );
}

interface PlanJson {
  work: { seconds?: number; source?: string };
  evaluationsToRun: number;
}

test('plan estimates run from a calibration (ratio reported) and from its MLflow records (within 2×); report after rerun --seeds keeps every seed', async (t) => {
  if (!server.ok) return t.skip(server.reason);
  const uri = ['--tracking-uri', server.server.url];

  const planned = await cli(['plan', 'spec.yaml', '--json', ...uri]);
  assert.equal(planned.code, 0, planned.err);
  const plan = JSON.parse(planned.out) as PlanJson;
  assert.equal(plan.evaluationsToRun, 2);
  assert.match(plan.work.source ?? '', /measured on this machine/, planned.err);
  const estimate = plan.work.seconds!;

  const ran = await cli(['run', 'spec.yaml', '--progress', 'plain', ...uri]);
  assert.equal(ran.code, 0, ran.err + ran.out);
  const ratio = ran.s / estimate;
  t.diagnostic(
    `run took ${ran.s.toFixed(1)} s, plan said ${estimate.toFixed(1)} s (×${ratio.toFixed(2)})`,
  );
  // How close the calibration comes is a speed figure, not a pass/fail check: the calibration
  // and the run are minutes apart, and the machine's load between them decides it (×1.1–1.6
  // quiet, ×2.7 with other work beside it), so it is only reported.
  assert.ok(Number.isFinite(estimate) && estimate > 0, `estimate ${estimate}`);

  // The same work again (a second seed of each sweep point: one more training and evaluation
  // group, from an empty feature cache as plan assumes), estimated from this run's own MLflow
  // records. Both numbers come from the same run on the same machine under the same load, so
  // the bound of issue 16 (within 2×) is a property of the estimate here, not of the machine.
  const fromHistory = await cli(['plan', 'spec.yaml', 'seeds=2', '--json', ...uri]);
  assert.equal(fromHistory.code, 0, fromHistory.err);
  const history = JSON.parse(fromHistory.out) as PlanJson;
  assert.equal(history.evaluationsToRun, 2);
  assert.match(history.work.source ?? '', /from \d+ earlier FINISHED runs? in MLflow/);
  const historyRatio = ran.s / history.work.seconds!;
  t.diagnostic(
    `from this run's MLflow records, plan says ${history.work.seconds!.toFixed(1)} s for the same work (run ×${historyRatio.toFixed(2)})`,
  );
  assert.ok(
    historyRatio >= 0.5 && historyRatio <= 2,
    `the estimate from the run's own records (${history.work.seconds!.toFixed(1)} s) is not within 2× of the run's wall time (${ran.s.toFixed(1)} s): ×${historyRatio.toFixed(2)}; ${history.work.source}`,
  );

  await checkMlflowView(server, dir);

  const rerun = await cli(['rerun', 'spec.yaml', '--seeds', '2', '--progress', 'plain', ...uri]);
  assert.equal(rerun.code, 0, rerun.err + rerun.out);
  assert.match(rerun.out, /adding 1 seed \d+ \(seeds now \d+, \d+\)/);
  t.diagnostic(
    `rerun --seeds 2 took ${rerun.s.toFixed(1)} s, plan said ${history.work.seconds!.toFixed(1)} s from the first run's records (×${(rerun.s / history.work.seconds!).toFixed(2)})`,
  );
  assert.match(rerun.out, /2 finished, 0 failed, 0 killed, 2 skipped/);
  assert.match(
    readFileSync(join(dir, 'spec.yaml'), 'utf8'),
    /^seeds: 1$/m,
    'the spec is not rewritten',
  );

  const report = await cli(['report', 'spec.yaml', '--out', 'report', ...uri]);
  assert.equal(report.code, 0, report.err);
  assert.match(
    report.err,
    /note: included the FINISHED runs of 1 seed beyond the spec's \(\d+, added by vcp-exp rerun --seeds\)/,
  );
  assert.doesNotMatch(report.err, /no longer in the spec/);
  const md = readFileSync(join(dir, 'report', 'alpha.md'), 'utf8').split('\n');
  assert.match(md[0], /\| α \(weight of the VCP map\) \| n \| pixel AUROC \(%\) \|/);
  for (const row of md.slice(2, 4))
    assert.match(row, /^\| 0\.(5|75) \| 2 \| (\*\*)?\d+\.\d\d ± \d+\.\d\d(\*\*)? \|$/);
  assert.match(
    readFileSync(join(dir, 'report', 'README.md'), 'utf8'),
    /every sweep point has 2 finished seeds/,
  );

  // Earlier runs now give the per-image costs: no calibration.
  const again = await cli(['plan', 'spec.yaml', 'seeds=3', '--json', ...uri]);
  assert.equal(again.code, 0, again.err);
  const later = JSON.parse(again.out) as PlanJson;
  assert.ok(later.evaluationsToRun > 0);
  assert.match(later.work.source ?? '', /MLflow/, again.err);
  assert.doesNotMatch(again.err, /calibrat/i);
});

interface RestRun {
  info: { run_id: string };
  data: { tags?: { key: string; value: string }[] };
  inputs?: {
    dataset_inputs?: {
      tags?: { key: string; value: string }[];
      dataset: { name: string; digest: string; profile?: string };
    }[];
  };
}

/** What the MLflow UI reads: experiment tags, run source tags, dataset inputs, trial logs. */
async function checkMlflowView(server: TestServer & { ok: true }, dir: string): Promise<void> {
  const client = server.client();
  const experiment = (await client.getExperimentByName('it-rerun'))!;
  const tags = Object.fromEntries(experiment.tags.map((t) => [t.key, t.value]));
  assert.equal(tags['mlflow.experimentKind'], 'custom_model_development');
  assert.equal(tags['mlflow.note.content'], 'rerun then report');
  const view = JSON.parse(tags['mlflow.sharedViewState.vcp-exp-headline']) as { state: string };
  assert.match(view.state, /metrics\.`synth\.pixel_auroc`/);

  const response = await fetch(`${server.server.url}/api/2.0/mlflow/runs/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ experiment_ids: [experiment.experiment_id], max_results: 100 }),
  });
  const { runs } = (await response.json()) as { runs: RestRun[] };
  assert.equal(runs.length, 3, 'a sweep run and two trial runs');
  for (const run of runs) {
    const tag = (key: string) => run.data.tags?.find((t) => t.key === key)?.value;
    assert.equal(tag('mlflow.source.name'), 'spec.yaml');
    assert.equal(tag('mlflow.source.type'), 'LOCAL');
    const inputs = run.inputs?.dataset_inputs ?? [];
    const contexts = inputs.map((i) => i.tags?.find((t) => t.key === 'mlflow.data.context')?.value);
    assert.deepEqual(contexts.sort(), ['evaluation', 'training'], tag('vcp.run_kind'));
    for (const input of inputs) {
      assert.equal(input.dataset.name, 'synth');
      assert.match(input.dataset.digest, /^[0-9a-f]{8}$/);
      const profile = JSON.parse(input.dataset.profile ?? '{}') as { images?: number };
      const context = input.tags?.find((t) => t.key === 'mlflow.data.context')?.value;
      assert.equal(
        profile.images,
        context === 'training' ? 3 + 4 : 3 + 5,
        'carpet: 3 good + 4 defect types; bottle: 3 good + 5',
      );
    }
  }

  const trial = runs.find((r) =>
    r.data.tags?.some((t) => t.key === 'vcp.run_kind' && t.value === 'trial'),
  )!;
  const local = join(dir, 'trial.log');
  await new ArtifactStore(client).download(trial.info.run_id, 'logs/trial.log', local);
  const log = readFileSync(local, 'utf8');
  for (const expected of [
    /^\[\d\d:\d\d:\d\d\] trial [0-9a-f]{12} \(training key [0-9a-f]{12}\), seed \d+, alpha=0\.(5|75)$/m,
    /^\[[\d:]+\] method vcp-clip: .*heads=1 /m,
    /^\[[\d:]+\] (epoch 1\/1: loss \d+\.\d+ \([\d.]+ s\)|train: reusing the checkpoint of training [0-9a-f]{12})$/m,
    /^\[[\d:]+\] evaluate synth\/bottle \(1\/1\): 8 images \(5 anomalous\), pixel_auroc [\d.]+/m,
    /^\[[\d:]+\] done in [\d.]+ s/m,
  ])
    assert.match(log, expected, log);
  assert.doesNotMatch(
    log,
    /absl::InitializeLog|oneDNN custom operations/,
    'TensorFlow start-up noise',
  );
}
