/**
 * Issue 12, cases 10 and 12: datasets as a sweep meets them. `plan` runs the same checks as
 * `run` and both list every problem at once (a truncated image is found by decoding, not by
 * the trial that trips on it), before any tracking; a spec cannot make vcp-exp generate data
 * outside `<state>/data/`. (Case 9, product names, runs a trial: runner-faults.test.ts.)
 */
import assert from 'node:assert/strict';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureSynthRoots } from '../../src/runner/synth-roots.js';
import type { Spec } from '../../src/runner/spec-types.js';
import { runCli, tinyProject, tinySpec, writeSpec, type CliOptions } from './helpers.js';

let dir: string;
let cli: CliOptions;
/** For `plan`, which asks MLflow only when one is named: none. */
let offline: CliOptions;

before(async () => {
  dir = await tinyProject('datasets');
  // A tracking URI nothing listens on: a command that got as far as tracking would fail there.
  cli = {
    cwd: dir,
    stateDir: join(dir, 'state'),
    env: { MLFLOW_TRACKING_URI: 'http://127.0.0.1:9' },
  };
  offline = { ...cli, env: {} };
});

after(() => rmSync(dir, { recursive: true, force: true }));

const PLAIN = ['--progress', 'plain'];

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
    const plan = runCli(['plan', unknown], offline);
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
    const planned = runCli(['plan', spec], offline);
    assert.equal(planned.status, 2, planned.output);
    for (const e of expected) assert.match(planned.stderr, e);
    const run = runCli(['run', spec, ...PLAIN], cli);
    assert.equal(run.status, 2, run.output);
    for (const e of expected) assert.match(run.stderr, e);
    assert.doesNotMatch(run.output, /unreachable|sweep rel-broken/, 'tracking was never contacted');
    assert.equal(existsSync(join(cli.stateDir, 'trials')), false, 'no trial started');
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
        `dataset ${outside} does not exist; synthetic data is generated only under ${join(stateDir, 'data')}; create it with: vcp-exp data synth ${outside}`,
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
    assert.equal(run.status, 1, run.output);
    assert.match(
      run.output,
      /the trials need what is not on this machine:\n.*elsewhere\/synth-x does not exist; synthetic data is generated only under \S+state-12\/data; create it with: vcp-exp data synth \S+elsewhere\/synth-x/,
    );
    assert.equal(existsSync(join(dir, 'elsewhere')), false);
  },
);
