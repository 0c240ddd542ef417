/**
 * What a repository holds at a revision: from a hub cache snapshot (no network), from the Hub
 * API (commit + file list), or, on a server without the API, by HEAD-probing the files a CLIP
 * checkpoint may have. Also small JSON files (config.json), read from disk or fetched, bounded.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { remoteMetadata, withRetries } from './download.js';
import { COMMIT_HASH, findHfSnapshot } from './hf-cache.js';
import { revisionInfo } from './hub-api.js';
import { OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS } from './open-clip.js';
import type { Listing, PullContext } from './pull-context.js';
import { WEIGHTS_FILE } from './weights.js';

export const TORCH_FILE = 'pytorch_model.bin';
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
];
/** What a server without the Hub API is asked for, by HEAD. */
const PROBED = [
  'config.json',
  WEIGHTS_FILE,
  TORCH_FILE,
  'model.safetensors.index.json',
  'pytorch_model.bin.index.json',
  OPEN_CLIP_CONFIG,
  ...OPEN_CLIP_WEIGHTS,
  ...TOKENIZER_FILES,
];
/** Bound on config and tokenizer files (a CLIP tokenizer.json is ~2 MB). */
export const SMALL_FILE_BYTES = 64 * 2 ** 20;

/** The hub cache snapshot of (id, revision) as a listing, if the cache has one. */
export function localListing(ctx: PullContext, id: string, revision: string): Listing | undefined {
  const snapshot = findHfSnapshot(ctx.hfRoot, id, revision);
  if (!snapshot) return undefined;
  let files: Set<string>;
  try {
    // Top-level names whose blob is present: a CLIP checkpoint keeps its files at the root.
    files = new Set(readdirSync(snapshot.dir).filter((n) => existsSync(join(snapshot.dir, n))));
  } catch {
    files = new Set();
  }
  return { id, revision, commit: snapshot.commit, files, snapshot, online: false };
}

/** The server's listing of (id, revision), pinned to its commit; linked to a cached snapshot of it. */
export async function onlineListing(
  ctx: PullContext,
  id: string,
  revision: string,
): Promise<Listing> {
  const info = await withRetries(
    `${id}: Hub API`,
    ctx.http,
    () => revisionInfo(ctx.client, id, revision),
    undefined,
    'revision lookup',
  );
  const listing: Listing = info
    ? { id, revision, commit: info.commit, files: new Set(info.files), online: true }
    : await probe(ctx, id, revision);
  if (listing.commit) listing.snapshot = findHfSnapshot(ctx.hfRoot, id, listing.commit);
  return listing;
}

async function probe(ctx: PullContext, id: string, revision: string): Promise<Listing> {
  const files = new Set<string>();
  let commit: string | undefined;
  for (const name of PROBED) {
    const remote = await remoteMetadata(ctx.url(id, revision, name), name, ctx.http);
    if (!remote) continue;
    files.add(name);
    if (remote.commit && COMMIT_HASH.test(remote.commit)) commit ??= remote.commit;
  }
  ctx.notes.push(
    `${ctx.endpoint} has no Hub API: files were probed one by one, conversion pull requests cannot be looked up`,
  );
  return { id, revision, commit, files, online: true };
}

/** A small JSON file of the repository, from its snapshot or the server (at most SMALL_FILE_BYTES). */
export async function readRepoJson(
  ctx: PullContext,
  repo: Listing,
  name: string,
): Promise<unknown> {
  let text: string;
  if (repo.snapshot && existsSync(join(repo.snapshot.dir, name))) {
    text = await readFile(join(repo.snapshot.dir, name), 'utf8');
  } else {
    const url = ctx.url(repo.id, repo.commit ?? repo.revision, name);
    text = await withRetries(`${repo.id}: ${name}`, ctx.http, () => fetchSmallText(ctx, url, name));
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserError(
      `${repo.id} (${repo.revision}): ${name} is not valid JSON (${(error as Error).message})`,
      { hint: 'the repository is broken at this revision: try another --revision' },
    );
  }
}

async function fetchSmallText(ctx: PullContext, url: string, name: string): Promise<string> {
  const response = await fetch(url, { headers: ctx.http.headers });
  if (response.status === 401 || response.status === 403 || response.status === 404)
    throw new UserError(`${ctx.id}: ${url} answered ${response.status}`, {
      hint:
        response.status === 404
          ? 'check the model id and the revision'
          : 'set HF_TOKEN to an access token with access to this repository',
    });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of response.body ?? []) {
    length += (chunk as Uint8Array).length;
    if (length > SMALL_FILE_BYTES)
      throw new UserError(`${ctx.id}: ${name} at ${url} is larger than ${SMALL_FILE_BYTES} bytes`, {
        hint: 'a config file is a few kB: check the endpoint',
      });
    chunks.push(chunk as Uint8Array);
  }
  return Buffer.concat(chunks).toString('utf8');
}
