/**
 * The pinned MLflow that the managed local server (server.ts) and the tests run: a Python
 * venv in the user cache, `<cache root>/mlflow-<version>/` (src/io/cache-dir.ts), installed by
 * `vcp-exp setup` (`npm run setup` in a checkout). Outside the package, so an installed or
 * npx-run vcp-exp has one too, and every project of the user shares it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../io/cache-dir.js';
import { projectRoot } from '../io/package-root.js';

export const MLFLOW_VERSION = '3.17.2';

/** The venv `vcp-exp setup` installs MLflow into. */
export function mlflowVenv(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), `mlflow-${MLFLOW_VERSION}`);
}

/**
 * The venv MLflow runs from: the cache venv once set up; else a checkout's `.venv/` set up
 * by an earlier version of `npm run setup`, if it has mlflow; else the cache venv (missing).
 */
export function activeMlflowVenv(env: NodeJS.ProcessEnv = process.env): string {
  const venv = mlflowVenv(env);
  if (existsSync(join(venv, 'bin', 'mlflow'))) return venv;
  const legacy = join(projectRoot(), '.venv');
  return existsSync(join(legacy, 'bin', 'mlflow')) ? legacy : venv;
}

/** The mlflow executable: $VCP_EXP_MLFLOW, else the active venv's (which may not exist yet). */
export function mlflowBin(env: NodeJS.ProcessEnv = process.env): string {
  return env.VCP_EXP_MLFLOW || join(activeMlflowVenv(env), 'bin', 'mlflow');
}

/** The active venv's Python (it has numpy, an MLflow dependency). */
export function mlflowPython(env: NodeJS.ProcessEnv = process.env): string {
  return join(activeMlflowVenv(env), 'bin', 'python');
}

/** The version `<venv>/bin/mlflow --version` reports, if it runs. */
export function installedMlflowVersion(venv: string): string | undefined {
  const mlflow = join(venv, 'bin', 'mlflow');
  if (!existsSync(mlflow)) return undefined;
  const r = spawnSync(mlflow, ['--version'], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return undefined;
  return /version\s+(\S+)/.exec(r.stdout)?.[1]; // "mlflow, version 3.17.2"
}

function findPython(): { cmd: string; version: string } {
  for (const candidate of [process.env.PYTHON, 'python3']) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
    });
    if (r.status === 0 && /^3\.\d+$/.test(r.stdout.trim()))
      return { cmd: candidate, version: r.stdout.trim() };
  }
  throw new Error(
    'python3 was not found. Install it with: apt-get install python3 python3-venv  (then: vcp-exp setup mlflow)',
  );
}

function run(cmd: string, argv: string[]): string | undefined {
  const r = spawnSync(cmd, argv, { stdio: 'inherit' });
  if (r.error) return r.error.message;
  if (r.status !== 0) return `${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`;
  return undefined;
}

/**
 * Installs mlflow==MLFLOW_VERSION into mlflowVenv() unless it is there already (idempotent).
 * Throws an Error saying what is missing and how to get it.
 */
export function installMlflow(log: (line: string) => void): void {
  const venv = mlflowVenv();
  const have = installedMlflowVersion(venv);
  if (have === MLFLOW_VERSION) {
    log(`mlflow ${MLFLOW_VERSION} ready in ${venv}`);
    return;
  }
  const started = Date.now();
  const py = findPython();
  const ok = spawnSync(py.cmd, ['-c', 'import venv, ensurepip'], { encoding: 'utf8' });
  if (ok.status !== 0)
    throw new Error(
      `python3 ${py.version} has no venv/ensurepip module. Install it with: apt-get install python3-venv  (then: vcp-exp setup mlflow)`,
    );
  const python = join(venv, 'bin', 'python');
  if (existsSync(venv) && !existsSync(python)) rmSync(venv, { recursive: true, force: true });
  if (!existsSync(python)) {
    log(`creating ${venv} with ${py.cmd} ${py.version}`);
    const failure = run(py.cmd, ['-m', 'venv', venv]);
    if (failure)
      throw new Error(`could not create the venv: ${failure}. Try: apt-get install python3-venv`);
  }
  log(
    `installing mlflow==${MLFLOW_VERSION}${have ? ` (found ${have})` : ''} from PyPI (about a minute)`,
  );
  const failure = run(python, [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--disable-pip-version-check',
    '--no-input',
    `mlflow==${MLFLOW_VERSION}`,
  ]);
  if (failure) throw new Error(`pip could not install mlflow==${MLFLOW_VERSION}: ${failure}`);
  const now = installedMlflowVersion(venv);
  if (now !== MLFLOW_VERSION)
    throw new Error(`after installing, ${venv}/bin/mlflow --version reports ${now ?? 'nothing'}`);
  log(
    `mlflow ${MLFLOW_VERSION} ready in ${venv} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
  );
}
