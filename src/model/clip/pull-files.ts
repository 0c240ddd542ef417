/**
 * Getting one file of a plan onto disk: linked from the hub cache when it lies there, else
 * downloaded (resumable, bounded, verified) into our checkpoint directory — or into the hub
 * cache with `--hf-cache`, laid out as hf_hub_download lays it out, and linked from ours.
 * Conversion sources are only read, so they stay where they are found or go to `.source/`.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { downloadFile, remoteMetadata, type DownloadOptions, type RemoteFile } from './download.js';
import { COMMIT_HASH, hfRepoDir, storeInHfCache } from './hf-cache.js';
import type { Listing, PullContext } from './pull-context.js';
import { SMALL_FILE_BYTES } from './pull-listing.js';
import { rememberHash, sha256File, weightsHash, WEIGHTS_FILE } from './weights.js';

export const SOURCE_DIR = '.source';

/**
 * Puts `name` of `listing` into the checkpoint directory and records it; returns its path, or
 * undefined for an optional file the repository lacks. `verify` checks the content before it is
 * placed (a download is deleted when it fails).
 */
export async function placeFile(
  ctx: PullContext,
  listing: Listing,
  name: string,
  optional: boolean,
  verify?: (file: string) => Promise<void>,
): Promise<string | undefined> {
  const dest = join(ctx.dir, name);
  if (listing.snapshot && existsSync(join(listing.snapshot.dir, name))) {
    const target = join(listing.snapshot.dir, name);
    if (verify) await verify(target);
    await linkTo(dest, target);
    await ctx.record(name, 'hf-cache');
    return dest;
  }
  const url = ctx.url(listing.id, listing.commit ?? listing.revision, name);
  const listed = listing.online && (listing.files.size === 0 || listing.files.has(name));
  const remote = listed ? await remoteMetadata(url, name, ctx.http) : undefined;
  if (!remote) {
    if (optional) {
      await removeStale(dest);
      return undefined;
    }
    throw new UserError(
      `${listing.id} (${listing.revision}): ${name} ${listing.online ? `not found at ${url}` : 'is not on disk'}`,
      {
        hint:
          name === 'tokenizer.json'
            ? 'pass --tokenizer-from <a CLIP repository with tokenizer.json>'
            : 'check the model id and the revision',
      },
    );
  }
  const options: DownloadOptions = {
    ...ctx.http,
    maxBytes: name === WEIGHTS_FILE ? ctx.http.maxBytes : SMALL_FILE_BYTES,
    verify,
  };
  if (ctx.options.hfCache) {
    await linkTo(dest, await downloadToHfCache(ctx, listing, name, remote, options));
    await ctx.record(name, 'downloaded');
    return dest;
  }
  if (await isUpToDate(dest, remote)) {
    if (verify) await verify(dest);
    ctx.progress.done(name, 'up to date');
    await ctx.record(name, 'up to date');
    return dest;
  }
  await removeStale(dest);
  const sha256 = await downloadFile(remote, dest, name, options);
  if (name === WEIGHTS_FILE) await rememberHash(dest, sha256);
  await ctx.record(name, 'downloaded', sha256);
  return dest;
}

export interface Source {
  path: string;
  sha256: string;
  from: 'download' | 'hf-cache';
  /** Whether we downloaded it into our own directory (and may delete it). */
  ours: boolean;
}

/** A file that is only read (a conversion source): where it lies, or downloaded for the purpose. */
export async function fetchSource(
  ctx: PullContext,
  listing: Listing,
  name: string,
): Promise<Source> {
  if (listing.snapshot && existsSync(join(listing.snapshot.dir, name))) {
    const path = join(listing.snapshot.dir, name);
    return { path, sha256: await sha256File(path), from: 'hf-cache', ours: false };
  }
  const url = ctx.url(listing.id, listing.commit ?? listing.revision, name);
  const remote = listing.online ? await remoteMetadata(url, name, ctx.http) : undefined;
  if (!remote)
    throw new UserError(`${listing.id} (${listing.revision}): ${name} not found at ${url}`, {
      hint: 'check the model id and the revision',
    });
  if (ctx.options.hfCache) {
    const path = await downloadToHfCache(ctx, listing, name, remote, ctx.http);
    return { path, sha256: await sha256File(path), from: 'download', ours: false };
  }
  await mkdir(join(ctx.dir, SOURCE_DIR), { recursive: true });
  const path = join(ctx.dir, SOURCE_DIR, name);
  const sha256 = (await isUpToDate(path, remote))
    ? await sha256File(path)
    : await downloadFile(remote, path, name, ctx.http);
  return { path, sha256, from: 'download', ours: true };
}

/** Downloads into the hub cache as hf_hub_download does (unless the blob is there); returns the snapshot path. */
async function downloadToHfCache(
  ctx: PullContext,
  listing: Listing,
  name: string,
  remote: RemoteFile,
  options: DownloadOptions,
): Promise<string> {
  const commit = listing.commit ?? remote.commit;
  if (!commit || !COMMIT_HASH.test(commit))
    throw new UserError(
      `${listing.id}: the server names no commit for ${listing.revision}; the Hugging Face cache is organised by commit`,
      { hint: "drop --hf-cache to download into vcp-exp's own cache" },
    );
  const blobs = join(hfRepoDir(ctx.hfRoot, listing.id), 'blobs');
  await mkdir(blobs, { recursive: true });
  const blob = remote.etag && join(blobs, remote.etag);
  let file: string;
  let etag = remote.etag;
  if (blob && existsSync(blob) && (await isUpToDate(blob, remote))) {
    if (options.verify) await options.verify(blob);
    file = blob;
    ctx.progress.done(name, 'already in the Hugging Face cache');
  } else {
    file = join(blobs, `${remote.etag ?? name}.incomplete-vcp`);
    const sha256 = await downloadFile(remote, file, name, options);
    etag ??= sha256;
  }
  return storeInHfCache({
    root: ctx.hfRoot,
    id: listing.id,
    revision: listing.revision,
    commit,
    name,
    etag: etag!,
    file,
  });
}

async function isUpToDate(dest: string, remote: RemoteFile): Promise<boolean> {
  const info = await lstat(dest).catch(() => undefined);
  if (!info || info.isSymbolicLink()) return false;
  if (remote.size !== undefined && info.size !== remote.size) return false;
  if (remote.sha256 === undefined) return remote.size !== undefined;
  const actual = dest.endsWith(WEIGHTS_FILE) ? await weightsHash(dest) : await sha256File(dest);
  return actual === remote.sha256;
}

/** `dest` becomes a symlink to `target` (never writing through an existing link). */
async function linkTo(dest: string, target: string): Promise<void> {
  await removeStale(dest);
  await symlink(target, dest);
}

/** Removes a file (or link) of the checkpoint directory and its hash sidecar. */
export async function removeStale(dest: string): Promise<void> {
  await unlink(dest).catch(() => undefined);
  await unlink(`${dest}.sha256`).catch(() => undefined);
}

export async function replaceFile(file: string, text: string): Promise<void> {
  await removeStale(file);
  await writeFile(file, text);
}
