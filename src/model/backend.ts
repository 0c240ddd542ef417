/**
 * Backend selection: native TensorFlow wherever it loads — its GPU build when TensorFlow lists
 * a GPU, else its CPU build — then wasm as the zero-setup fallback, pure JS as the last resort.
 * `--backend` overrides the choice; VCP_EXP_NATIVE_BUILD=cpu|gpu picks the native build.
 *
 * Measured on a 2-core CPU: native TF ~120 GFLOP/s on a 1024³ matMul, wasm ~20 (one thread:
 * wasm threads are off in Node), pure JS ~0.5 — native is the only practical choice.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import {
  describeGpu,
  gpuBlocker,
  kernelWarning,
  listGpus,
  pinOneGpu,
  pinnedGpu,
  type GpuBlocker,
  type GpuInfo,
} from './gpu.js';
import { loadNativeTfjs, nativePackageDir, NATIVE_PACKAGES, type NativeBuild } from './native.js';
import { tf } from './tf.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** tfjs backend name in use. */
  name: BackendName;
  /** npm package that provides it. */
  package: string;
  device: 'gpu' | 'cpu';
  /** Threads the backend computes with. */
  threads: number;
  /** Why a faster backend was not used, and how to get it; absent when none was skipped. */
  hint?: string;
  /**
   * The GPU computed on (device 'gpu'): `gpu:<nvidia-smi index>`, what it is, and what may go
   * wrong on it (gpu.ts kernelWarning).
   */
  gpu?: { id: string; info?: GpuInfo; warning?: string };
  /** Why no GPU computes (device 'cpu'). */
  noGpu?: {
    reason: string;
    /** Worth saying wherever the backend is logged: a driver is there or the GPU build loaded. */
    notable: boolean;
  };
}

const require = createRequire(import.meta.url);
const NATIVE_HINT =
  'native TensorFlow backend not available (about 6x faster than wasm): run `vcp-exp setup native` (in a checkout: npm run setup:native)';

export class BackendError extends UserError {
  override name = 'BackendError';
}

/** VCP_EXP_NATIVE_BUILD: which native build to load (unset: the GPU one when it can serve). */
export function nativeBuildOverride(env: NodeJS.ProcessEnv = process.env): NativeBuild | undefined {
  const value = env.VCP_EXP_NATIVE_BUILD;
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if (value === 'cpu' || value === 'gpu') return value;
  throw new BackendError(`VCP_EXP_NATIVE_BUILD: got "${value}", expected cpu, gpu or auto`);
}

/** Why the GPU build is not even tried; undefined when it is worth loading. */
export function gpuBuildBlocker(
  env: NodeJS.ProcessEnv = process.env,
): { kind: GpuBlocker['kind'] | 'not-built'; reason: string } | undefined {
  return (
    gpuBlocker(env) ??
    (nativeGpuBuilt(env)
      ? undefined
      : {
          kind: 'not-built',
          reason:
            'the GPU build is not set up: run `vcp-exp setup --gpu` (in a checkout: npm run setup -- --gpu)',
        })
  );
}

export function nativeGpuBuilt(env: NodeJS.ProcessEnv = process.env): boolean {
  return existsSync(nativePackageDir('gpu', env));
}

interface NativeLoaded {
  package: string;
  build: NativeBuild;
  /** Why the GPU build was not loaded, and whether that is worth saying in every log. */
  skipped?: { reason: string; notable: boolean };
}

function loadNative(): NativeLoaded {
  // Silence TensorFlow's C++ info logging unless the user asked for it.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const forced = nativeBuildOverride();
  const errors: string[] = [];
  let skipped: NativeLoaded['skipped'];
  if (forced === 'cpu') skipped = { reason: 'VCP_EXP_NATIVE_BUILD=cpu', notable: false };
  else if (forced === undefined) {
    const blocker = gpuBuildBlocker();
    // No driver, or GPUs hidden on purpose: nothing a CPU machine's logs need to repeat.
    if (blocker)
      skipped = {
        reason: blocker.reason,
        notable: !['no-driver', 'hidden'].includes(blocker.kind),
      };
  }
  if (skipped === undefined) {
    pinOneGpu();
    try {
      loadNativeTfjs('gpu');
      return { package: NATIVE_PACKAGES.gpu, build: 'gpu' };
    } catch (error) {
      if (forced === 'gpu')
        throw new BackendError(
          `the GPU build (VCP_EXP_NATIVE_BUILD=gpu) did not load: ${firstLine(error)}`,
          { hint: 'run `vcp-exp setup --gpu`' },
        );
      skipped = { reason: `the GPU build did not load: ${firstLine(error)}`, notable: true };
      errors.push(`${NATIVE_PACKAGES.gpu}: ${firstLine(error)}`);
    }
  }
  try {
    loadNativeTfjs('cpu');
    return { package: NATIVE_PACKAGES.cpu, build: 'cpu', skipped };
  } catch (error) {
    errors.push(`${NATIVE_PACKAGES.cpu}: ${firstLine(error)}`);
  }
  throw new BackendError(`${NATIVE_HINT}\n  ${errors.join('\n  ')}`);
}

/** After the `tensorflow` backend is active: the GPU it computes on, or why none. */
function nativeDevice(native: NativeLoaded): Pick<BackendInfo, 'device' | 'gpu' | 'noGpu'> {
  if (native.build === 'cpu')
    return { device: 'cpu', noGpu: native.skipped ?? { reason: 'the CPU build', notable: false } };
  const usingGpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
  if (!usingGpu) {
    const before = gpuBlocker()?.reason;
    const why = before ?? '`vcp-exp backend` shows what TensorFlow said';
    const reason = `TensorFlow saw no GPU device (the GPU build computes on its CPU kernels): ${why}`;
    return { device: 'cpu', noGpu: { reason, notable: true } };
  }
  const smi = listGpus();
  const info = 'gpus' in smi ? pinnedGpu(smi.gpus) : undefined;
  const warning = info ? kernelWarning(info) : undefined;
  return {
    device: 'gpu',
    gpu: { id: `gpu:${info?.index ?? process.env.CUDA_VISIBLE_DEVICES}`, info, warning },
  };
}

async function loadWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  wasm.setWasmPaths(join(dist, 'dist') + '/');
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split('\n')[0];
}

function threadsOf(name: BackendName): number {
  if (name === 'tensorflow') {
    const configured = Number(process.env.TF_NUM_INTRAOP_THREADS);
    return configured > 0 ? configured : availableParallelism();
  }
  if (name === 'wasm') {
    const backend = tf.backend() as unknown as { getThreadsCount?: () => number };
    return typeof backend.getThreadsCount === 'function' ? backend.getThreadsCount() : 1;
  }
  return 1;
}

async function activate(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new BackendError(`the ${name} backend failed to initialise`);
  await tf.ready();
}

/**
 * Selects and initialises a backend. `auto` takes the fastest that loads; naming one makes
 * it mandatory (an error says why it cannot be had).
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendInfo> {
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    throw new BackendError(`unknown backend "${choice}"; accepted: ${BACKEND_CHOICES.join(', ')}`);
  }
  let hint: string | undefined;
  if (choice === 'auto' || choice === 'tensorflow') {
    try {
      const native = loadNative();
      await activate('tensorflow');
      return {
        name: 'tensorflow',
        package: native.package,
        ...nativeDevice(native),
        threads: threadsOf('tensorflow'),
      };
    } catch (error) {
      // A native build asked for by name (VCP_EXP_NATIVE_BUILD) is mandatory too.
      if (choice === 'tensorflow' || nativeBuildOverride()) throw error;
      hint = NATIVE_HINT;
    }
  }
  if (choice === 'auto' || choice === 'wasm') {
    try {
      await loadWasm();
      await activate('wasm');
      return {
        name: 'wasm',
        package: '@tensorflow/tfjs-backend-wasm',
        device: 'cpu',
        threads: threadsOf('wasm'),
        hint,
      };
    } catch (error) {
      if (choice === 'wasm') throw new BackendError(`wasm backend failed: ${firstLine(error)}`);
      hint = `${hint ?? ''}; wasm backend failed: ${firstLine(error)}`.replace(/^; /, '');
    }
  }
  await activate('cpu');
  return { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', device: 'cpu', threads: 1, hint };
}

/**
 * One line for logs, e.g. "tensorflow (cpu, 2 threads, @tensorflow/tfjs-node)"; why a GPU
 * is not used (when that is news: a driver is there, or the GPU build loaded) and, when a faster
 * backend was skipped, the hint saying how to get it follow on the same line.
 */
export function describeBackend(
  info: BackendInfo,
  { gpuNote = true }: { gpuNote?: boolean } = {},
): string {
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  const line =
    info.device === 'gpu'
      ? `${info.name} (${describeDevice(info)}, ${info.package})`
      : `${info.name} (${info.device}, ${threads}, ${info.package})`;
  const notes = [
    gpuNote && info.noGpu?.notable ? `GPU not used: ${info.noGpu.reason}` : undefined,
    info.gpu?.warning ? `warning: ${info.gpu.warning}` : undefined,
    info.hint,
  ].filter(Boolean);
  return [line, ...notes].join('; ');
}

/** The device computed on: "cpu", or "gpu:0 (NVIDIA A100-SXM4-80GB, 80 GiB, compute capability 8.0)". */
export function describeDevice(info: BackendInfo): string {
  if (info.device !== 'gpu' || !info.gpu) return 'cpu';
  return info.gpu.info ? `${info.gpu.id} (${describeGpu(info.gpu.info)})` : info.gpu.id;
}
