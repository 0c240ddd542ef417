/**
 * `vcp-exp setup [native|gpu|mlflow|all] [--gpu] [--strict] [--wheel]`: everything vcp-exp
 * needs beyond `npm install`, into the user cache (src/io/cache-dir.ts), idempotent: the native
 * TensorFlow backend's CPU build and, with --gpu or whenever an NVIDIA driver is visible, its
 * GPU build (src/model/native-setup.ts), and the pinned MLflow (src/tracking/mlflow-install.ts).
 * Without --strict a part that cannot be had only warns: vcp-exp then runs on the CPU build or
 * wasm, or against a remote MLFLOW_TRACKING_URI, and says how to come back here.
 */
import { UserError } from '../errors.js';
import { gpuBlocker, type GpuBlocker } from '../model/gpu.js';
import { setupNative } from '../model/native-setup.js';
import { installMlflow } from '../tracking/mlflow-install.js';

export interface SetupCommandOptions {
  strict?: boolean;
  wheel?: boolean;
  /** Build the GPU build too, with or without a driver here. */
  gpu?: boolean;
}

type Log = (line: string) => void;

const PARTS = {
  native: {
    run: (o: SetupCommandOptions, log: Log) => setupNative({ build: 'cpu', wheel: o.wheel, log }),
    fallback:
      'vcp-exp will run on the wasm backend (about 6x slower). Retry with: vcp-exp setup native',
  },
  gpu: {
    run: (_: SetupCommandOptions, log: Log) => setupNative({ build: 'gpu', log }),
    fallback: 'vcp-exp will compute on the CPU. Retry with: vcp-exp setup --gpu',
  },
  mlflow: {
    run: (_: SetupCommandOptions, log: Log) => installMlflow(log),
    fallback:
      'a remote MLFLOW_TRACKING_URI still works; for the local server retry with: vcp-exp setup mlflow',
  },
} as const;
type Part = keyof typeof PARTS;

/**
 * The parts to set up: `all` is native, mlflow and, when a driver is visible (or --gpu), gpu.
 * `machine.blocker` is why this machine has no GPU to build for (the driver decides, not
 * CUDA_VISIBLE_DEVICES; undefined: it has one); a parameter so tests can stand in for a driver.
 */
export function chooseParts(
  part: string | undefined,
  options: SetupCommandOptions,
  log: Log,
  { blocker }: { blocker: GpuBlocker | undefined } = { blocker: gpuBlocker({}) },
): Part[] {
  const names = Object.keys(PARTS) as Part[];
  if (part !== undefined && part !== 'all' && !(names as string[]).includes(part))
    throw new UserError(`setup: got "${part}", expected one of ${names.join(', ')} or all`, {
      exitCode: 2,
    });
  if (part !== undefined && part !== 'all')
    return options.gpu && part !== 'gpu' ? [part as Part, 'gpu'] : [part as Part];
  if (options.gpu || !blocker) return ['native', 'gpu', 'mlflow'];
  if (blocker.kind !== 'no-driver')
    log(`[setup:gpu] skipped: ${blocker.reason} (vcp-exp setup --gpu builds it anyway)`);
  return ['native', 'mlflow'];
}

export async function setupCommand(
  part: string | undefined,
  options: SetupCommandOptions,
): Promise<void> {
  const chosen = chooseParts(part, options, (line) => console.log(line));
  const failed: string[] = [];
  for (const name of chosen) {
    const log = (line: string) => console.log(`[setup:${name}] ${line}`);
    try {
      PARTS[name].run(options, log);
    } catch (error) {
      console.error(`[setup:${name}] not available: ${(error as Error).message}`);
      console.error(`[setup:${name}] ${PARTS[name].fallback}`);
      failed.push(name);
    }
  }
  if (failed.length > 0 && options.strict)
    throw new UserError(`setup: ${failed.join(' and ')} could not be set up (see above)`, {
      hint: 'without --strict, setup only warns and vcp-exp falls back (CPU or wasm backend, remote MLflow)',
    });
}
