/**
 * The user cache directory of vcp-exp, outside any package or project: $VCP_EXP_CACHE, else
 * $XDG_CACHE_HOME/vcp-exp, else ~/.cache/vcp-exp. It holds what is installed or downloaded
 * once per user: pulled CLIP weights (models/), the MLflow venv (mlflow-<version>/), the
 * native TensorFlow backend (native/) and the TensorFlow wheel it is built from (wheels/).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VCP_EXP_CACHE) return resolve(env.VCP_EXP_CACHE);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), 'vcp-exp');
  return join(homedir(), '.cache', 'vcp-exp');
}
