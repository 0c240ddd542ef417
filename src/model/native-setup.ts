/**
 * `vcp-exp setup native`: installs @tensorflow/tfjs-node into the user cache (native.ts says
 * where) and makes its addon load, offline if need be.
 *
 * tfjs-node's own install script downloads libtensorflow 2.9.1 from a host that air-gapped
 * networks (and this project's CI) cannot reach. Its addon builds unchanged against the
 * TensorFlow C API shipped inside PyPI's tensorflow-cpu wheel, so when the normal route fails
 * the two shared libraries and the C headers are taken from that wheel and the addon is built
 * here. Idempotent: when the backend already loads, nothing is done.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { cacheRoot } from '../io/cache-dir.js';
import { nodeArgsFor, sibling } from '../io/node-entry.js';
import { nativeDir, nativePackageDir, TFJS_NODE, tfjsVersion } from './native.js';

const TF_WHEEL = 'tensorflow-cpu==2.21.0';
const OFFICIAL_INSTALL_TIMEOUT_MS = 90_000;

export interface NativeSetupOptions {
  /** Skip tfjs-node's own download and build from the PyPI wheel straight away. */
  wheel?: boolean;
  log: (line: string) => void;
}

function nodeHeadersEnv(): NodeJS.ProcessEnv {
  // node-gyp would download Node's headers; use the local ones when they are installed.
  const env = { ...process.env };
  // node-pre-gyp builds with npm's node-gyp; under npx it may not find npm by itself.
  const npmCli = env.npm_execpath;
  if (!env.npm_config_node_gyp && npmCli) {
    const gyp = join(dirname(dirname(npmCli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(gyp)) env.npm_config_node_gyp = gyp;
  }
  if (!env.npm_config_nodedir) {
    const local = dirname(dirname(process.execPath));
    if (existsSync(join(local, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = local;
    else if (existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  }
  return env;
}

function run(
  cmd: string,
  argv: string[],
  options: SpawnSyncOptions = {},
): { ok: boolean; reason?: string } {
  const result = spawnSync(cmd, argv, { stdio: 'inherit', env: nodeHeadersEnv(), ...options });
  if (result.error) return { ok: false, reason: result.error.message };
  if (result.status !== 0)
    return { ok: false, reason: `${cmd} exited with ${result.status ?? result.signal}` };
  return { ok: true };
}

/** Loads the backend as vcp-exp will, in a fresh process, and runs one matMul on it. */
export function probeNative(): { ok: boolean; output: string } {
  const result = spawnSync(
    process.execPath,
    nodeArgsFor(sibling(import.meta.url, './native-probe')),
    { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } },
  );
  const ok = result.status === 0;
  // TensorFlow greets on stderr even when all is well; only a failure needs it.
  return { ok, output: (ok ? result.stdout : `${result.stdout}${result.stderr}`).trim() };
}

/** npm, as the command that runs us found it (npm_execpath under npm/npx), else from PATH. */
function npm(): { cmd: string; args: string[] } {
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.js$/.test(execpath) && existsSync(execpath))
    return { cmd: process.execPath, args: [execpath] };
  return { cmd: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

/** tfjs-node's files (without running its download script) in the cache, and no other tfjs. */
function installPackage(log: (line: string) => void): string {
  const dir = nativeDir();
  const version = tfjsVersion();
  if (!existsSync(join(nativePackageDir(), 'package.json'))) {
    log(`installing ${TFJS_NODE}@${version} into ${dir} (without its download script)`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      `${JSON.stringify({ private: true, description: 'the native TensorFlow backend of vcp-exp (vcp-exp setup native)' }, null, 2)}\n`,
    );
    const { cmd, args } = npm();
    const r = run(
      cmd,
      [
        ...args,
        'install',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--save-exact',
        `${TFJS_NODE}@${version}`,
      ],
      { cwd: dir },
    );
    if (!r.ok || !existsSync(join(nativePackageDir(), 'package.json')))
      throw new Error(
        `${TFJS_NODE}@${version} could not be installed from the npm registry: ${r.reason ?? 'not found after npm install'}`,
      );
  }
  // vcp-exp's own tfjs is the one tfjs-node must register with (native.ts).
  const scope = join(dir, 'node_modules', '@tensorflow');
  for (const name of readdirSync(scope))
    if (name !== 'tfjs-node') rmSync(join(scope, name), { recursive: true, force: true });
  return nativePackageDir();
}

function tryOfficialInstall(pkg: string, log: (line: string) => void): boolean {
  log('trying the official libtensorflow download');
  const result = run(process.execPath, ['scripts/install.js'], {
    cwd: pkg,
    timeout: OFFICIAL_INSTALL_TIMEOUT_MS,
    stdio: 'pipe',
  });
  if (!result.ok) log(`official download unavailable (${result.reason})`);
  return result.ok && probeNative().ok;
}

function wheelDir(): string {
  return join(cacheRoot(), 'wheels');
}

function findWheel(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const name = readdirSync(dir).find((f) => /^tensorflow_cpu-2\.21\.0-.*\.whl$/.test(f));
  return name ? join(dir, name) : undefined;
}

function python(): string {
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

function fetchWheel(py: string, log: (line: string) => void): string {
  const dir = wheelDir();
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
function stageDeps(py: string, wheel: string, pkg: string): void {
  const deps = join(pkg, 'deps');
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

function buildAddon(pkg: string, log: (line: string) => void): void {
  log("building the tfjs-node addon against the wheel's TensorFlow C API (about a minute)");
  const preGyp = join(
    dirname(createRequire(join(pkg, 'package.json')).resolve('@mapbox/node-pre-gyp/package.json')),
    'bin',
    'node-pre-gyp',
  );
  const r = run(process.execPath, [preGyp, 'install', '--build-from-source', '--silent'], {
    cwd: pkg,
  });
  if (!r.ok)
    throw new Error(
      `building the addon failed: ${r.reason} (a C++ compiler, make and python3 are needed: apt-get install build-essential)`,
    );
}

/** Throws an Error saying what failed and what is needed. */
export function setupNative({ wheel, log }: NativeSetupOptions): void {
  const before = probeNative();
  if (before.ok) {
    log(`native backend ready (${before.output})`);
    return;
  }
  const pkg = installPackage(log);
  const skipOfficial = wheel || process.env.VCP_EXP_NATIVE_FROM_WHEEL === '1';
  if (!skipOfficial && tryOfficialInstall(pkg, log)) {
    log(`native backend ready from the official download (${probeNative().output})`);
    return;
  }
  const py = python();
  stageDeps(py, fetchWheel(py, log), pkg);
  buildAddon(pkg, log);
  const after = probeNative();
  if (!after.ok) throw new Error(`the addon was built but does not load:\n${after.output}`);
  log(`native backend ready, built from ${TF_WHEEL} (${after.output})`);
}
