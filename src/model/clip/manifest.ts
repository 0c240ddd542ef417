/**
 * `vcp-weights.json`, written by `weights pull` next to a checkpoint it assembled: where the
 * weights came from (repository, revision, commit, format, pull request, source file and its
 * sha256), and the sha256 and size of every file as placed, so `weights list` can show it and
 * `weights verify` can re-check it without the network.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MANIFEST_FILE = 'vcp-weights.json';

/**
 * How the weights were obtained: `safetensors` as published; `conversion-pr` the safetensors of
 * the repository's conversion pull request; `pytorch_model.bin` and `open_clip` converted here.
 */
export type WeightsFormat = 'safetensors' | 'conversion-pr' | 'pytorch_model.bin' | 'open_clip';

export interface FileRecord {
  sha256: string;
  size: number;
}

export interface WeightsManifest {
  version: 1;
  id: string;
  revision: string;
  /** The commit the revision resolved to (the files are pinned to it). */
  commit?: string;
  endpoint?: string;
  format: WeightsFormat;
  /** The file the weights were read from, as published. */
  source: FileRecord & {
    file: string;
    revision: string;
    commit?: string;
    /** `download`, or `hf-cache` when it was taken from Python's cache. */
    from: 'download' | 'hf-cache';
  };
  pullRequest?: { num: number; title: string; author: string; commit: string };
  /** OpenCLIP repositories without tokenizer files: where the tokenizer was taken from. */
  tokenizer?: { id: string; revision: string; commit?: string };
  /** Tensors of the source left out of the conversion (e.g. position_ids buffers). */
  ignored?: string[];
  /** Every file of the checkpoint directory as placed. */
  files: Record<string, FileRecord>;
  createdAt: string;
}

export async function readManifest(dir: string): Promise<WeightsManifest | undefined> {
  const text = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as WeightsManifest;
    return value && value.version === 1 && typeof value.id === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Written last and atomically: a directory with a manifest is complete. */
export async function writeManifest(dir: string, manifest: WeightsManifest): Promise<void> {
  const file = join(dir, MANIFEST_FILE);
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(temp, file);
}
