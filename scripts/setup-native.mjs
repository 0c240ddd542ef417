#!/usr/bin/env node
// Sets up the native TensorFlow backend (@tensorflow/tfjs-node) so that it works offline.
//
// tfjs-node's own install script downloads libtensorflow 2.9.1 from a host that air-gapped
// networks (and this project's CI) cannot reach. Its addon builds unchanged against the
// TensorFlow C API shipped inside PyPI's tensorflow-cpu wheel, so when the normal route fails
// we take the two shared libraries and the C headers from that wheel and build the addon here.
//
// Idempotent: when the addon already loads, nothing is done. Never fails `npm install`:
// without the native backend vcp-exp runs on wasm and says how to come back here.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TF_WHEEL = 'tensorflow-cpu==2.21.0';
const OFFICIAL_INSTALL_TIMEOUT_MS = 90_000;
const args = new Set(process.argv.slice(2));
const strict = args.has('--strict'); // exit non-zero when the native backend cannot be had
const skipOfficial = args.has('--wheel') || process.env.VCP_EXP_NATIVE_FROM_WHEEL === '1';

function log(message) {
  console.log(`[setup:native] ${message}`);
}

function nodeHeadersEnv() {
  // node-gyp would download Node's headers; use the local ones when they are installed.
  const env = { ...process.env };
  if (!env.npm_config_nodedir) {
    const local = dirname(dirname(process.execPath));
    if (existsSync(join(local, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = local;
    else if (existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  }
  return env;
}

function run(cmd, argv, options = {}) {
  const result = spawnSync(cmd, argv, { stdio: 'inherit', env: nodeHeadersEnv(), ...options });
  if (result.error) return { ok: false, reason: result.error.message };
  if (result.status !== 0)
    return { ok: false, reason: `${cmd} exited with ${result.status ?? result.signal}` };
  return { ok: true };
}

/** Loads tfjs-node in a fresh process and runs one matMul on it. */
function probe() {
  const script = `
    process.env.TF_CPP_MIN_LOG_LEVEL = '2';
    const tf = require('@tensorflow/tfjs-node');
    const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
    if (tf.getBackend() !== 'tensorflow' || y[0] !== 3) process.exit(3);
    console.log('tfjs-node ' + tf.version['tfjs-node'] + ', libtensorflow ' + tf.backend().binding.TF_Version);
  `;
  const result = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  return { ok: result.status === 0, output: (result.stdout + result.stderr).trim() };
}

function packageDir() {
  try {
    const require = createRequire(join(ROOT, 'package.json'));
    return dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return undefined;
  }
}

function ensurePackageFiles() {
  let dir = packageDir();
  if (dir) return dir;
  // npm < 11 runs tfjs-node's failing download script and drops the optional dependency;
  // reinstall the locked tree without install scripts to get its files back.
  log('@tensorflow/tfjs-node is not installed; installing it without its download script');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  run(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--include=optional'], {
    cwd: ROOT,
  });
  dir = packageDir();
  if (!dir) throw new Error('@tensorflow/tfjs-node could not be installed from the npm registry');
  return dir;
}

function tryOfficialInstall(dir) {
  log('trying the official libtensorflow download');
  const result = run(process.execPath, ['scripts/install.js'], {
    cwd: dir,
    timeout: OFFICIAL_INSTALL_TIMEOUT_MS,
    stdio: 'pipe',
  });
  if (!result.ok) log(`official download unavailable (${result.reason})`);
  return result.ok && probe().ok;
}

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'vcp-exp', 'wheels');
}

function findWheel(dir) {
  if (!existsSync(dir)) return undefined;
  const name = readdirSync(dir).find((f) => /^tensorflow_cpu-2\.21\.0-.*\.whl$/.test(f));
  return name ? join(dir, name) : undefined;
}

function python() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ['-c', 'import sys; print(sys.version_info[0])'], {
      encoding: 'utf8',
    });
    if (r.status === 0 && r.stdout.trim() === '3') return candidate;
  }
  throw new Error(
    'Python 3 with pip is needed to fetch the TensorFlow C library from PyPI (apt-get install python3-pip)',
  );
}

function fetchWheel(py) {
  const dir = cacheDir();
  let wheel = findWheel(dir);
  if (wheel) return wheel;
  log(`downloading ${TF_WHEEL} from PyPI (about 270 MB, once; cached in ${dir})`);
  mkdirSync(dir, { recursive: true });
  const r = run(py, [
    '-m',
    'pip',
    'download',
    '--quiet',
    '--no-deps',
    '--only-binary=:all:',
    TF_WHEEL,
    '-d',
    dir,
  ]);
  wheel = findWheel(dir);
  if (!r.ok || !wheel)
    throw new Error(`pip could not download ${TF_WHEEL}: ${r.reason ?? 'no wheel found'}`);
  return wheel;
}

/** Copies the C API libraries and headers out of the wheel into tfjs-node's deps/. */
function stageDeps(py, wheel, dir) {
  const deps = join(dir, 'deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, 'lib'), { recursive: true });
  const extract = `
import sys, zipfile, shutil, os
wheel, deps = sys.argv[1], sys.argv[2]
wanted_libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
header_prefixes = ('tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/ctstring',
                   'tensorflow/include/tsl/platform/ctstring', 'tensorflow/include/xla/tsl/c/')
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith('/'):
            continue
        if name in wanted_libs:
            target = os.path.join(deps, 'lib', os.path.basename(name))
        elif name.startswith(header_prefixes):
            target = os.path.join(deps, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
`;
  const r = run(py, ['-c', extract, wheel, deps]);
  if (!r.ok) throw new Error(`could not unpack ${wheel}: ${r.reason}`);
  const lib = join(deps, 'lib');
  // binding.gyp links -ltensorflow -ltensorflow_framework; in 2.21 the C API lives in _cc.
  symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so'));
  symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so.2'));
  symlinkSync('libtensorflow_framework.so.2', join(lib, 'libtensorflow_framework.so'));
}

function buildAddon(dir) {
  log("building the tfjs-node addon against the wheel's TensorFlow C API (about a minute)");
  const preGyp = join(
    dirname(createRequire(join(dir, 'package.json')).resolve('@mapbox/node-pre-gyp/package.json')),
    'bin',
    'node-pre-gyp',
  );
  const r = run(process.execPath, [preGyp, 'install', '--build-from-source', '--silent'], {
    cwd: dir,
  });
  if (!r.ok)
    throw new Error(
      `building the addon failed: ${r.reason} (a C++ compiler, make and python3 are needed: apt-get install build-essential)`,
    );
}

function main() {
  const before = probe();
  if (before.ok) {
    log(`native backend ready (${before.output})`);
    return;
  }
  const dir = ensurePackageFiles();
  if (!skipOfficial && tryOfficialInstall(dir)) {
    log(`native backend ready from the official download (${probe().output})`);
    return;
  }
  const py = python();
  const wheel = fetchWheel(py);
  stageDeps(py, wheel, dir);
  buildAddon(dir);
  const after = probe();
  if (!after.ok) throw new Error(`the addon was built but does not load:\n${after.output}`);
  log(`native backend ready, built from ${TF_WHEEL} (${after.output})`);
}

try {
  main();
} catch (error) {
  console.error(`[setup:native] native TensorFlow backend not available: ${error.message}`);
  console.error(
    '[setup:native] vcp-exp will run on the wasm backend (about 6x slower). Retry with: npm run setup:native',
  );
  if (strict) process.exit(1);
}
