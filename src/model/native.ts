/**
 * Where the native TensorFlow backend (@tensorflow/tfjs-node: its JS, its addon and
 * libtensorflow, ~0.8 GB) lives and how it is loaded. `vcp-exp setup native` builds it in the
 * user cache, `<cache root>/native/tfjs-node-<version>-<platform>-<arch>/`, not in the
 * package: an installed or npx-run vcp-exp gets it too, and a reinstall keeps it.
 *
 * That copy of tfjs-node must register its kernels with *our* tfjs (one engine per process),
 * so while it loads, its requests for `@tensorflow/tfjs*` resolve to the packages vcp-exp
 * itself uses; the cache holds no other tfjs (setup removes it), so nothing can load twice.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { cacheRoot } from '../io/cache-dir.js';

const require = createRequire(import.meta.url);
export const TFJS_NODE = '@tensorflow/tfjs-node';

/** The tfjs version vcp-exp runs; the native build must match it. */
export function tfjsVersion(): string {
  const file = require.resolve('@tensorflow/tfjs/package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** The directory `vcp-exp setup native` installs into (an npm prefix). */
export function nativeDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(
    cacheRoot(env),
    'native',
    `tfjs-node-${tfjsVersion()}-${process.platform}-${process.arch}`,
  );
}

/** tfjs-node's package directory inside nativeDir(). */
export function nativePackageDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(nativeDir(env), 'node_modules', ...TFJS_NODE.split('/'));
}

/** Requests from the cache's tfjs-node that must get our packages: tfjs and its parts. */
const SHARED = /^@tensorflow\/tfjs(?!-node)(-[a-z-]+)?(\/|$)/;

type ResolveFilename = (
  request: string,
  parent: { filename?: string } | undefined,
  ...rest: unknown[]
) => string;

/**
 * Requires the tfjs-node installed in `dir` (an npm prefix), its `@tensorflow/tfjs*` imports
 * resolved to vcp-exp's own. Throws when it is missing or its addon does not load.
 */
export function requireNativeFrom(dir: string): void {
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
    createRequire(join(dir, 'package.json'))(TFJS_NODE);
  } finally {
    loader._resolveFilename = original;
  }
}

/**
 * Loads the native backend: the cache build when there is one, else a tfjs-node installed
 * beside vcp-exp (a checkout set up by an earlier `npm run setup`, or installed by hand).
 * Returns where it came from.
 */
export function loadNativeTfjs(env: NodeJS.ProcessEnv = process.env): string {
  const dir = nativeDir(env);
  if (existsSync(nativePackageDir(env))) {
    requireNativeFrom(dir);
    return dir;
  }
  try {
    require(TFJS_NODE);
  } catch (error) {
    throw new Error(
      `not built: ${nativePackageDir(env)} does not exist (and ${TFJS_NODE} beside vcp-exp does not load: ${String((error as Error).message).split('\n')[0]})`,
      { cause: error },
    );
  }
  return require.resolve(TFJS_NODE);
}
