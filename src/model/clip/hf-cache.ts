/**
 * The cache Python's huggingface_hub keeps (where transformers and open_clip download to):
 * `<hub cache>/models--<org>--<name>/` with `blobs/<etag>` (the sha256 for LFS files, the git
 * blob sha1 for others), `snapshots/<commit>/<file>` relative symlinks to those blobs, and
 * `refs/<revision>` holding the commit a branch (or `refs/pr/N`) pointed to when downloaded.
 * The root honours HF_HUB_CACHE, HF_HOME and XDG_CACHE_HOME exactly as Python does. The rules
 * are @huggingface/hub's getHFHubCachePath / getRepoFolderName, restated here because importing
 * that package costs every trial process ~0.1 s at start-up (tests check both agree).
 * Read without the network; written the way hf_hub_download writes it, so Python finds what
 * vcp-exp downloaded and vice versa.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import {
  lstat,
  mkdir,
  readFile,
  readlink,
  rename,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/**
 * The hub cache root: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
export function hfHubCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** `models--org--name` under the root. */
export function hfRepoDir(root: string, id: string): string {
  return join(root, ['models', ...id.split('/')].join('--'));
}

export interface HfSnapshot {
  dir: string;
  commit: string;
}

/** The snapshot a revision (branch, tag, refs/pr/N or commit) resolves to in the cache, if any. */
export function findHfSnapshot(root: string, id: string, revision: string): HfSnapshot | undefined {
  const repo = hfRepoDir(root, id);
  let commit = revision;
  if (!COMMIT_HASH.test(revision)) {
    try {
      commit = readFileSync(join(repo, 'refs', revision), 'utf8').trim();
    } catch {
      return undefined;
    }
    if (!COMMIT_HASH.test(commit)) return undefined;
  }
  const dir = join(repo, 'snapshots', commit);
  return existsSync(dir) && statSync(dir).isDirectory() ? { dir, commit } : undefined;
}

/** Whether `name` is present in the snapshot (a symlink whose blob exists). */
export function snapshotHas(snapshot: HfSnapshot, name: string): boolean {
  return existsSync(join(snapshot.dir, name));
}

/**
 * Moves a downloaded file into the cache as hf_hub_download does: the blob under its etag, a
 * relative symlink in the commit's snapshot, and refs/<revision> → commit. Returns the snapshot
 * path of the file.
 */
export async function storeInHfCache(options: {
  root: string;
  id: string;
  revision: string;
  commit: string;
  name: string;
  etag: string;
  file: string;
}): Promise<string> {
  const repo = hfRepoDir(options.root, options.id);
  const blob = join(repo, 'blobs', options.etag);
  const pointer = join(repo, 'snapshots', options.commit, options.name);
  await mkdir(dirname(blob), { recursive: true });
  await mkdir(dirname(pointer), { recursive: true });
  if (options.file !== blob) {
    if (existsSync(blob)) await unlink(options.file);
    else await rename(options.file, blob);
  }
  const target = relative(dirname(pointer), blob);
  const current = await readlink(pointer).catch(() => undefined);
  if (current !== target) {
    await lstat(pointer).then(
      () => unlink(pointer),
      () => undefined,
    );
    await symlink(target, pointer);
  }
  await writeRef(repo, options.revision, options.commit);
  return pointer;
}

async function writeRef(repo: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repo, 'refs', revision);
  if ((await readFile(ref, 'utf8').catch(() => undefined)) === commit) return;
  await mkdir(dirname(ref), { recursive: true });
  await writeFile(ref, commit); // no newline, as huggingface_hub writes it
}

/** Where a download bound for the cache is assembled before it becomes a blob. */
export function hfIncompletePath(root: string, id: string, etag: string): string {
  return join(hfRepoDir(root, id), 'blobs', `${etag}.incomplete`);
}

/**
 * Whether a path lies inside a hub cache snapshot (files there are symlinks into blobs/ that
 * other tools own: nothing of ours is written next to them).
 */
export function inHfSnapshot(path: string): boolean {
  return /(^|[\\/])models--[^\\/]+[\\/]snapshots[\\/][0-9a-f]{40}([\\/]|$)/.test(path);
}
