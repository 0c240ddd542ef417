/**
 * `vcp-exp weights pull`: fetches a CLIP checkpoint's files from a Hugging Face-compatible
 * endpoint (`<endpoint>/<id>/resolve/<revision>/<file>`) into the cache, skipping files already
 * there and verified, then validates the directory as loadClipCheckpoint would.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { cacheRoot, checkHubId, checkpointCacheDir } from './cache.js';
import { downloadFile, remoteMetadata, type HttpOptions, type RemoteFile } from './download.js';
import { silentProgress } from './progress.js';
import {
  inspectClipCheckpoint,
  rememberHash,
  sha256File,
  weightsHash,
  WEIGHTS_FILE,
  type CheckpointSummary,
} from './weights.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Small files first, so a wrong id or revision fails before the large download starts. */
export const PULL_FILES: readonly { name: string; required: boolean }[] = [
  { name: 'config.json', required: true },
  { name: 'tokenizer.json', required: true },
  { name: 'tokenizer_config.json', required: false },
  { name: 'special_tokens_map.json', required: false },
  { name: 'vocab.json', required: false },
  { name: 'merges.txt', required: false },
  { name: WEIGHTS_FILE, required: true },
];

export interface PullOptions extends HttpOptions {
  /** Hugging Face model id, e.g. openai/clip-vit-large-patch14-336. */
  id: string;
  revision?: string;
  /** Cache root (default: $VCP_EXP_CACHE, $XDG_CACHE_HOME/vcp-exp or ~/.cache/vcp-exp). */
  cacheDir?: string;
  /** Server (default: $HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Access token for private or gated repositories (default: $HF_TOKEN). */
  token?: string;
}

export type FileStatus = 'downloaded' | 'up to date' | 'absent';

export interface PullResult {
  dir: string;
  /** The commit the revision resolved to, when the server says. */
  commit?: string;
  files: { name: string; status: FileStatus }[];
  checkpoint: CheckpointSummary;
}

/** The endpoint to use: the flag, else $HF_ENDPOINT, else huggingface.co; no trailing slash. */
export function resolveEndpoint(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const endpoint = (flag ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new UserError(`endpoint "${endpoint}" is not a URL`, {
      hint: 'use e.g. --endpoint https://huggingface.co',
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UserError(`endpoint "${endpoint}": only http and https are supported`);
  return endpoint;
}

async function isUpToDate(dest: string, remote: RemoteFile): Promise<boolean> {
  const size = await stat(dest).then(
    (s) => s.size,
    () => undefined,
  );
  if (size === undefined || (remote.size !== undefined && size !== remote.size)) return false;
  if (remote.sha256 === undefined) return true;
  const actual = dest.endsWith(WEIGHTS_FILE) ? await weightsHash(dest) : await sha256File(dest);
  return actual === remote.sha256;
}

export async function pullClipCheckpoint(options: PullOptions): Promise<PullResult> {
  checkHubId(options.id);
  const revision = options.revision ?? 'main';
  const endpoint = resolveEndpoint(options.endpoint);
  const dir = checkpointCacheDir(options.id, revision, options.cacheDir ?? cacheRoot());
  const progress = options.progress ?? silentProgress;
  const token = options.token ?? process.env.HF_TOKEN;
  const http: HttpOptions = {
    ...options,
    progress,
    headers: { ...options.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
  };
  const urlOf = (name: string) =>
    `${endpoint}/${options.id}/resolve/${encodeURIComponent(revision)}/${name}`;
  await mkdir(dir, { recursive: true });

  const files: PullResult['files'] = [];
  let commit: string | undefined;
  for (const { name, required } of PULL_FILES) {
    const remote = await remoteMetadata(urlOf(name), name, http);
    if (!remote) {
      if (required) throw await missingRequired(name, urlOf, options.id, revision, http);
      progress.done(name, 'not in the repository (optional)');
      files.push({ name, status: 'absent' });
      continue;
    }
    commit ??= remote.commit;
    const dest = join(dir, name);
    if (await isUpToDate(dest, remote)) {
      progress.done(name, 'up to date');
      files.push({ name, status: 'up to date' });
      continue;
    }
    const sha256 = await downloadFile(remote, dest, name, http);
    if (name === WEIGHTS_FILE) await rememberHash(dest, sha256);
    files.push({ name, status: 'downloaded' });
  }
  const checkpoint = await inspectClipCheckpoint(dir);
  return { dir, commit, files, checkpoint };
}

async function missingRequired(
  name: string,
  urlOf: (name: string) => string,
  id: string,
  revision: string,
  http: HttpOptions,
): Promise<UserError> {
  if (
    name === WEIGHTS_FILE &&
    (await remoteMetadata(urlOf('pytorch_model.bin'), 'pytorch_model.bin', http))
  ) {
    return new UserError(
      `${id} (${revision}) has pytorch_model.bin but no ${WEIGHTS_FILE}; only safetensors weights are supported (pickled PyTorch files can run code when loaded)`,
      {
        hint: `look for a revision with ${WEIGHTS_FILE} (e.g. a refs/pr/N conversion), or convert in Python: CLIPModel.from_pretrained(id).save_pretrained(dir, safe_serialization=True)`,
      },
    );
  }
  return new UserError(`${id} (${revision}): ${name} not found at ${urlOf(name)} (404)`, {
    hint: 'check the model id and the revision; a CLIP checkpoint in Hugging Face format has config.json, model.safetensors and tokenizer.json',
  });
}
