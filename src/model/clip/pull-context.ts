/**
 * What one `weights pull` knows while it works: the repository and revision asked for, where
 * its files go, how to reach the server, and what has been placed so far (for the manifest and
 * the report). Shared by the listing, planning and placing steps of pull.ts.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { cacheRoot, checkHubId, checkpointCacheDir } from './cache.js';
import type { DownloadOptions } from './download.js';
import { hfHubCacheRoot, type HfSnapshot } from './hf-cache.js';
import type { HubClient } from './hub-api.js';
import type { FileRecord } from './manifest.js';
import { silentProgress, type DownloadProgress } from './progress.js';
import { sha256File, weightsHash, WEIGHTS_FILE } from './weights.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface PullOptions extends DownloadOptions {
  /** Hugging Face model id, e.g. openai/clip-vit-large-patch14-336. */
  id: string;
  /** Branch, tag, refs/pr/N or a 40-hex commit (default main). */
  revision?: string;
  /** Our cache root (default: cacheRoot()). */
  cacheDir?: string;
  /** Server (default: $HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Access token for private or gated repositories (default: $HF_TOKEN). */
  token?: string;
  /** Store downloaded files in the Hugging Face cache (Python's layout) instead of ours. */
  hfCache?: boolean;
  /** The hub cache root (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub). */
  hfCacheDir?: string;
  /** Ask the server even when a local copy exists (a branch may have moved). */
  refresh?: boolean;
  /** Never use the network (default: $HF_HUB_OFFLINE). */
  offline?: boolean;
  /** Refuse formats that need the torch-zip reader (pytorch_model.bin, open_clip_pytorch_model.bin). */
  safetensorsOnly?: boolean;
  /** Tokenizer repository for checkpoints that ship none (default openai/clip-vit-large-patch14). */
  tokenizerFrom?: string;
}

export type FileStatus = 'downloaded' | 'up to date' | 'hf-cache' | 'converted';

/** A repository at one revision: its files, and where they can be read without the network. */
export interface Listing {
  id: string;
  /** As asked (branch, refs/pr/N, commit). */
  revision: string;
  /** The commit, when known (files are fetched from it). */
  commit?: string;
  files: Set<string>;
  /** Where the files of that commit lie on disk (a hub cache snapshot), if anywhere. */
  snapshot?: HfSnapshot;
  /** Whether the listing came from the server (its files can be downloaded). */
  online: boolean;
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

/** HF_HUB_OFFLINE as huggingface_hub reads it. */
const truthy = (value: string | undefined) =>
  !!value && !['0', 'false', 'no', 'off', ''].includes(value.toLowerCase());

export class PullContext {
  readonly id: string;
  readonly revision: string;
  readonly endpoint: string;
  /** Our checkpoint directory for (id, revision). */
  readonly dir: string;
  readonly hfRoot: string;
  readonly offline: boolean;
  readonly http: DownloadOptions;
  readonly client: HubClient;
  readonly progress: DownloadProgress;
  /** Every file placed in `dir`, with how. */
  readonly files: { name: string; status: FileStatus }[] = [];
  readonly records: Record<string, FileRecord> = {};
  /** Things the user should know (ignored pull requests, skipped tensors). */
  readonly notes: string[] = [];

  constructor(readonly options: PullOptions) {
    checkHubId(options.id);
    this.id = options.id;
    this.revision = options.revision ?? 'main';
    this.endpoint = resolveEndpoint(options.endpoint);
    this.dir = checkpointCacheDir(this.id, this.revision, this.cacheRoot);
    this.hfRoot = options.hfCacheDir ?? hfHubCacheRoot();
    this.offline = options.offline ?? truthy(process.env.HF_HUB_OFFLINE);
    this.progress = options.progress ?? silentProgress;
    const token = options.token ?? process.env.HF_TOKEN;
    const headers = { ...options.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
    this.http = { ...options, progress: this.progress, headers };
    this.client = { endpoint: this.endpoint, headers };
  }

  get cacheRoot(): string {
    return this.options.cacheDir ?? cacheRoot();
  }

  /** `id (revision)`, the prefix of errors about the repository asked for. */
  get where(): string {
    return `${this.id} (${this.revision})`;
  }

  url(id: string, revision: string, name: string): string {
    return `${this.endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${name}`;
  }

  /** Records a file placed in `dir` (its sha256 and size go into the manifest). */
  async record(name: string, status: FileStatus, sha256?: string): Promise<void> {
    const file = join(this.dir, name);
    const size = (await stat(file)).size;
    this.records[name] = {
      sha256: sha256 ?? (name === WEIGHTS_FILE ? await weightsHash(file) : await sha256File(file)),
      size,
    };
    const existing = this.files.find((f) => f.name === name);
    if (existing) existing.status = status;
    else this.files.push({ name, status });
  }

  statusOf(name: string): FileStatus | undefined {
    return this.files.find((f) => f.name === name)?.status;
  }
}
