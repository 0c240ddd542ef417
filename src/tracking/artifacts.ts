/**
 * Run artifacts: upload, list and download through the tracking server's mlflow-artifacts
 * proxy (artifact URIs `mlflow-artifacts:/<experiment>/<run>/artifacts`), or by plain file
 * copy when the run's artifact URI is a local `file:` path.
 */
import { createWriteStream, openAsBlob } from 'node:fs';
import { copyFile, mkdir, readdir, rename, stat } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import type { MlflowClient } from './client.js';
import { withRetries } from './http.js';
import type { FileInfo } from './types.js';

type Location = { kind: 'proxy'; root: string } | { kind: 'file'; root: string };

/** Where a run's artifacts live, from its artifact_uri. */
export function artifactLocation(artifactUri: string): Location {
  if (artifactUri.startsWith('mlflow-artifacts:')) {
    // mlflow-artifacts:/1/<run>/artifacts, or mlflow-artifacts://host:port/1/<run>/artifacts
    const rest = artifactUri.slice('mlflow-artifacts:'.length).replace(/^\/\/[^/]*/, '');
    return { kind: 'proxy', root: rest.replace(/^\/+|\/+$/g, '') };
  }
  if (artifactUri.startsWith('file:')) return { kind: 'file', root: fileURLToPath(artifactUri) };
  if (artifactUri.startsWith('/')) return { kind: 'file', root: artifactUri };
  throw new UserError(`MLflow artifact URI "${artifactUri}" is not supported by vcp-exp`, {
    hint: 'start the tracking server with --serve-artifacts (the default) so that artifacts go through the mlflow-artifacts proxy',
  });
}

function checkArtifactPath(path: string): string {
  const clean = path.replace(/^\/+|\/+$/g, '');
  if (clean.split('/').some((s) => s === '..' || s === '.'))
    throw new UserError(`artifact path "${path}" must not contain "." or ".." segments`);
  return clean;
}

const encodePath = (path: string) =>
  path.split('/').filter(Boolean).map(encodeURIComponent).join('/');

export class ArtifactStore {
  constructor(private readonly client: MlflowClient) {}

  private async locate(runId: string): Promise<Location> {
    return artifactLocation((await this.client.getRun(runId)).info.artifact_uri);
  }

  private proxyUrl(root: string, path: string): string {
    const joined = [encodePath(root), encodePath(path)].filter(Boolean).join('/');
    return `/api/2.0/mlflow-artifacts/artifacts/${joined}`;
  }

  /** Uploads one local file to `<artifactPath>/<file name>` (artifactPath '' = the root). */
  async logArtifact(runId: string, localPath: string, artifactPath = ''): Promise<string> {
    const target = posix.join(checkArtifactPath(artifactPath), localPath.split(/[\\/]/).pop()!);
    await this.putFile(runId, localPath, target);
    return target;
  }

  /** Uploads every file under a local directory, keeping its layout below `artifactPath`. */
  async logArtifacts(runId: string, localDir: string, artifactPath = ''): Promise<string[]> {
    const base = checkArtifactPath(artifactPath);
    const out: string[] = [];
    for (const entry of await readdir(localDir, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const rel = full
        .slice(resolve(localDir).length + 1)
        .split(/[\\/]/)
        .join('/');
      const target = posix.join(base, rel);
      await this.putFile(runId, full, target);
      out.push(target);
    }
    return out;
  }

  /** Uploads `localPath` as exactly `targetPath` (a file path inside the run's artifacts). */
  async putFile(runId: string, localPath: string, targetPath: string): Promise<void> {
    const target = checkArtifactPath(targetPath);
    const where = await this.locate(runId);
    if (where.kind === 'file') {
      const dest = join(where.root, target);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(localPath, dest);
      return;
    }
    const http = this.client.http;
    const path = this.proxyUrl(where.root, target);
    // PUT of the same bytes to the same path is idempotent, so plain retries are safe.
    await withRetries(
      http.retry,
      { endpoint: `upload ${target}`, trackingUri: http.baseUrl },
      async () => {
        const body = await openAsBlob(localPath); // streamed from disk: checkpoints can be large
        const r = await http.sendOnce('PUT', path, { body });
        await r.body?.cancel();
      },
    );
  }

  /** Files and folders directly under `path` (run-relative paths, like MLflow's list). */
  async list(runId: string, path = ''): Promise<FileInfo[]> {
    const dir = checkArtifactPath(path);
    const where = await this.locate(runId);
    if (where.kind === 'file') {
      const full = join(where.root, dir);
      const entries = await readdir(full, { withFileTypes: true }).catch(() => []);
      return Promise.all(
        entries.map(async (e) => ({
          path: posix.join(dir, e.name),
          is_dir: e.isDirectory(),
          file_size: e.isDirectory() ? undefined : (await stat(join(full, e.name))).size,
        })),
      );
    }
    const http = this.client.http;
    const files = await withRetries(
      http.retry,
      { endpoint: 'mlflow-artifacts list', trackingUri: http.baseUrl },
      async () => {
        const r = await http.sendOnce('GET', '/api/2.0/mlflow-artifacts/artifacts', {
          query: { path: [where.root, dir].filter(Boolean).join('/') },
        });
        return ((await r.json()) as { files?: FileInfo[] }).files ?? [];
      },
    );
    // The proxy answers with names relative to the listed folder.
    return files.map((f) => ({
      path: posix.join(dir, f.path.split('/').pop()!),
      is_dir: Boolean(f.is_dir),
      file_size: f.file_size === undefined ? undefined : Number(f.file_size),
    }));
  }

  /** Every file below `path`, recursively. */
  async listFiles(runId: string, path = ''): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    for (const f of await this.list(runId, path)) {
      if (f.is_dir) out.push(...(await this.listFiles(runId, f.path)));
      else out.push(f);
    }
    return out;
  }

  /** Downloads one artifact file to `localPath` (written to a temporary name, then renamed). */
  async download(runId: string, artifactPath: string, localPath: string): Promise<void> {
    const source = checkArtifactPath(artifactPath);
    const where = await this.locate(runId);
    await mkdir(dirname(localPath), { recursive: true });
    if (where.kind === 'file') {
      await copyFile(join(where.root, source), localPath);
      return;
    }
    const http = this.client.http;
    const partial = `${localPath}.partial`;
    await withRetries(
      http.retry,
      { endpoint: `download ${source}`, trackingUri: http.baseUrl },
      async () => {
        const r = await http.sendOnce('GET', this.proxyUrl(where.root, source));
        if (!r.body) throw new UserError(`MLflow returned no content for artifact ${source}`);
        await pipeline(
          Readable.fromWeb(r.body as WebReadableStream<Uint8Array>),
          createWriteStream(partial),
        );
      },
    );
    await rename(partial, localPath);
  }

  /** Downloads a whole artifact folder (or the run's root) into `localDir`. */
  async downloadDir(runId: string, artifactPath: string, localDir: string): Promise<string[]> {
    const base = checkArtifactPath(artifactPath);
    const files = await this.listFiles(runId, base);
    for (const f of files)
      await this.download(
        runId,
        f.path,
        join(localDir, base ? f.path.slice(base.length + 1) : f.path),
      );
    return files.map((f) => f.path);
  }
}
