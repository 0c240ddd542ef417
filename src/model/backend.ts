/**
 * Backend selection: native TensorFlow (GPU, then CPU) wherever it loads, wasm as the
 * zero-setup fallback, pure JS as the last resort. `--backend` overrides the choice.
 *
 * Measured on a 2-core CPU: native TF ~120 GFLOP/s on a 1024³ matMul, wasm ~20 (one thread:
 * wasm threads are off in Node), pure JS ~0.5 — native is the only practical choice.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { loadNativeTfjs, TFJS_NODE } from './native.js';
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
}

const require = createRequire(import.meta.url);
const NATIVE_HINT =
  'native TensorFlow backend not available (about 6x faster than wasm): run `vcp-exp setup native` (in a checkout: npm run setup:native)';

export class BackendError extends UserError {
  override name = 'BackendError';
}

/** True when an NVIDIA GPU is visible to this process. */
export function gpuVisible(): boolean {
  if (process.env.CUDA_VISIBLE_DEVICES === '' || process.env.CUDA_VISIBLE_DEVICES === '-1')
    return false;
  const gpus = '/proc/driver/nvidia/gpus';
  return existsSync(gpus) && readdirSync(gpus).length > 0;
}

function loadNative(): Omit<BackendInfo, 'threads'> {
  // Silence TensorFlow's C++ info logging unless the user asked for it.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const errors: string[] = [];
  if (gpuVisible()) {
    // The GPU build is the user's to install beside vcp-exp (npm install @tensorflow/tfjs-node-gpu).
    try {
      require('@tensorflow/tfjs-node-gpu');
      return { name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', device: 'gpu' };
    } catch (error) {
      errors.push(`@tensorflow/tfjs-node-gpu: ${firstLine(error)}`);
    }
  }
  try {
    loadNativeTfjs();
    return { name: 'tensorflow', package: TFJS_NODE, device: 'cpu' };
  } catch (error) {
    errors.push(`${TFJS_NODE}: ${firstLine(error)}`);
  }
  throw new BackendError(`${NATIVE_HINT}\n  ${errors.join('\n  ')}`);
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
      return { ...native, threads: threadsOf('tensorflow') };
    } catch (error) {
      if (choice === 'tensorflow') throw error;
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
 * One line for logs, e.g. "tensorflow (cpu, 2 threads, @tensorflow/tfjs-node)"; when a faster
 * backend was skipped, the hint saying how to get it follows on the same line.
 */
export function describeBackend(info: BackendInfo): string {
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  const line = `${info.name} (${info.device}, ${threads}, ${info.package})`;
  return info.hint ? `${line}; ${info.hint}` : line;
}
