/**
 * `vcp-exp setup [native|mlflow] [--strict] [--wheel]`: everything vcp-exp needs beyond
 * `npm install`, into the user cache (src/io/cache-dir.ts), idempotent: the native TensorFlow
 * backend (src/model/native-setup.ts) and the pinned MLflow (src/tracking/mlflow-install.ts).
 * Without --strict a part that cannot be had only warns: vcp-exp then runs on wasm, or
 * against a remote MLFLOW_TRACKING_URI, and says how to come back here.
 */
import { UserError } from '../errors.js';
import { setupNative } from '../model/native-setup.js';
import { installMlflow } from '../tracking/mlflow-install.js';

export interface SetupCommandOptions {
  strict?: boolean;
  wheel?: boolean;
}

const PARTS = {
  native: {
    run: (o: SetupCommandOptions, log: (line: string) => void) =>
      setupNative({ wheel: o.wheel, log }),
    fallback:
      'vcp-exp will run on the wasm backend (about 6x slower). Retry with: vcp-exp setup native',
  },
  mlflow: {
    run: (_: SetupCommandOptions, log: (line: string) => void) => installMlflow(log),
    fallback:
      'a remote MLFLOW_TRACKING_URI still works; for the local server retry with: vcp-exp setup mlflow',
  },
} as const;

export async function setupCommand(
  part: string | undefined,
  options: SetupCommandOptions,
): Promise<void> {
  const names = Object.keys(PARTS) as (keyof typeof PARTS)[];
  if (part !== undefined && part !== 'all' && !(names as string[]).includes(part))
    throw new UserError(`setup: got "${part}", expected one of ${names.join(', ')} or all`, {
      exitCode: 2,
    });
  const chosen = part === undefined || part === 'all' ? names : [part as keyof typeof PARTS];
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
      hint: 'without --strict, setup only warns and vcp-exp falls back (wasm backend, remote MLflow)',
    });
}
