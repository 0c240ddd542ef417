/**
 * vcp-exp as a user gets it: `npm pack`, then in an empty directory
 * `npm install ./vcp-exp-*.tgz && npx vcp-exp setup && npx vcp-exp quickstart`. The tarball
 * holds the compiled CLI, the schemas, the specs and the tiny CLIP, not the sources, tests or
 * CI; setup puts MLflow and the native backend in the user cache, not in the package; the
 * quickstart writes its spec, data, MLflow state and report into the current directory.
 * Needs the npm registry (and, for a first setup, PyPI); the user cache is $VCP_EXP_CACHE or
 * ~/.cache/vcp-exp, so after `npm run setup` the setup here only finds everything ready.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildProblem, ROOT } from '../../bin/build-stamp.js';
import { cacheRoot } from '../../src/io/cache-dir.js';
import { mlflowVenv } from '../../src/tracking/mlflow-install.js';
import { nativeDir } from '../../src/model/native.js';

const work = mkdtempSync(join(tmpdir(), 'vcp-package-'));
const user = join(work, 'user');
mkdirSync(user);
after(() => {
  spawnSync('npx', ['vcp-exp', 'mlflow', 'stop'], { cwd: user, stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
});

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

test('npm pack → npm install in an empty directory → npx vcp-exp setup → npx vcp-exp quickstart', () => {
  // The tests run on a current build (scripts/run-tests.mjs); `prepare` would only rebuild it.
  assert.equal(buildProblem(), undefined);
  const packed = sh(
    'npm',
    ['pack', '--ignore-scripts', '--json', '--pack-destination', work],
    ROOT,
  );
  const [info] = JSON.parse(packed.slice(packed.indexOf('['))) as {
    filename: string;
    size: number;
    files: { path: string }[];
  }[];
  const paths = info.files.map((f) => f.path);
  for (const wanted of [
    'bin/vcp-exp.js',
    'dist/cli.js',
    'dist/runner/trial-main.js',
    'schemas/experiment.schema.json',
    'schemas/methods/vcp-clip.schema.json',
    'experiments/quickstart.yaml',
    'assets/clip/tiny-clip/model.safetensors',
    'assets/native/requirements-gpu.txt',
    'assets/native/check_cuda_libs.py',
    'README.md',
  ])
    assert.ok(paths.includes(wanted), `${wanted} is not in the package`);
  const stray = paths.filter((p) => /^(src|tests|bench|scripts|python|reports|\.ci)\//.test(p));
  assert.deepEqual(stray, [], 'sources, tests or CI files in the package');
  assert.ok(info.size < 2_000_000, `package of ${info.size} bytes`);

  sh('npm', ['install', '--no-audit', '--no-fund', join(work, info.filename)], user);
  const installed = join(user, 'node_modules', 'vcp-exp');
  assert.ok(existsSync(join(installed, 'dist', 'cli.js')));

  const setup = sh('npx', ['vcp-exp', 'setup', '--strict'], user);
  assert.match(setup, /\[setup:native\] native backend ready/);
  assert.ok(setup.includes(`mlflow 3.17.2 ready in ${mlflowVenv()}`), setup);
  assert.ok(existsSync(join(nativeDir(), 'node_modules', '@tensorflow', 'tfjs-node')));
  // Nothing of either lives in the package or beside it.
  assert.equal(existsSync(join(installed, '.venv')), false);
  assert.equal(existsSync(join(user, 'node_modules', '@tensorflow', 'tfjs-node')), false);
  assert.ok(mlflowVenv().startsWith(cacheRoot()));

  const started = performance.now();
  const quickstart = sh('npx', ['vcp-exp', 'quickstart', '--progress', 'plain'], user);
  const quickstartSeconds = (performance.now() - started) / 1000;
  assert.match(quickstart, /wrote .*quickstart\.yaml/);
  assert.match(quickstart, /12\/12 trials/);
  for (const f of ['heads-alpha.md', 'heads-alpha.tex', 'heads-alpha.csv', 'heads-alpha-curve.svg'])
    assert.ok(existsSync(join(user, 'reports', 'quickstart', f)), `reports/quickstart/${f}`);
  assert.ok(statSync(join(user, '.vcp-exp', 'data', 'synth')).isDirectory());
  assert.ok(readdirSync(join(user, '.vcp-exp')).includes('checkpoints'));

  // The plan's estimate for the same work again (seeds 3 and 4: 12 new trials, 6 trainings),
  // priced from the quickstart's own runs in MLflow, within 2× of what the quickstart took.
  // Assertable (unlike a time limit): both numbers come from the same runs on the same machine
  // under the same load. The quickstart's wall time also holds its report (~15 % of it).
  const plan = spawnSync(
    'npx',
    ['vcp-exp', 'plan', 'quickstart.yaml', 'seeds=4', '--json', '--mlflow'],
    {
      cwd: user,
      encoding: 'utf8',
    },
  );
  assert.equal(plan.status, 0, plan.stderr);
  const { evaluationsToRun, work: estimate } = JSON.parse(plan.stdout) as {
    evaluationsToRun: number;
    work: { seconds?: number; source?: string };
  };
  assert.equal(evaluationsToRun, 12);
  assert.match(estimate.source ?? '', /earlier FINISHED runs in MLflow/);
  const ratio = quickstartSeconds / (estimate.seconds ?? NaN);
  assert.ok(
    ratio >= 0.5 && ratio <= 2,
    `quickstart took ${quickstartSeconds.toFixed(1)} s, plan estimates the same work at ${estimate.seconds} s (×${ratio.toFixed(2)})`,
  );
});
