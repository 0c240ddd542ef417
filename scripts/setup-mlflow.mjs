#!/usr/bin/env node
// Installs the project's pinned MLflow into a project-local venv (.venv/), which the managed
// local tracking server (src/tracking/server.ts) and the integration tests run from.
//
// Idempotent: when .venv/bin/mlflow already reports the pinned version, nothing is done.
// Without --strict a failure only warns: vcp-exp still works against a remote
// MLFLOW_TRACKING_URI, and says how to come back here when it needs the local server.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Keep in sync with MLFLOW_VERSION in src/tracking/server.ts.
const MLFLOW_VERSION = '3.17.2';
const VENV = join(ROOT, '.venv');
const BIN = join(VENV, 'bin');
const strict = process.argv.slice(2).includes('--strict');

function log(message) {
  console.log(`[setup:mlflow] ${message}`);
}

function installedVersion() {
  const mlflow = join(BIN, 'mlflow');
  if (!existsSync(mlflow)) return undefined;
  const r = spawnSync(mlflow, ['--version'], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return undefined;
  // "mlflow, version 3.18.0"
  return /version\s+(\S+)/.exec(r.stdout)?.[1];
}

function python() {
  for (const candidate of [process.env.PYTHON, 'python3']) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
    });
    if (r.status === 0 && /^3\.\d+$/.test(r.stdout.trim()))
      return { cmd: candidate, version: r.stdout.trim() };
  }
  throw new Error(
    'python3 was not found. Install it with: apt-get install python3 python3-venv  (then: npm run setup:mlflow)',
  );
}

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: ROOT });
  if (r.error) return r.error.message;
  if (r.status !== 0) return `${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`;
  return undefined;
}

function createVenv(py) {
  const venvOk = spawnSync(py.cmd, ['-c', 'import venv, ensurepip'], { encoding: 'utf8' });
  if (venvOk.status !== 0) {
    throw new Error(
      `python3 ${py.version} has no venv/ensurepip module. Install it with: apt-get install python3-venv  (then: npm run setup:mlflow)`,
    );
  }
  if (existsSync(VENV) && !existsSync(join(BIN, 'python')))
    rmSync(VENV, { recursive: true, force: true });
  if (!existsSync(join(BIN, 'python'))) {
    log(`creating ${VENV} with ${py.cmd} ${py.version}`);
    const failure = run(py.cmd, ['-m', 'venv', VENV]);
    if (failure)
      throw new Error(`could not create the venv: ${failure}. Try: apt-get install python3-venv`);
  }
}

function main() {
  const have = installedVersion();
  if (have === MLFLOW_VERSION) {
    log(`mlflow ${MLFLOW_VERSION} ready in ${VENV}`);
    return;
  }
  const started = Date.now();
  const py = python();
  createVenv(py);
  log(
    `installing mlflow==${MLFLOW_VERSION}${have ? ` (found ${have})` : ''} from PyPI (about a minute)`,
  );
  const pip = join(BIN, 'python');
  const failure = run(pip, [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--disable-pip-version-check',
    '--no-input',
    `mlflow==${MLFLOW_VERSION}`,
  ]);
  if (failure) throw new Error(`pip could not install mlflow==${MLFLOW_VERSION}: ${failure}`);
  const now = installedVersion();
  if (now !== MLFLOW_VERSION)
    throw new Error(`after installing, .venv/bin/mlflow --version reports ${now ?? 'nothing'}`);
  log(
    `mlflow ${MLFLOW_VERSION} ready in ${VENV} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
}

try {
  main();
} catch (error) {
  console.error(`[setup:mlflow] MLflow not available: ${error.message}`);
  console.error(
    '[setup:mlflow] a remote MLFLOW_TRACKING_URI still works; for the local server retry with: npm run setup:mlflow',
  );
  if (strict) process.exit(1);
}
