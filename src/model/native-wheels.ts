/**
 * The PyPI wheels the native backend is built from, pinned with their sha256 in
 * `assets/native/requirements-<build>.txt` (pip's hash-checking format; the hashes are written
 * by scripts/lock-native-wheels.mjs): reading such a lock, fetching its wheels into the user
 * cache's `wheels/` (each checked against its hashes, whether downloaded now or before), and
 * installing some of them into a directory with pip.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../io/cache-dir.js';
import { projectRoot } from '../io/package-root.js';
import type { NativeBuild } from './native.js';

export interface LockedWheel {
  name: string;
  version: string;
  /** sha256 of every wheel file pip may pick for it. */
  hashes: string[];
}

/**
 * Only shared libraries are taken from these wheels, never Python code, so pip fetches the
 * same files whatever Python runs it: CPython 3.11's TensorFlow wheel, the py3 NVIDIA ones,
 * for manylinux x86_64 (TensorFlow publishes its CUDA build for Linux x86_64 only).
 */
export const WHEEL_TARGET = [
  '--only-binary=:all:',
  '--platform=manylinux_2_27_x86_64',
  '--platform=manylinux2014_x86_64',
  '--python-version=3.11',
  '--implementation=cp',
  '--abi=cp311',
];

export function lockFile(build: NativeBuild): string {
  return join(projectRoot(), 'assets', 'native', `requirements-${build}.txt`);
}

/** The pinned requirements of a hash-locked requirements file. */
export function parseLock(text: string, file = 'requirements'): LockedWheel[] {
  const wheels: LockedWheel[] = [];
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  logical.forEach((line, i) => {
    const body = line.replace(/(^|\s)#.*$/, '').trim();
    if (body === '') return;
    const pin = /^([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)$/.exec(body);
    if (!pin) throw new Error(`${file}: "${body}" is not "name==version --hash=sha256:…"`);
    const hashes = [...pin[3]!.matchAll(/sha256:([0-9a-f]{64})/g)].map((m) => m[1]!);
    if (hashes.length === 0)
      throw new Error(
        `${file}: ${pin[1]}==${pin[2]} has no --hash (run node scripts/lock-native-wheels.mjs) (logical line ${i + 1})`,
      );
    wheels.push({ name: pin[1]!, version: pin[2]!, hashes });
  });
  return wheels;
}

export function readLock(build: NativeBuild): LockedWheel[] {
  const file = lockFile(build);
  return parseLock(readFileSync(file, 'utf8'), file);
}

/** The requirement lines of `wheels`, for pip -r. */
export function formatLock(wheels: readonly LockedWheel[]): string {
  return wheels
    .map((w) => [`${w.name}==${w.version}`, ...w.hashes.map((h) => `--hash=sha256:${h}`)].join(' '))
    .join('\n')
    .concat('\n');
}

/** The user cache's wheel directory. */
export function wheelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'wheels');
}

/** A wheel file name's distribution part: PEP 427 escapes the project name's "-" and ".". */
function wheelPrefix(wheel: LockedWheel): string {
  return `${wheel.name.toLowerCase().replace(/[-_.]+/g, '_')}-${wheel.version}-`;
}

/** The wheel of `wheel` in `dir` whose content matches a locked hash, if any. */
export function findVerifiedWheel(dir: string, wheel: LockedWheel): string | undefined {
  if (!existsSync(dir)) return undefined;
  const prefix = wheelPrefix(wheel);
  for (const name of readdirSync(dir)) {
    if (!name.toLowerCase().startsWith(prefix) || !name.endsWith('.whl')) continue;
    const file = join(dir, name);
    if (wheel.hashes.includes(sha256File(file))) return file;
  }
  return undefined;
}

export function sha256File(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 22);
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0;)
      hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** A Python 3 with pip: $PYTHON, python3 or python. */
export function findPython(): string {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ['-c', 'import sys, pip; print(sys.version_info[0])'], {
      encoding: 'utf8',
    });
    if (r.status === 0 && r.stdout.trim() === '3') return candidate;
  }
  throw new Error(
    'Python 3 with pip is needed to fetch the TensorFlow libraries from PyPI (apt-get install python3-pip)',
  );
}

/** Runs `python -m pip …` with a throw-away requirements file holding `wheels`. */
function pip(py: string, args: string[], wheels: readonly LockedWheel[]): void {
  const tmp = mkdtempSync(join(tmpdir(), 'vcp-exp-pip-'));
  try {
    const requirements = join(tmp, 'requirements.txt');
    writeFileSync(requirements, formatLock(wheels));
    const argv = ['-m', 'pip', ...args, '--require-hashes', '-r', requirements];
    // pip warns a root user off installing into the system; --target installs go elsewhere.
    const env = { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' };
    const r = spawnSync(py, argv, { stdio: 'inherit', env });
    if (r.error) throw new Error(`pip: ${r.error.message}`);
    if (r.status !== 0)
      throw new Error(`pip ${args[0]} exited with ${r.status ?? r.signal} (see its output above)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The verified wheel files of `wheels`, in order: cached ones whose hash matches are reused,
 * the others are downloaded by pip (which refuses a file whose hash differs).
 */
export function fetchWheels(
  py: string,
  wheels: readonly LockedWheel[],
  log: (line: string) => void,
): { files: string[]; downloadedBytes: number } {
  const dir = wheelsDir();
  const found = wheels.map((w) => findVerifiedWheel(dir, w));
  const missing = wheels.filter((_, i) => !found[i]);
  let downloadedBytes = 0;
  if (missing.length > 0) {
    log(
      `downloading ${missing.map((w) => `${w.name}==${w.version}`).join(', ')} from PyPI (hash-checked; once, cached in ${dir})`,
    );
    mkdirSync(dir, { recursive: true });
    const before = new Set(readdirSync(dir));
    pip(
      py,
      ['download', '--disable-pip-version-check', '--no-deps', ...WHEEL_TARGET, '-d', dir],
      missing,
    );
    for (const name of readdirSync(dir))
      if (!before.has(name)) downloadedBytes += statSync(join(dir, name)).size;
  }
  const files = wheels.map((w, i) => {
    const file = found[i] ?? findVerifiedWheel(dir, w);
    if (!file) throw new Error(`no wheel of ${w.name}==${w.version} with a locked hash in ${dir}`);
    return file;
  });
  return { files, downloadedBytes };
}

/** Installs the (already fetched, hash-checked again by pip) `wheels` into `target`. */
export function installWheels(py: string, wheels: readonly LockedWheel[], target: string): void {
  pip(
    py,
    [
      'install',
      '--quiet',
      '--disable-pip-version-check',
      '--no-deps',
      '--no-compile',
      '--upgrade',
      '--no-index',
      `--find-links=${wheelsDir()}`,
      ...WHEEL_TARGET,
      `--target=${target}`,
    ],
    wheels,
  );
}
