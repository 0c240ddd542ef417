/**
 * Where downloaded checkpoints live: `<cache root>/models/<hub id>/<revision>/`, the cache root
 * being $VCP_EXP_CACHE, else $XDG_CACHE_HOME/vcp-exp, else ~/.cache/vcp-exp (src/io/cache-dir.ts).
 * A hub id is also found in Python's Hugging Face cache (hf-cache.ts), used there as it is.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../../errors.js';
import { cacheRoot } from '../../io/cache-dir.js';
import { isHfClipConfig } from './config.js';
import { findHfSnapshot, hfHubCacheRoot } from './hf-cache.js';

export { cacheRoot };

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Throws unless `id` looks like a Hugging Face model id ("name" or "owner/name"). */
export function checkHubId(id: string): void {
  if (!HUB_ID.test(id) || id.includes('..')) {
    throw new UserError(`"${id}" is not a Hugging Face model id`, {
      hint: 'write it as owner/name, e.g. openai/clip-vit-large-patch14-336',
    });
  }
}

/** The directory a pulled checkpoint is stored in (a revision like refs/pr/1 becomes refs--pr--1). */
export function checkpointCacheDir(id: string, revision: string, root = cacheRoot()): string {
  checkHubId(id);
  if (revision === '' || revision.includes('..'))
    throw new UserError(`revision "${revision}" is not valid`, {
      hint: 'use a branch, tag or commit, e.g. main',
    });
  return join(root, 'models', ...id.split('/'), revision.replaceAll('/', '--'));
}

/**
 * A weights reference as users write it: an existing directory, or a hub id (at `revision`,
 * default main) pulled into our cache, or downloaded by Python into the Hugging Face cache as a
 * Hugging Face CLIP checkpoint (used where it lies, without the network).
 */
export function resolveWeightsDir(
  ref: string,
  options: { revision?: string; root?: string; hfRoot?: string } = {},
): string {
  if (existsSync(ref) && statSync(ref).isDirectory()) return resolve(ref);
  const revision = options.revision ?? 'main';
  if (HUB_ID.test(ref) && !ref.includes('..')) {
    const dir = checkpointCacheDir(ref, revision, options.root);
    const pull = `vcp-exp weights pull ${ref}${revision === 'main' ? '' : ` --revision ${revision}`}`;
    if (existsSync(join(dir, 'config.json'))) return dir;
    const snapshot = findHfSnapshot(options.hfRoot ?? hfHubCacheRoot(), ref, revision);
    if (snapshot) {
      const has = (name: string) => existsSync(join(snapshot.dir, name));
      if (
        has('config.json') &&
        has('model.safetensors') &&
        has('tokenizer.json') &&
        isClipConfig(join(snapshot.dir, 'config.json'))
      )
        return snapshot.dir;
      throw new UserError(
        `weights "${ref}" (${revision}) are in the Hugging Face cache (${snapshot.dir}) but not as a Hugging Face CLIP checkpoint with model.safetensors and tokenizer.json`,
        { hint: `convert them once, offline: ${pull}` },
      );
    }
    if (existsSync(dir)) return dir; // an incomplete pull: loading names what is missing
    throw new UserError(
      `weights "${ref}" (${revision}) are not downloaded: ${dir} does not exist, nor a Hugging Face cache entry`,
      { hint: `run: ${pull}` },
    );
  }
  throw new UserError(`weights "${ref}": no such directory, and not a Hugging Face model id`, {
    hint: 'give a checkpoint directory (config.json, model.safetensors, tokenizer.json) or a hub id pulled with vcp-exp weights pull',
  });
}

function isClipConfig(file: string): boolean {
  try {
    return isHfClipConfig(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return false;
  }
}
