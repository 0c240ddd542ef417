/**
 * Issue 12, cases 9, 10 and 12: datasets as a sweep meets them. Product names MLflow would
 * reject are logged under a documented key (and colliding ones refused before anything runs);
 * `plan` runs the same checks as `run` and both list every problem at once (a truncated image
 * is found by decoding, not by the trial that trips on it); a spec cannot make vcp-exp
 * generate data outside `<state>/data/`.
 */
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureSynthRoots } from '../../src/runner/sweep.js';
import type { Spec } from '../../src/runner/spec-types.js';
import { ArtifactStore } from '../../src/tracking/artifacts.js';
import { startTestServer, type TestServer } from '../tracking/helpers.js';
import {
  experimentRuns,
  metric,
  runCli,
  tinyProject,
  tinySpec,
  trialRuns,
  writeSpec,
  type CliOptions,
} from './helpers.js';

let server: TestServer;
let dir: string;
let cli: CliOptions;

before(async () => {
  server = await startTestServer('reliability-datasets');
  dir = await tinyProject('datasets');
  cli = {
    cwd: dir,
    stateDir: join(dir, 'state'),
    env: { MLFLOW_TRACKING_URI: server.ok ? server.server.url : '' },
  };
});

after(async () => {
  if (server.ok) await server.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const PLAIN = ['--progress', 'plain'];

test(
  'case 9: a product named "grid+(1) é" is logged as grid__1___; colliding names are refused at plan time',
  { timeout: 240_000 },
  async (t) => {
    if (!server.ok) return t.skip(server.reason);
    cpSync(join(dir, 'synth'), join(dir, 'names'), { recursive: true });
    renameSync(join(dir, 'names', 'bottle'), join(dir, 'names', 'grid+(1) é'));
    const check = runCli(['data', 'check', 'names'], cli);
    assert.equal(check.status, 0, check.output);
    assert.match(check.stdout, /note: product "grid\+\(1\) é" is logged in MLflow as "grid__1___"/);

    const spec = writeSpec(
      dir,
      'names.yaml',
      tinySpec({ name: 'rel-names', sweep: '  grid:\n    alpha: [0.75]', evalRoot: './names' }),
    );
    const plan = runCli(['plan', spec], cli);
    assert.equal(plan.status, 0, plan.output);
    assert.match(
      plan.stderr,
      /note: product "grid\+\(1\) é" of \S+names is logged in MLflow as "grid__1___"/,
    );
    const run = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(run.status, 0, run.output);
    const [trial] = trialRuns(await experimentRuns(server.client(), 'rel-names'));
    assert.equal(trial.info.status, 'FINISHED');
    for (const key of [
      'synth.grid__1___.pixel_auroc',
      'synth.carpet.pixel_auroc',
      'synth.pixel_auroc',
    ])
      assert.ok(metric(trial, key) !== undefined, `metric ${key}`);
    const files = (await new ArtifactStore(server.client()).listFiles(trial.info.run_id)).map(
      (f) => f.path,
    );
    assert.ok(
      files.some((f) => f.startsWith('samples/synth/grid__1___/')),
      files.join(', '),
    );

    // Two products that would share one key: refused before anything runs.
    cpSync(join(dir, 'synth', 'carpet'), join(dir, 'names', 'grid+(1)_é'), { recursive: true });
    const clash = runCli(['plan', spec], cli);
    assert.equal(clash.status, 2, clash.output);
    assert.match(
      clash.stderr,
      /products "grid\+\(1\) é" and "grid\+\(1\)_é" would all be logged as "grid__1___"/,
    );
  },
);

test(
  'case 10: plan and run list every dataset problem at once (unknown product, truncated image, missing mask); run starts nothing',
  { timeout: 120_000 },
  async () => {
    const unknown = writeSpec(
      dir,
      'unknown.yaml',
      tinySpec({
        name: 'rel-unknown',
        sweep: '  grid:\n    alpha: [0.75]',
        evalProducts: '[carpet, nope]',
      }),
    );
    const plan = runCli(['plan', unknown], cli);
    assert.equal(plan.status, 2, plan.output);
    assert.match(
      plan.stderr,
      /1 dataset problem, nothing was run:\neval dataset synth at \S+synth:\n {2}\S+synth: unknown product "nope" \(available: bottle, carpet\)/,
    );

    cpSync(join(dir, 'synth'), join(dir, 'broken'), { recursive: true });
    const image = join(dir, 'broken', 'carpet', 'test', 'hole', '000.png');
    writeFileSync(image, readFileSync(image).subarray(0, 200)); // header intact, pixels cut off
    rmSync(join(dir, 'broken', 'bottle', 'ground_truth', 'crack', '000_mask.png'));
    const spec = writeSpec(
      dir,
      'broken.yaml',
      tinySpec({ name: 'rel-broken', sweep: '  grid:\n    alpha: [0.75]', root: './broken' }),
    );
    const expected = [
      /2 dataset problems, nothing was run:/,
      /train dataset, eval dataset synth at \S+broken:/,
      /\S+broken\/bottle\/test\/crack\/000\.png: missing mask for an anomalous image \(defect "crack"\)/,
      /\S+broken\/carpet\/test\/hole\/000\.png: unreadable image: /,
    ];
    const planned = runCli(['plan', spec], cli);
    assert.equal(planned.status, 2, planned.output);
    for (const e of expected) assert.match(planned.stderr, e);
    const run = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(run.status, 2, run.output);
    for (const e of expected) assert.match(run.stderr, e);
    if (server.ok)
      assert.equal(
        trialRuns(await experimentRuns(server.client(), 'rel-broken')).length,
        0,
        'no trial started',
      );
  },
);

test(
  'case 12: missing synthetic data is generated under <state>/data only, never where a spec points',
  { timeout: 120_000 },
  async () => {
    const stateDir = join(dir, 'state-12');
    const specOf = (root: string) =>
      ({
        trials: [{ config: { train: { dataset: { root } }, eval: { datasets: [] } } }],
      }) as unknown as Spec;
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);

    const outside = join(dir, 'elsewhere', 'synth-x');
    await ensureSynthRoots(specOf(outside), stateDir, log);
    assert.equal(existsSync(join(dir, 'elsewhere')), false);
    assert.match(
      lines.join('\n'),
      new RegExp(
        `dataset ${outside} does not exist; synthetic data is generated only under ${join(stateDir, 'data')} \\(create it with: vcp-exp data synth ${outside}\\)`,
      ),
    );

    // A symlink inside <state>/data that leads outside does not count as inside.
    mkdirSync(join(stateDir, 'data'), { recursive: true });
    mkdirSync(join(dir, 'target'));
    symlinkSync(join(dir, 'target'), join(stateDir, 'data', 'link'));
    await ensureSynthRoots(specOf(join(stateDir, 'data', 'link', 'synth-y')), stateDir, log);
    assert.equal(existsSync(join(dir, 'target', 'synth-y')), false);

    const inside = join(stateDir, 'data', 'synth-z');
    await ensureSynthRoots(specOf(inside), stateDir, log);
    assert.ok(existsSync(join(inside, 'carpet', 'train', 'good')), 'generated under <state>/data');

    // Through the CLI: the run refuses the missing root (exit 2) and writes nothing there.
    const spec = writeSpec(
      dir,
      'outside.yaml',
      tinySpec({ name: 'rel-outside', root: './elsewhere/synth-x' }),
    );
    const run = runCli(['run', spec, ...PLAIN], { ...cli, stateDir });
    assert.equal(run.status, 2, run.output);
    assert.match(run.output, /elsewhere\/synth-x: dataset root does not exist/);
    assert.equal(existsSync(join(dir, 'elsewhere')), false);
  },
);
