/**
 * `vcp-exp setup native` and `vcp-exp setup --gpu`: installs a build of the native backend into
 * the user cache (native.ts says where) and makes its addon load, offline if need be. One
 * recipe, two builds:
 *
 * - cpu: @tensorflow/tfjs-node. Its own install script downloads libtensorflow 2.9.1 from a host
 *   that air-gapped networks (and this project's CI) cannot reach; that is tried first, and when
 *   it fails the addon is built against the TensorFlow C API inside PyPI's tensorflow-cpu wheel.
 * - gpu: @tensorflow/tfjs-node-gpu, always built against PyPI's tensorflow wheel (its stock
 *   download is a CUDA 11 libtensorflow today's machines lack), whose C library carries the
 *   CUDA 12 kernels, with the CUDA 12 runtime from the nvidia-*-cu12 wheels beside it
 *   (native-cuda.ts). Only the NVIDIA driver must be on the machine.
 *
 * The wheels are pinned with their hashes (native-wheels.ts). npm installs the package with
 * --ignore-scripts, so its download script never runs. Idempotent: a build that loads (and, for
 * the GPU build, was made from the current lock) is left alone.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { nodeArgsFor, sibling } from '../io/node-entry.js';
import { checkCudaLibraries, installCudaLibraries } from './native-cuda.js';
import {
  fetchWheels,
  findPython,
  formatLock,
  readLock,
  type LockedWheel,
} from './native-wheels.js';
import {
  NATIVE_PACKAGES,
  nativeDir,
  nativePackageDir,
  tfjsVersion,
  type NativeBuild,
} from './native.js';

const OFFICIAL_INSTALL_TIMEOUT_MS = 90_000;
/** Written into nativeDir() once a build from the wheels loads: what it was made from. */
export const BUILD_MANIFEST = 'vcp-exp-build.json';

export interface NativeSetupOptions {
  build?: NativeBuild;
  /** CPU build: skip tfjs-node's own download and build from the PyPI wheel straight away. */
  wheel?: boolean;
  log: (line: string) => void;
}

export interface BuildManifest {
  build: NativeBuild;
  package: string;
  tfjs: string;
  /** sha256 of the lock's requirements (formatLock), to tell a stale build. */
  lock: string;
  wheels: string[];
  /** GPU build: soname → where TensorFlow's loader found it (check_cuda_libs.py). */
  cuda?: Record<string, string>;
  seconds: number;
  downloadedBytes: number;
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

/**
 * Loads a build as vcp-exp will, in a fresh process, and runs one matMul on it. `tfLog` keeps
 * TensorFlow's own log (what it says about CUDA and the GPU) in the output.
 */
export function probeNative(
  build: NativeBuild = 'cpu',
  { tfLog = false }: { tfLog?: boolean } = {},
): { ok: boolean; output: string } {
  const result = spawnSync(
    process.execPath,
    [...nodeArgsFor(sibling(import.meta.url, './native-probe')), build],
    {
      encoding: 'utf8',
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: tfLog ? '0' : '2' },
      timeout: 300_000,
    },
  );
  const ok = result.status === 0;
  // TensorFlow greets on stderr even when all is well; only a failure (or tfLog) needs it.
  return {
    ok,
    output: (ok && !tfLog ? result.stdout : `${result.stdout}${result.stderr}`).trim(),
  };
}

/** npm, as the command that runs us found it (npm_execpath under npm/npx), else from PATH. */
function npm(): { cmd: string; args: string[] } {
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.js$/.test(execpath) && existsSync(execpath))
    return { cmd: process.execPath, args: [execpath] };
  return { cmd: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

/** The build's npm package (without running its download script) in the cache, and no other tfjs. */
function installPackage(build: NativeBuild, log: (line: string) => void): string {
  const dir = nativeDir(build);
  const pkgName = NATIVE_PACKAGES[build];
  const version = tfjsVersion();
  if (!existsSync(join(nativePackageDir(build), 'package.json'))) {
    log(`installing ${pkgName}@${version} into ${dir} (without its download script)`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'package.json'),
      `${JSON.stringify({ private: true, description: `the native TensorFlow backend of vcp-exp, ${build.toUpperCase()} build (vcp-exp setup)` }, null, 2)}\n`,
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
        `${pkgName}@${version}`,
      ],
      { cwd: dir },
    );
    if (!r.ok || !existsSync(join(nativePackageDir(build), 'package.json')))
      throw new Error(
        `${pkgName}@${version} could not be installed from the npm registry: ${r.reason ?? 'not found after npm install'}`,
      );
  }
  // vcp-exp's own tfjs is the one the addon must register with (native.ts).
  const scope = join(dir, 'node_modules', '@tensorflow');
  const own = pkgName.split('/')[1];
  for (const name of readdirSync(scope))
    if (name !== own) rmSync(join(scope, name), { recursive: true, force: true });
  return nativePackageDir(build);
}

function tryOfficialInstall(pkg: string, log: (line: string) => void): boolean {
  log('trying the official libtensorflow download');
  const result = run(process.execPath, ['scripts/install.js'], {
    cwd: pkg,
    timeout: OFFICIAL_INSTALL_TIMEOUT_MS,
    stdio: 'pipe',
  });
  if (!result.ok) log(`official download unavailable (${result.reason})`);
  return result.ok && probeNative('cpu').ok;
}

/** Copies the C API libraries and headers out of a TensorFlow wheel into the package's deps/. */
function stageDeps(py: string, wheel: string, pkg: string): string {
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
  return deps;
}

function buildAddon(pkg: string, log: (line: string) => void): void {
  log("building the addon against the wheel's TensorFlow C API (about a minute)");
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

function lockDigest(lock: readonly LockedWheel[]): string {
  return createHash('sha256').update(formatLock(lock)).digest('hex');
}

/** The manifest of a build made from the wheels, if it has one. */
export function readBuildManifest(build: NativeBuild): BuildManifest | undefined {
  const file = join(nativeDir(build), BUILD_MANIFEST);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as BuildManifest;
  } catch {
    return undefined;
  }
}

/** The GPU build counts as set up only when it was made from the current lock. */
function upToDate(build: NativeBuild): boolean {
  if (build === 'cpu') return true;
  return readBuildManifest(build)?.lock === lockDigest(readLock(build));
}

function label(build: NativeBuild): string {
  return build === 'gpu' ? 'GPU build' : 'native backend';
}

/** The locked wheels are Linux x86_64 ones (native-wheels.ts WHEEL_TARGET): elsewhere, why not. */
export function wheelPlatformProblem(
  build: NativeBuild,
  platform: string = process.platform,
  arch: string = process.arch,
): string | undefined {
  if (platform === 'linux' && arch === 'x64') return undefined;
  return build === 'gpu'
    ? `the GPU build is for Linux x86_64 only (this is ${platform}-${arch}): TensorFlow publishes its CUDA build for no other platform`
    : `building from PyPI's TensorFlow wheel is for Linux x86_64 only (this is ${platform}-${arch}); here only tfjs-node's official download can provide the native backend`;
}

/** Throws an Error saying what failed and what is needed. */
export function setupNative({ build = 'cpu', wheel, log }: NativeSetupOptions): void {
  const started = Date.now();
  const before = probeNative(build);
  if (before.ok && upToDate(build)) {
    log(`${label(build)} ready (${before.output})`);
    return;
  }
  const platformProblem = wheelPlatformProblem(build);
  if (build === 'gpu' && platformProblem) throw new Error(platformProblem);
  const pkg = installPackage(build, log);
  const skipOfficial = build === 'gpu' || wheel || process.env.VCP_EXP_NATIVE_FROM_WHEEL === '1';
  if (!skipOfficial && tryOfficialInstall(pkg, log)) {
    log(`native backend ready from the official download (${probeNative().output})`);
    return;
  }
  if (platformProblem) throw new Error(platformProblem);
  const py = findPython();
  const lock = readLock(build);
  const tensorflow = lock.findIndex((w) => /^tensorflow(-cpu)?$/.test(w.name));
  if (tensorflow < 0) throw new Error(`the ${build} lock pins no TensorFlow wheel`);
  const { files, downloadedBytes } = fetchWheels(py, lock, log);
  const deps = stageDeps(py, files[tensorflow]!, pkg);
  if (build === 'gpu') {
    log('installing the CUDA 12 libraries from the nvidia-*-cu12 wheels');
    installCudaLibraries(
      py,
      lock.filter((_, i) => i !== tensorflow),
      deps,
    );
  }
  buildAddon(pkg, log);
  const after = probeNative(build);
  if (!after.ok) throw new Error(`the addon was built but does not load:\n${after.output}`);
  let cuda: Record<string, string> | undefined;
  if (build === 'gpu') {
    const check = checkCudaLibraries(py, deps);
    if (!check.ok)
      throw new Error(
        `TensorFlow would not find all its CUDA libraries:\n  ${check.problems.join('\n  ')}`,
      );
    cuda = check.tensorflowOpens;
    log(
      `TensorFlow's loader finds ${Object.keys(cuda).join(', ')} in ${deps}, and NVRTC where cuDNN, cuBLASLt and cuFFT look`,
    );
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  const manifest: BuildManifest = {
    build,
    package: NATIVE_PACKAGES[build],
    tfjs: tfjsVersion(),
    lock: lockDigest(lock),
    wheels: lock.map((w) => `${w.name}==${w.version}`),
    cuda,
    seconds,
    downloadedBytes,
  };
  writeFileSync(join(nativeDir(build), BUILD_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  const downloaded =
    downloadedBytes > 0 ? `, ${(downloadedBytes / 1e9).toFixed(2)} GB downloaded` : '';
  log(
    `${label(build)} ready, built from ${lock[tensorflow]!.name}==${lock[tensorflow]!.version} in ${seconds} s${downloaded} (${after.output})`,
  );
}
