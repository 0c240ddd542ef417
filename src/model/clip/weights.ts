/**
 * A CLIP checkpoint directory in Hugging Face format (config.json, model.safetensors,
 * tokenizer.json, as `vcp-exp weights pull` stores them): validated, loaded, and identified by
 * the sha256 of its weights, the key of the frozen-feature cache and of trained checkpoints.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.js';
import { cacheRoot } from './cache.js';
import { inHfSnapshot } from './hf-cache.js';
import { parseClipConfig, type ClipConfig } from './config.js';
import {
  readSafetensorsHeader,
  SafetensorsFile,
  type HeaderEntry,
  type RawTensor,
} from '../../io/safetensors.js';
import { clipTensorProblems, summariseProblems, type RawTensors } from './tensors.js';
import { ClipTokenizer } from './tokenizer.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const REQUIRED_FILES = [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE] as const;
const PULL_EXAMPLE = 'vcp-exp weights pull openai/clip-vit-large-patch14-336';

export interface ClipCheckpoint {
  dir: string;
  /** config.json as parsed by config.ts. */
  config: Readonly<ClipConfig>;
  /** config.json as written (for logging and for fields config.ts does not read). */
  rawConfig: Record<string, unknown>;
  /** Every tensor of model.safetensors under its Hugging Face name. */
  tensors: Map<string, RawTensor>;
  tokenizer: ClipTokenizer;
  /** sha256 (hex) of model.safetensors. */
  hash: string;
}

export interface CheckpointSummary {
  dir: string;
  config: Readonly<ClipConfig>;
  rawConfig: Record<string, unknown>;
  tokenizer: ClipTokenizer;
  tensorCount: number;
  weightsBytes: number;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Throws a UserError naming the first required file the directory lacks. */
export async function checkCheckpointFiles(dir: string): Promise<void> {
  if (
    !(await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    throw new UserError(`${dir}: no such checkpoint directory`, {
      hint: `download a CLIP checkpoint first, e.g. ${PULL_EXAMPLE}`,
    });
  }
  for (const name of REQUIRED_FILES) {
    if (await exists(join(dir, name))) continue;
    const torchOnly = name === WEIGHTS_FILE && (await exists(join(dir, 'pytorch_model.bin')));
    throw new UserError(
      torchOnly
        ? `${dir}: has pytorch_model.bin but no ${WEIGHTS_FILE}; a checkpoint directory is loaded from ${WEIGHTS_FILE}`
        : `${dir}: missing ${name} (a CLIP checkpoint directory needs ${REQUIRED_FILES.join(', ')})`,
      {
        hint: torchOnly
          ? `refer to the weights by their hub id instead: vcp-exp weights pull <id> converts pytorch_model.bin once with a restricted reader that runs no pickle code (from Python's Hugging Face cache too, offline)`
          : `download the whole checkpoint with: ${PULL_EXAMPLE} (or another Hugging Face CLIP id)`,
      },
    );
  }
}

async function readConfig(
  dir: string,
): Promise<{ raw: Record<string, unknown>; config: Readonly<ClipConfig> }> {
  const file = join(dir, CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UserError(`${file}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  return { raw: raw as Record<string, unknown>, config: parseClipConfig(raw, file) };
}

/**
 * Validates a checkpoint without reading its weights: the files exist, config.json parses, the
 * safetensors header holds every tensor the config needs (float, right shape), the tokenizer loads.
 */
export async function inspectClipCheckpoint(dir: string): Promise<CheckpointSummary> {
  await checkCheckpointFiles(dir);
  const { raw, config } = await readConfig(dir);
  const weightsFile = join(dir, WEIGHTS_FILE);
  const entries = await checkWeightsFile(weightsFile, config, join(dir, CONFIG_FILE));
  const tokenizer = await ClipTokenizer.fromDirectory(dir);
  const { size } = await stat(weightsFile);
  return {
    dir,
    config,
    rawConfig: raw,
    tokenizer,
    tensorCount: Object.keys(entries).length,
    weightsBytes: size,
  };
}

/**
 * Checks a weights file against a config without reading its values: it parses as safetensors
 * and holds every tensor the config needs (float, right shape). Returns its header entries.
 */
export async function checkWeightsFile(
  weightsFile: string,
  config: ClipConfig,
  configFile: string,
): Promise<Record<string, HeaderEntry>> {
  const { entries } = await readSafetensorsHeader(weightsFile);
  const problems = clipTensorProblems((name) => entries[name], config);
  if (problems.length > 0)
    throw new UserError(`${weightsFile}: ${summariseProblems(problems)}`, {
      hint: `the weights do not match ${configFile}: both files must come from the same Hugging Face CLIP checkpoint`,
    });
  return entries;
}

/** A checkpoint directory whose weights stay in the file until a model converts them. */
export interface OpenedClipCheckpoint extends Omit<ClipCheckpoint, 'tensors'> {
  /** Read tensor by tensor (createClipModel): a load holds about one copy of the weights. */
  tensors: RawTensors;
  /** Every tensor name in the file. */
  names: string[];
}

/** Like loadClipCheckpoint, without reading the weights' values up front. */
export async function openClipCheckpoint(dir: string): Promise<OpenedClipCheckpoint> {
  const summary = await inspectClipCheckpoint(dir);
  const weightsFile = join(dir, WEIGHTS_FILE);
  const [file, hash] = await Promise.all([
    SafetensorsFile.open(weightsFile),
    weightsHash(weightsFile),
  ]);
  return {
    dir,
    config: summary.config,
    rawConfig: summary.rawConfig,
    tensors: { describe: (name) => file.entries[name], read: (name) => file.readTensorSync(name) },
    names: Object.keys(file.entries),
    tokenizer: summary.tokenizer,
    hash,
  };
}

/** Loads a checkpoint directory: validated config, every tensor, the tokenizer and the weights hash. */
export async function loadClipCheckpoint(dir: string): Promise<ClipCheckpoint> {
  const { names, tensors: file, ...checkpoint } = await openClipCheckpoint(dir);
  const tensors = new Map<string, RawTensor>();
  for (const name of names) tensors.set(name, file.read(name));
  return { ...checkpoint, tensors };
}

/** Streams a file through sha256. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  // One buffer reused: a stream's fresh 1 MB chunk per read left ~1 GB of garbage behind while
  // hashing 1.7 GB, on top of the load that follows (the first load of new weights).
  const buffer = Buffer.allocUnsafe(4 << 20);
  const handle = await open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

interface HashSidecar {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/**
 * Where a file's hash is remembered: `<file>.sha256` beside it, except in Python's Hugging Face
 * cache (not ours to write in), whose snapshot files get theirs under our cache root.
 */
export function hashSidecar(file: string): string {
  const m = /(models--[^\\/]+)[\\/]snapshots[\\/]([0-9a-f]{40})[\\/](.+)$/.exec(file);
  if (!m || !inHfSnapshot(file)) return `${file}.sha256`;
  return join(cacheRoot(), 'hashes', m[1], m[2], `${m[3].replaceAll(/[\\/]/g, '--')}.sha256`);
}

/**
 * sha256 of a weights file, remembered in its sidecar (hashSidecar) and trusted while the file's
 * size and mtime are unchanged (hashing 1.7 GB takes seconds; every run needs the hash).
 */
export async function weightsHash(file: string): Promise<string> {
  const { size, mtimeMs } = await stat(file);
  const sidecar = hashSidecar(file);
  const cached = await readFile(sidecar, 'utf8')
    .then(
      (text) => JSON.parse(text) as Partial<HashSidecar>,
      () => undefined,
    )
    .catch(() => undefined);
  if (
    cached &&
    cached.size === size &&
    cached.mtimeMs === mtimeMs &&
    /^[0-9a-f]{64}$/.test(cached.sha256 ?? '')
  )
    return cached.sha256!;
  const sha256 = await sha256File(file);
  await rememberHash(file, sha256);
  return sha256;
}

/** Records a hash known to be right (e.g. verified by a download) in the sidecar. */
export async function rememberHash(file: string, sha256: string): Promise<void> {
  const { size, mtimeMs } = await stat(file);
  const record: HashSidecar = { size, mtimeMs, sha256 };
  const sidecar = hashSidecar(file);
  // A read-only checkpoint directory just means the hash is recomputed next time.
  await mkdir(dirname(sidecar), { recursive: true })
    .then(() => writeFile(sidecar, `${JSON.stringify(record)}\n`))
    .catch(() => undefined);
}
