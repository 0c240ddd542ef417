/**
 * One file from a Hugging Face-compatible server: metadata by HEAD (size and sha256 from the
 * X-Linked-Size / X-Linked-Etag headers HF sets on LFS redirects, else Content-Length / ETag),
 * then a GET into `<dest>.part` that resumes with HTTP Range after a dropped connection, retries
 * network errors and 5xx with exponential backoff, and is renamed into place only once its size
 * and sha256 are verified (and the caller's content check passes). A body never grows past the
 * announced size, or past `maxBytes` when none is announced.
 */
import { open, rename, stat, truncate, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserError } from '../../errors.js';
import { describeDownload, silentProgress, type DownloadProgress } from './progress.js';
import { sha256File } from './weights.js';

export interface HttpOptions {
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Attempts after the first one for network errors, 429 and 5xx (default 5). */
  retries?: number;
  /** First backoff delay, doubled each retry, capped at 30 s (default 1000). */
  retryDelayMs?: number;
  /** Abort a response that sends nothing for this long, then retry (default 60000). */
  idleTimeoutMs?: number;
  progress?: DownloadProgress;
}

/** Default bound on a file whose size the server does not announce (the largest CLIP is ~10 GB). */
export const DEFAULT_MAX_BYTES = 32 * 2 ** 30;

export interface DownloadOptions extends HttpOptions {
  /** Refuse a body longer than this when the server announces no size (default 32 GiB). */
  maxBytes?: number;
  /**
   * Checks the downloaded bytes before they are moved into place (e.g. that a weights file
   * parses); a throw deletes the download. The only check a file without a size or hash gets.
   */
  verify?: (file: string) => Promise<void>;
}

export interface RemoteFile {
  /** The URL the file was asked for. */
  url: string;
  /** Where to GET it (the CDN location an LFS redirect points to, or `url`). */
  location: string;
  size?: number;
  /** Expected sha256 (hex) when the server gives one. */
  sha256?: string;
  /** X-Repo-Commit: the commit the revision resolved to. */
  commit?: string;
  /** The file's etag as the hub gives it (sha256 for LFS files, git blob sha1 otherwise). */
  etag?: string;
}

/** A failure worth retrying (network error, 429, 5xx, connection cut short). */
class TransientError extends Error {}

function accessError(label: string, url: string, status: number): UserError {
  const what = status === 404 ? 'not found' : status === 401 ? 'unauthorised' : 'forbidden';
  return new UserError(`${label}: ${url} answered ${status} (${what})`, {
    hint:
      status === 404
        ? 'check the model id, the revision and the endpoint'
        : 'the repository is private or gated, or the id is wrong: accept its licence on the model page and set HF_TOKEN to an access token',
  });
}

function classify(label: string, url: string, status: number): Error {
  if (status === 429 || status >= 500) return new TransientError(`${url} answered ${status}`);
  if (status === 401 || status === 403 || status === 404) return accessError(label, url, status);
  return new UserError(`${label}: ${url} answered an unexpected ${status}`);
}

/** An ETag without W/ and quotes, as huggingface_hub normalises it (the blob's name in its cache). */
function normaliseEtag(etag: string | null): string | undefined {
  const value = etag?.replace(/^W\//, '').replaceAll('"', '').trim();
  return value && /^[0-9A-Za-z._-]{1,128}$/.test(value) ? value : undefined;
}

function sha256FromEtag(etag: string | null): string | undefined {
  const value = normaliseEtag(etag)?.toLowerCase();
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

function sizeFrom(header: string | null): number | undefined {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header) : undefined;
}

export async function withRetries<T>(
  label: string,
  options: HttpOptions,
  run: () => Promise<T>,
  onRetry?: () => Promise<boolean>,
  action = 'download',
): Promise<T> {
  const retries = options.retries ?? 5;
  const progress = options.progress ?? silentProgress;
  for (let attempt = 0; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (error instanceof UserError) throw error;
      // A retry that made progress (bytes landed in the .part file) does not use up an attempt.
      if (onRetry && (await onRetry())) attempt = 0;
      if (attempt >= retries) {
        throw new UserError(
          `${label}: ${action} failed after ${retries + 1} attempts: ${describeError(error)}`,
          {
            hint: 'check the network and the endpoint, then run the command again: finished files are kept and a partial one resumes',
            cause: error,
          },
        );
      }
      const delay = Math.min((options.retryDelayMs ?? 1000) * 2 ** attempt, 30_000);
      progress.note(
        `${label}: ${describeError(error)}; retrying in ${(delay / 1000).toFixed(1)} s`,
      );
      await sleep(delay);
    }
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof TransientError) return error.message;
  const cause = (error.cause as { code?: string; message?: string } | undefined) ?? undefined;
  return cause ? `${error.message} (${cause.code ?? cause.message})` : error.message;
}

/** HEADs `url`, following the server's own relative redirects, and returns undefined on 404. */
export async function remoteMetadata(
  url: string,
  label: string,
  options: HttpOptions = {},
): Promise<RemoteFile | undefined> {
  return withRetries(label, options, async () => {
    let current = url;
    let linkedSize: number | undefined;
    let linkedSha: string | undefined;
    let linkedEtag: string | undefined;
    let commit: string | undefined;
    for (let hop = 0; hop < 10; hop++) {
      const response = await fetch(current, {
        method: 'HEAD',
        redirect: 'manual',
        headers: { ...options.headers, 'accept-encoding': 'identity' },
      });
      linkedSize ??= sizeFrom(response.headers.get('x-linked-size'));
      linkedSha ??= sha256FromEtag(response.headers.get('x-linked-etag'));
      linkedEtag ??= normaliseEtag(response.headers.get('x-linked-etag'));
      commit ??= response.headers.get('x-repo-commit') ?? undefined;
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        const next = new URL(location, current).href;
        // An LFS redirect to a CDN: the hub already said what the file is; the CDN URL is signed.
        if (
          linkedSize !== undefined ||
          linkedSha !== undefined ||
          new URL(next).origin !== new URL(current).origin
        ) {
          return {
            url,
            location: next,
            size: linkedSize,
            sha256: linkedSha,
            commit,
            etag: linkedEtag,
          };
        }
        current = next;
        continue;
      }
      if (response.status === 404) return undefined;
      if (!response.ok) throw classify(label, current, response.status);
      return {
        url,
        location: current,
        size: linkedSize ?? sizeFrom(response.headers.get('content-length')),
        sha256: linkedSha ?? sha256FromEtag(response.headers.get('etag')),
        commit,
        etag: linkedEtag ?? normaliseEtag(response.headers.get('etag')),
      };
    }
    throw new UserError(`${label}: ${url} redirects more than 10 times`);
  });
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** Streams one GET into `part`, resuming from its current size; resolves once the body has been written. */
async function fetchInto(
  remote: RemoteFile,
  part: string,
  label: string,
  options: DownloadOptions,
): Promise<void> {
  const progress = options.progress ?? silentProgress;
  const limit = remote.size ?? options.maxBytes ?? DEFAULT_MAX_BYTES;
  let have = await sizeOf(part);
  if (remote.size !== undefined && have > remote.size) {
    await truncate(part, 0);
    have = 0;
  }
  if (remote.size !== undefined && have === remote.size && have > 0) return;
  const controller = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(
      () =>
        controller.abort(new Error(`no data for ${(options.idleTimeoutMs ?? 60_000) / 1000} s`)),
      options.idleTimeoutMs ?? 60_000,
    );
  };
  arm();
  try {
    const headers: Record<string, string> = { ...options.headers, 'accept-encoding': 'identity' };
    // The token is for the hub only, never for the CDN a large file redirects to.
    if (new URL(remote.location).origin !== new URL(remote.url).origin)
      delete headers.authorization;
    if (have > 0) headers.range = `bytes=${have}-`;
    const response = await fetch(remote.location, { headers, signal: controller.signal });
    if (response.status === 416 && have > 0) {
      await truncate(part, 0); // the .part is not a prefix of this file: start over
      throw new TransientError(`the server refused to resume at byte ${have}`);
    }
    if (response.status !== 200 && response.status !== 206)
      throw classify(label, remote.location, response.status);
    let flags = 'a';
    if (have > 0 && response.status === 200) {
      progress.note(
        `${label}: the server ignored the Range request; restarting from the beginning`,
      );
      flags = 'w';
      have = 0;
    } else if (response.status === 206) {
      const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
      if (Number(start) !== have) {
        await truncate(part, 0);
        throw new TransientError(`the server resumed at byte ${start ?? '?'} instead of ${have}`);
      }
    } else {
      flags = 'w';
    }
    progress.start(label, remote.size, have);
    const handle = await open(part, flags);
    let tooLong = false;
    try {
      for await (const chunk of response.body ?? []) {
        arm();
        const bytes = chunk as Uint8Array;
        if (have + bytes.length > limit) {
          tooLong = true; // leaving the loop cancels the body
          break;
        }
        await handle.write(bytes);
        have += bytes.length;
        progress.advance(bytes.length);
      }
    } finally {
      await handle.close();
    }
    if (tooLong) {
      await unlink(part).catch(() => undefined);
      throw new UserError(
        remote.size !== undefined
          ? `${label}: ${remote.location} sends more than the ${remote.size} bytes announced for it; stopped at ${have} bytes and deleted the partial file`
          : `${label}: ${remote.location} announces no size and sends more than ${limit} bytes; stopped and deleted the partial file`,
        {
          hint:
            remote.size !== undefined
              ? 'the server (or a proxy in between) serves something else than the file it describes: check the endpoint'
              : 'raise the bound with --max-bytes if this file really is that large, or use a server that announces sizes',
        },
      );
    }
  } catch (error) {
    if (error instanceof UserError || error instanceof TransientError) throw error;
    throw new TransientError(
      controller.signal.aborted ? String(controller.signal.reason) : describeError(error),
      { cause: error },
    );
  } finally {
    clearTimeout(idle);
  }
  const got = await sizeOf(part);
  if (remote.size !== undefined && got < remote.size)
    throw new TransientError(`the connection closed after ${got} of ${remote.size} bytes`);
}

/**
 * Downloads `remote` to `dest` (resuming `<dest>.part` when one is there), verifies size and
 * sha256, then renames it into place. A file that fails verification is deleted.
 * Returns the sha256 of the file in place.
 */
export async function downloadFile(
  remote: RemoteFile,
  dest: string,
  label: string,
  options: DownloadOptions = {},
): Promise<string> {
  const progress = options.progress ?? silentProgress;
  const limit = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (remote.size !== undefined && remote.size > limit)
    throw new UserError(
      `${label}: ${remote.url} announces ${remote.size} bytes, more than the ${limit} allowed`,
      { hint: 'raise the bound with --max-bytes if this file really is that large' },
    );
  const part = `${dest}.part`;
  const started = performance.now();
  const initial = await sizeOf(part);
  let landed = initial;
  await withRetries(
    label,
    options,
    () => fetchInto(remote, part, label, options),
    async () => {
      const now = await sizeOf(part);
      const advanced = now > landed;
      landed = now;
      return advanced;
    },
  );
  const size = await sizeOf(part);
  if (remote.size !== undefined && size !== remote.size) {
    await unlink(part).catch(() => undefined);
    throw new UserError(
      `${label}: received ${size} bytes, the server announced ${remote.size}; the partial file was deleted`,
      { hint: 'run the command again' },
    );
  }
  const actual = await sha256File(part);
  if (remote.sha256 !== undefined && actual !== remote.sha256) {
    await unlink(part).catch(() => undefined);
    // A .part left by an earlier run may belong to an older version of the file: one clean retry.
    if (initial > 0) {
      progress.note(
        `${label}: the resumed earlier partial download does not match; downloading it again from the start`,
      );
      return downloadFile(remote, dest, label, options);
    }
    throw new UserError(
      `${label}: sha256 mismatch: expected ${remote.sha256}, got ${actual}; the corrupt download was deleted`,
      {
        hint: `run the command again; if it fails the same way, the server at ${new URL(remote.location).origin} serves a file that differs from what it announces`,
      },
    );
  }
  if (options.verify) {
    try {
      await options.verify(part);
    } catch (error) {
      await unlink(part).catch(() => undefined);
      throw error;
    }
  }
  await rename(part, dest);
  progress.done(
    label,
    `${describeDownload(size, performance.now() - started)}${remote.sha256 ? ', sha256 verified' : ''}`,
  );
  return actual;
}
