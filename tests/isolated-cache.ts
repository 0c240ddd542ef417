/**
 * A temporary vcp-exp user cache for one test: its own models/ (weights pulled or converted by
 * one test never reach another), with the user's installed native TensorFlow backend and
 * MLflow venv linked in. Those are built once per machine by `vcp-exp setup` (in CI by
 * .ci/run) and live only in the real user cache; a bare temporary VCP_EXP_CACHE would lose them.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../src/io/cache-dir.js';

export function isolatedCache(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const user = cacheRoot();
  if (!existsSync(user)) return dir;
  for (const name of readdirSync(user)) {
    const link = join(dir, name);
    if ((name === 'native' || name.startsWith('mlflow-')) && !existsSync(link))
      symlinkSync(join(user, name), link);
  }
  return dir;
}
