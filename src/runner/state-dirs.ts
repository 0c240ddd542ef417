/**
 * Where a project's shared trial state lives, below its state directory (`./.vcp-exp`, or
 * $VCP_EXP_STATE_DIR; see resolveStateDir): one rule for `vcp-exp run` and `vcp-exp train`,
 * so both share frozen features and reuse each other's trainings.
 */
import { join } from 'node:path';

/** The frozen-feature cache shared by every trial and epoch. */
export function featureCacheDir(stateDir: string): string {
  return join(stateDir, 'features');
}

/** Trained checkpoints, one folder per training key. */
export function checkpointsDir(stateDir: string): string {
  return join(stateDir, 'checkpoints');
}
