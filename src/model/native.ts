/**
 * Where the native TensorFlow backend lives and how it is loaded. It comes in two builds of
 * the same tfjs addon: `cpu` (@tensorflow/tfjs-node, ~0.8 GB) and `gpu`
 * (@tensorflow/tfjs-node-gpu with TensorFlow's CUDA kernels and the CUDA 12 libraries,
 * ~4 GB). `vcp-exp setup` builds them in the user cache, side by side,
 * `<cache root>/native/<package>-<version>-<platform>-<arch>/`, not in the package: an
 * installed or npx-run vcp-exp gets them too, and a reinstall keeps them.
 *
 * The cache's tfjs-node must register its kernels with *our* tfjs (one engine per process),
 * so while it loads, its requests for `@tensorflow/tfjs*` resolve to the packages vcp-exp
 * itself uses; the cache holds no other tfjs (setup removes it), so nothing can load twice.
 * Both builds register the `tensorflow` backend: a process loads one of them, never both.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { cacheRoot } from '../io/cache-dir.js';

const require = createRequire(import.meta.url);

export type NativeBuild = 'cpu' | 'gpu';
export const NATIVE_PACKAGES = {
  cpu: '@tensorflow/tfjs-node',
  gpu: '@tensorflow/tfjs-node-gpu',
} as const satisfies Record<NativeBuild, string>;
export const TFJS_NODE = NATIVE_PACKAGES.cpu;
export const TFJS_NODE_GPU = NATIVE_PACKAGES.gpu;

/** The tfjs version vcp-exp runs; the native build must match it. */
export function tfjsVersion(): string {
  const file = require.resolve('@tensorflow/tfjs/package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The directory `vcp-exp setup` installs a build into (an npm prefix). */
export function nativeDir(
  build: NativeBuild = 'cpu',
  env: NodeJS.ProcessEnv = process.env,
): string {
  const name = NATIVE_PACKAGES[build].split('/')[1];
  return join(
    cacheRoot(env),
    'native',
    `${name}-${tfjsVersion()}-${process.platform}-${process.arch}`,
  );
}

/** The build's package directory inside nativeDir(). */
export function nativePackageDir(
  build: NativeBuild = 'cpu',
  env: NodeJS.ProcessEnv = process.env,
): string {
  return join(nativeDir(build, env), 'node_modules', ...NATIVE_PACKAGES[build].split('/'));
}

/** Requests from the cache's tfjs-node(-gpu) that must get our packages: tfjs and its parts. */
const SHARED = /^@tensorflow\/tfjs(?!-node)(-[a-z-]+)?(\/|$)/;

type ResolveFilename = (
  request: string,
  parent: { filename?: string } | undefined,
  ...rest: unknown[]
) => string;

/**
 * Requires `pkg` (tfjs-node or tfjs-node-gpu) installed in `dir` (an npm prefix), its
 * `@tensorflow/tfjs*` imports resolved to vcp-exp's own. Throws when it is missing or its addon
 * does not load.
 */
export function requireNativeFrom(dir: string, pkg: string = TFJS_NODE): void {
  const loader = Module as unknown as { _resolveFilename: ResolveFilename };
  const original = loader._resolveFilename;
  // Node names modules by their real path: a symlinked cache (or part of it) must match too.
  const inside = join(realpathSync(dir), 'node_modules') + sep;
  loader._resolveFilename = function (request, parent, ...rest) {
    if (SHARED.test(request) && parent?.filename?.startsWith(inside))
      return require.resolve(request);
    return original.call(this, request, parent, ...rest);
  };
  try {
    createRequire(join(dir, 'package.json'))(pkg);
  } finally {
    loader._resolveFilename = original;
  }
}

let loaded: { build: NativeBuild; from: string } | undefined;

/** The build this process loaded, if any. */
export function loadedNativeBuild(): NativeBuild | undefined {
  return loaded?.build;
}

/**
 * Loads a build of the native backend: the cache's; for the CPU build, when the cache has
 * none, a tfjs-node installed beside vcp-exp (a checkout set up by an earlier
 * `npm run setup`, or installed by hand). Returns where it came from. The GPU build is only
 * the cache's: the stock tfjs-node-gpu downloads a CUDA 11 TensorFlow that today's machines
 * lack. Loading is once per process; asking for the other build afterwards throws.
 */
export function loadNativeTfjs(
  build: NativeBuild = 'cpu',
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (loaded) {
    if (loaded.build !== build)
      throw new Error(
        `this process already loaded the ${loaded.build.toUpperCase()} build of the native backend; the ${build.toUpperCase()} build cannot load beside it`,
      );
    return loaded.from;
  }
  const dir = nativeDir(build, env);
  const pkg = NATIVE_PACKAGES[build];
  if (existsSync(nativePackageDir(build, env))) {
    requireNativeFrom(dir, pkg);
    loaded = { build, from: dir };
    return dir;
  }
  if (build === 'gpu')
    throw new Error(
      `not built: ${nativePackageDir(build, env)} does not exist (vcp-exp setup --gpu builds it)`,
    );
  try {
    require(pkg);
  } catch (error) {
    throw new Error(
      `not built: ${nativePackageDir(build, env)} does not exist (and ${pkg} beside vcp-exp does not load: ${String((error as Error).message).split('\n')[0]})`,
      { cause: error },
    );
  }
  loaded = { build, from: require.resolve(pkg) };
  return loaded.from;
}
