/**
 * The one place that decides whether an optional dependency of a test is required here.
 *
 * A test that needs something `npm install` alone does not give (the native backend or its
 * GPU build, the project's Python, a Python with numpy or torch, the real CLIP tokenizer files,
 * an MLflow server, a Slurm cluster) asks here. When the dependency is missing:
 * - in CI (`inCI`, src/io/ci.ts) the test fails with the reason and the fix, so a broken
 *   set-up cannot pass as a green run of fewer tests;
 * - elsewhere the test is skipped and the reason printed (`# skipping: …`).
 * The only exceptions are listed in `DEPENDENCIES` with `optionalInCI` and its reason; the
 * README's "Testing" section lists the same ones.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { inCI } from '../src/io/ci.js';
import { activeMlflowVenv } from '../src/tracking/mlflow-install.js';
import { projectRoot } from '../src/tracking/server.js';

interface DependencyInfo {
  what: string;
  fix: string;
  /** Why CI may run without it (then a missing one is a printed skip in CI too). */
  optionalInCI?: string;
}

export const DEPENDENCIES = {
  'native-backend': {
    what: 'the native TensorFlow backend (@tensorflow/tfjs-node)',
    fix: 'run `npm run setup:native`',
  },
  'gpu-build': {
    what: "the native backend's GPU build (@tensorflow/tfjs-node-gpu on TensorFlow 2.21 with the CUDA 12 libraries)",
    fix: 'run `npm run setup -- --gpu` (works without a GPU: ~2 GB download, ~4 GB on disk)',
    optionalInCI:
      'CI does not download the ~2 GB GPU build; the lock, the driver checks and the device hand-out are tested without it',
  },
  'project-python': {
    what: "the project's Python (the venv `npm run setup` makes for MLflow in the user cache)",
    fix: 'run `npm run setup:mlflow`',
  },
  'numpy-python': {
    what: 'a Python with numpy',
    fix: "run `npm run setup:mlflow` (the project's venv has numpy) or set VCP_EXP_PYTHON",
  },
  'pillow-python': {
    what: 'a Python with numpy and Pillow',
    fix: "run `npm run setup:mlflow` (the project's venv has both) or set VCP_EXP_PYTHON",
  },
  'torch-python': {
    what: 'a Python with torch and safetensors',
    fix: 'set VCP_EXP_PYTHON to a venv made from python/requirements-golden.txt (python/README.md)',
    optionalInCI:
      'CI installs no PyTorch (several GB); the committed .pth fixture covers the torch-free reader there',
  },
  'hub-python': {
    what: 'a Python with huggingface_hub',
    fix: 'set VCP_EXP_PYTHON to a venv made from python/requirements-golden.txt (python/README.md)',
    optionalInCI:
      'CI installs no golden Python; the committed tests/fixtures/clip/hf-cache, written by huggingface_hub itself, covers the cache layout there',
  },
  'clip-tokenizer': {
    what: "the real CLIP tokenizer files (openai/clip-vit-base-patch32's tokenizer.json)",
    fix: 'set VCP_EXP_CLIP_TOKENIZER to their directory, or keep shared/assets/clip-tokenizer beside the checkout (as CI does)',
  },
  mlflow: {
    what: 'a local MLflow server',
    fix: 'run `npm run setup:mlflow`',
  },
  'slurm-cluster': {
    what: 'a Slurm cluster (sinfo answering, an idle node, MinJobAge ≤ 60 s) and a non-loopback address of this machine for the MLflow server its nodes reach',
    fix: 'as root: `apt-get install --no-install-recommends slurm-wlm munge && scripts/slurm/start-cluster.sh` (what .ci/run does)',
  },
  'tmpfs-mount': {
    what: 'mounting a small tmpfs to fill up (root with CAP_SYS_ADMIN)',
    fix: 'run the tests as root outside a restricted container',
    optionalInCI:
      'containers usually lack CAP_SYS_ADMIN; tests/reliability/integrity.test.ts still covers how a full disk is recognised',
  },
} as const satisfies Record<string, DependencyInfo>;

export type Dependency = keyof typeof DEPENDENCIES;

export type Availability<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * For set-up code (top-level await, `before` hooks): throws in CI unless `dependency` may be
 * missing there; otherwise prints why the tests that need it will be skipped and returns that
 * message for `t.skip`.
 */
export function unavailable(dependency: Dependency, reason: string): string {
  const info: DependencyInfo = DEPENDENCIES[dependency];
  const message = `${info.what} is unavailable (${reason}); ${info.fix}`;
  if (inCI() && !info.optionalInCI) throw new Error(`required in CI: ${message}`);
  const allowed = inCI() ? ` [allowed in CI: ${info.optionalInCI}]` : '';
  console.log(`# skipping: ${message}${allowed}`);
  return message;
}

/**
 * Inside a test: the dependency's value, or undefined after skipping the test with the reason
 * (outside CI) or failing it (in CI). Use as `const py = need(t, 'numpy-python', numpyPython()); if (!py) return;`.
 */
export function need<T>(
  t: TestContext,
  dependency: Dependency,
  availability: Availability<T>,
): T | undefined {
  if (availability.ok) return availability.value;
  t.skip(unavailable(dependency, availability.reason));
  return undefined;
}

/**
 * The project's Python venv: the MLflow venv `npm run setup` makes in the user cache (or a
 * checkout's older `.venv/`; src/tracking/mlflow-install.ts decides).
 */
export function projectVenvDir(): string {
  return activeMlflowVenv();
}

/** The project venv's python, when setup made it. */
export function projectPython(): Availability<string> {
  const python = join(projectVenvDir(), 'bin', 'python');
  return existsSync(python) ? { ok: true, value: python } : { ok: false, reason: `no ${python}` };
}

const probed = new Map<string, Availability<string>>();

/**
 * A Python that imports every module (none: any that runs): $VCP_EXP_PYTHON when set (it must
 * have them), else the project's venv.
 */
export function pythonWith(modules: readonly string[]): Availability<string> {
  const key = modules.join(',');
  const cached = probed.get(key);
  if (cached) return cached;
  const fromEnv = process.env.VCP_EXP_PYTHON;
  const candidate: Availability<string> = fromEnv
    ? existsSync(fromEnv)
      ? { ok: true, value: fromEnv }
      : { ok: false, reason: `VCP_EXP_PYTHON=${fromEnv} does not exist` }
    : projectPython();
  let result = candidate;
  if (candidate.ok) {
    const probe = spawnSync(candidate.value, ['-c', key ? `import ${key}` : 'pass'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (probe.status !== 0) {
      const error = (probe.stderr || probe.error?.message || '').trim().split('\n').pop();
      result = {
        ok: false,
        reason: `${candidate.value} cannot ${key ? `import ${key}` : 'run'}: ${error}`,
      };
    }
  }
  probed.set(key, result);
  return result;
}

export const numpyPython = (): Availability<string> => pythonWith(['numpy']);
export const pillowPython = (): Availability<string> => pythonWith(['numpy', 'PIL']);
export const torchPython = (): Availability<string> =>
  pythonWith(['numpy', 'torch', 'safetensors']);
export const hubPython = (): Availability<string> => pythonWith(['huggingface_hub']);

/** The real CLIP tokenizer directory: $VCP_EXP_CLIP_TOKENIZER, else ../shared/assets/clip-tokenizer. */
export function realTokenizer(): Availability<string> {
  const candidates = [
    process.env.VCP_EXP_CLIP_TOKENIZER,
    join(projectRoot(), '..', 'shared', 'assets', 'clip-tokenizer'),
  ].filter((dir): dir is string => !!dir);
  const found = candidates.find((dir) => existsSync(join(dir, 'tokenizer.json')));
  return found
    ? { ok: true, value: found }
    : { ok: false, reason: `no tokenizer.json in ${candidates.join(' or ')}` };
}
