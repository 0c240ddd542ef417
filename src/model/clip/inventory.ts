/**
 * What CLIP weights are on this machine (`weights list`) and whether they are still what was
 * downloaded (`weights verify`): our cache's checkpoint directories (their manifests) and the
 * CLIP repositories in Python's Hugging Face cache (walked with @huggingface/hub's scanCacheDir;
 * a blob's name is its sha256 for LFS files and its git blob sha1 otherwise, both re-checked).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../../errors.js';
import { checkpointCacheDir } from './cache.js';
import { isHfClipConfig } from './config.js';
import { findHfSnapshot } from './hf-cache.js';
import { MANIFEST_FILE, readManifest, type WeightsFormat } from './manifest.js';
import { OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS } from './open-clip.js';
import { inspectClipCheckpoint, rememberHash, sha256File, WEIGHTS_FILE } from './weights.js';

export interface LocalWeights {
  id: string;
  /** The revision (or the refs pointing at the commit, for the Hugging Face cache). */
  revision: string;
  commit?: string;
  /** How the weights are stored; `… (convert)` entries need `weights pull` once (offline). */
  format: WeightsFormat | 'pytorch_model.bin (convert)' | 'open_clip (convert)';
  where: 'vcp-exp' | 'hf-cache';
  dir: string;
  /** Size of the weights file in bytes. */
  size?: number;
  /** sha256 of the weights file as recorded (manifest, sidecar, or blob name). */
  sha256?: string;
}

export interface Roots {
  root: string;
  hfRoot: string;
}

async function dirs(path: string): Promise<string[]> {
  return readdir(path, { withFileTypes: true }).then(
    (entries) => entries.filter((e) => e.isDirectory()).map((e) => e.name),
    () => [],
  );
}

async function sidecarSha(file: string): Promise<string | undefined> {
  const text = await readFile(`${file}.sha256`, 'utf8').catch(() => undefined);
  try {
    return text ? (JSON.parse(text) as { sha256?: string }).sha256 : undefined;
  } catch {
    return undefined;
  }
}

/** Checkpoint directories of our cache: models/<org>/<name>/<revision>/ (or models/<name>/<revision>/). */
async function ourEntries(root: string): Promise<LocalWeights[]> {
  const out: LocalWeights[] = [];
  const models = join(root, 'models');
  const candidates: { id: string; dir: string; revision: string }[] = [];
  for (const first of await dirs(models)) {
    for (const second of await dirs(join(models, first))) {
      const level2 = join(models, first, second);
      if (existsSync(join(level2, 'config.json')) || existsSync(join(level2, MANIFEST_FILE)))
        candidates.push({ id: first, dir: level2, revision: second.replaceAll('--', '/') });
      for (const third of await dirs(level2))
        candidates.push({
          id: `${first}/${second}`,
          dir: join(level2, third),
          revision: third.replaceAll('--', '/'),
        });
    }
  }
  for (const { id, dir, revision } of candidates) {
    const weights = join(dir, WEIGHTS_FILE);
    const manifest = await readManifest(dir);
    if (!manifest && !existsSync(weights)) continue;
    const size = await stat(weights).then(
      (s) => s.size,
      () => undefined,
    );
    out.push({
      id: manifest?.id ?? id,
      revision: manifest?.revision ?? revision,
      commit: manifest?.commit,
      format: manifest?.format ?? 'safetensors',
      where: 'vcp-exp',
      dir,
      size,
      sha256: manifest?.files[WEIGHTS_FILE]?.sha256 ?? (await sidecarSha(weights)),
    });
  }
  return out;
}

/** CLIP repositories of the Hugging Face cache, one entry per cached commit. */
async function hfEntries(hfRoot: string): Promise<LocalWeights[]> {
  if (!existsSync(hfRoot)) return [];
  const { scanCacheDir } = await import('@huggingface/hub');
  const info = await scanCacheDir(hfRoot);
  const out: LocalWeights[] = [];
  for (const repo of info.repos) {
    if (repo.id.type !== 'model') continue;
    for (const revision of repo.revisions) {
      const files = new Map(revision.files.map((f) => [basename(f.path), f]));
      const config = files.has('config.json')
        ? await readFile(join(revision.path, 'config.json'), 'utf8').then(
            (t) => JSON.parse(t) as unknown,
            () => undefined,
          )
        : undefined;
      let format: LocalWeights['format'] | undefined;
      let weightsName: string | undefined;
      if (isHfClipConfig(config) && files.has(WEIGHTS_FILE))
        [format, weightsName] = ['safetensors', WEIGHTS_FILE];
      else if (isHfClipConfig(config) && files.has('pytorch_model.bin'))
        [format, weightsName] = ['pytorch_model.bin (convert)', 'pytorch_model.bin'];
      else if (files.has(OPEN_CLIP_CONFIG)) {
        weightsName = OPEN_CLIP_WEIGHTS.find((n) => files.has(n));
        if (weightsName) format = 'open_clip (convert)';
      }
      if (!format || !weightsName) continue;
      const blob = files.get(weightsName)!.blob;
      const blobName = basename(blob.path);
      out.push({
        id: repo.id.name,
        revision: revision.refs.length ? revision.refs.join(', ') : revision.commitOid,
        commit: revision.commitOid,
        format,
        where: 'hf-cache',
        dir: revision.path,
        size: blob.size,
        sha256: /^[0-9a-f]{64}$/.test(blobName) ? blobName : undefined,
      });
    }
  }
  return out;
}

export async function listLocalWeights(roots: Roots): Promise<LocalWeights[]> {
  const [ours, theirs] = await Promise.all([ourEntries(roots.root), hfEntries(roots.hfRoot)]);
  return [...ours, ...theirs].sort(
    (a, b) =>
      a.id.localeCompare(b.id) ||
      a.where.localeCompare(b.where) ||
      a.revision.localeCompare(b.revision),
  );
}

export interface FileCheck {
  file: string;
  /** What the hash is compared with: the manifest, or the blob's name in the hub cache. */
  against: 'manifest' | 'blob name (sha256)' | 'blob name (git sha1)';
  expected: string;
  actual: string;
  ok: boolean;
}

export interface VerifyReport {
  dir: string;
  where: 'vcp-exp' | 'hf-cache';
  checks: FileCheck[];
  /** Problems beyond hashes (config, tensors, tokenizer), from loading the directory. */
  problems: string[];
}

async function gitBlobSha1(file: string): Promise<string> {
  const { size } = await stat(file);
  const hash = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A file that is a link into a hub cache: its blob's name says what its hash must be. */
async function blobCheck(file: string, name: string): Promise<FileCheck | undefined> {
  const target = await realpath(file).catch(() => undefined);
  const blobName = target && basename(target);
  if (!target || !/[\\/]blobs[\\/]/.test(target) || !blobName) return undefined;
  if (/^[0-9a-f]{64}$/.test(blobName)) {
    const actual = await sha256File(file);
    return {
      file: name,
      against: 'blob name (sha256)',
      expected: blobName,
      actual,
      ok: actual === blobName,
    };
  }
  if (/^[0-9a-f]{40}$/.test(blobName)) {
    const actual = await gitBlobSha1(file);
    return {
      file: name,
      against: 'blob name (git sha1)',
      expected: blobName,
      actual,
      ok: actual === blobName,
    };
  }
  return undefined;
}

/** Re-hashes every file of a local checkpoint and re-validates it; nothing is trusted from sidecars. */
export async function verifyLocalWeights(
  id: string,
  revision: string,
  roots: Roots,
): Promise<VerifyReport> {
  const ours = checkpointCacheDir(id, revision, roots.root);
  const manifest = await readManifest(ours);
  const checks: FileCheck[] = [];
  const problems: string[] = [];
  let dir: string;
  let where: VerifyReport['where'];
  if (manifest || existsSync(join(ours, WEIGHTS_FILE))) {
    dir = ours;
    where = 'vcp-exp';
    const names = manifest
      ? Object.keys(manifest.files)
      : (await readdir(ours)).filter((n) => !n.endsWith('.sha256'));
    for (const name of names) {
      const file = join(dir, name);
      if (!existsSync(file)) {
        problems.push(
          `${file} is missing${(await realpath(file).catch(() => undefined)) ? '' : ' (or its link into the Hugging Face cache is broken)'}`,
        );
        continue;
      }
      const record = manifest?.files[name];
      if (record) {
        const actual = await sha256File(file);
        checks.push({
          file: name,
          against: 'manifest',
          expected: record.sha256,
          actual,
          ok: actual === record.sha256,
        });
      }
      const blob = await blobCheck(file, name);
      if (blob) checks.push(blob);
    }
  } else {
    const snapshot = findHfSnapshot(roots.hfRoot, id, revision);
    if (!snapshot)
      throw new UserError(
        `weights "${id}" (${revision}) are neither in ${ours} nor in the Hugging Face cache ${roots.hfRoot}`,
        {
          hint: `see what is there with: vcp-exp weights list; download with: vcp-exp weights pull ${id}`,
        },
      );
    dir = snapshot.dir;
    where = 'hf-cache';
    for (const name of (await readdir(dir)).sort()) {
      const blob = await blobCheck(join(dir, name), name);
      if (blob) checks.push(blob);
      else if (!existsSync(join(dir, name)))
        problems.push(`${join(dir, name)}: its blob is missing`);
    }
  }
  try {
    await inspectClipCheckpoint(dir);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    if (!(where === 'hf-cache' && !existsSync(join(dir, WEIGHTS_FILE))))
      problems.push(error.message);
  }
  // A verified weights file re-arms the hash sidecar the feature cache keys on.
  const weights = checks.find((c) => c.file === WEIGHTS_FILE);
  if (weights?.ok && problems.length === 0 && checks.every((c) => c.ok))
    await rememberHash(join(dir, WEIGHTS_FILE), weights.actual);
  return { dir, where, checks, problems };
}
